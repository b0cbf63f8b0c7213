// Qwen2_5_VLForConditionalGeneration: the vision tower and the language model joined. Image
// tokens (<|image_pad|>) take the merged vision features in order, and positions follow
// Hugging Face's get_rope_index: text advances all three M-RoPE axes together; an image's
// tokens sit at (t, row, column) offsets from where the image starts; text after an image
// continues from the largest position used so far.
#pragma once
#include <mpi.h>

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "image/image_processor.h"
#include "model/qwen2.h"
#include "model/vision.h"

namespace ovr::model {

// Positions [3, S] of one sequence and the position that follows it (for decoding). grid_thw
// [images, 3] lists the sequence's images in order; the number of <|image_pad|> tokens of each
// image must be t*h*w / merge^2 (ovr::Error otherwise, with both numbers).
struct RopeIndex {
  at::Tensor positions;
  int64_t next_position;
};
RopeIndex rope_index(const std::vector<int64_t>& ids, const at::Tensor& grid_thw, int64_t image_token_id,
                     int64_t spatial_merge_size);

struct Qwen2_5_VL {
  Qwen2ForCausalLM lm{nullptr};
  VisionTransformer visual{nullptr};
  int64_t image_token_id = -1;

  // Input embeddings [S, hidden] of one sequence: token embeddings, with the vision tower's
  // features in place of the <|image_pad|> tokens; and its positions.
  struct Inputs {
    at::Tensor embeds, positions;
    int64_t next_position;
  };
  Inputs inputs(const std::vector<int64_t>& ids, const at::Tensor& pixel_values, const at::Tensor& grid_thw);
  // Logits [S, vocab] of one sequence with its images.
  at::Tensor logits(const std::vector<int64_t>& ids, const at::Tensor& pixel_values, const at::Tensor& grid_thw);
};

// Image files through the image processor, as the vision tower takes them: pixel_values
// [patches, channels * patch^2] of all images in order, grid_thw [images, 3], and each image's
// number of <|image_pad|> tokens (for the chat template).
struct ImageInputs {
  at::Tensor pixel_values, grid_thw;
  std::vector<int64_t> pad_counts;
};
ImageInputs process_images(const image::ImageProcessor& processor, const std::vector<std::string>& paths);

// From a Hugging Face directory or an ovr checkpoint (both name forms); eval mode. Collective over
// comm: its ranks read the file once between them (model/weights.h).
Qwen2_5_VL load_qwen2_5_vl(const std::string& path, MPI_Comm comm = MPI_COMM_SELF);

}  // namespace ovr::model
