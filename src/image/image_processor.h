// Qwen2.5-VL's image processor: Hugging Face's Qwen2VLImageProcessor (the slow, PIL-based one
// that Qwen2.5-VL's preprocessor_config.json selects), reproduced for still images.
//
// process(image):
//   1. smart_resize picks a size whose sides are multiples of patch_size * merge_size (28) with
//      min_pixels <= h*w <= max_pixels, keeping the aspect ratio;
//   2. the RGB image is resized to it with Pillow's BICUBIC, reproduced bit for bit (resize_bicubic,
//      Pillow 13's pass order by default);
//   3. each byte v becomes ((v * rescale_factor) - mean[c]) / std[c], in HF's float32 arithmetic;
//   4. patchify: pixel_values of shape (grid_t*grid_h*grid_w, 3*temporal_patch_size*patch*patch),
//      grid_t = 1 (the still image is repeated temporal_patch_size times). Rows are ordered by
//      (h-block, w-block, h within the merge block, w within it), so that each merge_size^2 run of
//      rows is one LLM token; a row holds (channel, frame, y, x) of one 14x14 patch.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "image/image.h"

namespace ovr::image {

struct ImageProcessorOptions {
  // Hugging Face's class defaults; Qwen2.5-VL's preprocessor_config.json sets max_pixels 12845056.
  int64_t min_pixels = 56 * 56;
  int64_t max_pixels = 28 * 28 * 1280;
  int64_t patch_size = 14;
  int64_t temporal_patch_size = 2;
  int64_t merge_size = 2;
  std::array<float, 3> image_mean = {0.48145466f, 0.4578275f, 0.40821073f};  // OpenAI CLIP
  std::array<float, 3> image_std = {0.26862954f, 0.26130258f, 0.27577711f};
  double rescale_factor = 1.0 / 255.0;
  bool do_resize = true, do_rescale = true, do_normalize = true;
  // Whose bicubic resize to reproduce bit for bit: Pillow 13 (what pip installs with transformers
  // today; the default) or 12. They differ in pass order only (resize_bicubic). Set by the
  // "ovr_pillow" key of preprocessor_config.json, which Hugging Face ignores.
  int pillow = 13;

  int64_t factor() const { return patch_size * merge_size; }
  // Reads a Hugging Face preprocessor_config.json (a file, or a model directory holding one).
  // Pixel limits: top-level min_pixels/max_pixels win over size.shortest_edge/longest_edge, as in
  // HF. Fields that would change the result in ways not reproduced here (a resample other than
  // bicubic, do_convert_rgb false, another processor type) are an ovr::Error naming the file.
  static ImageProcessorOptions from_json_file(const std::string& path);
};

// The size HF's smart_resize picks (transformers' Python code: Python's round-half-to-even, then
// floor/ceil through beta when the rounded size is outside [min_pixels, max_pixels]). A side under
// `factor` or an aspect ratio over 200 is an ovr::Error, as transformers raises.
struct ResizedSize {
  int64_t height, width;
};
ResizedSize smart_resize(int64_t height, int64_t width, int64_t factor = 28, int64_t min_pixels = 56 * 56,
                         int64_t max_pixels = 28 * 28 * 1280);

// PIL.Image.resize((width, height), Image.BICUBIC) on an RGB image, with Pillow's arithmetic:
// a = -0.5 cubic kernel widened by the scale when shrinking (antialias), coefficients normalised
// and quantised to 22-bit fixed point, two passes, each rounded and clamped to 8 bits. A pass
// whose size does not change is skipped, as in Pillow. Pillow 12 always runs the horizontal pass
// first; Pillow 13 runs the vertical pass first when the height shrinks by more than twice what
// the width shrinks (pillow_resizes_vertically_first; measured on 249 sizes, docs/images.md).
Image resize_bicubic(const Image& image, int64_t height, int64_t width, int pillow = 13);
bool pillow_resizes_vertically_first(int64_t in_height, int64_t in_width, int64_t height, int64_t width, int pillow);

struct ProcessedImage {
  std::vector<float> pixel_values;  // rows * cols, row-major
  int64_t rows = 0, cols = 0;
  std::array<int64_t, 3> grid_thw = {0, 0, 0};
  int64_t resized_height = 0, resized_width = 0;
  int64_t merge_size = 2;
  // <|image_pad|> tokens the LLM sees for this image (grid_h * grid_w / merge_size^2).
  int64_t num_image_tokens() const { return grid_thw[0] * grid_thw[1] * grid_thw[2] / (merge_size * merge_size); }
};

class ImageProcessor {
 public:
  explicit ImageProcessor(ImageProcessorOptions options = {});
  const ImageProcessorOptions& options() const { return options_; }

  // The resized size of an image of this size (smart_resize, or the size itself without resize).
  ResizedSize target_size(int64_t height, int64_t width) const;
  // `name` prefixes errors (e.g. an image under 28 px): usually the image's file.
  ProcessedImage process(const Image& image, const std::string& name = "image") const;
  ProcessedImage process_file(const std::string& path) const { return process(decode_image_file(path), path); }

 private:
  ImageProcessorOptions options_;
  std::array<std::array<float, 256>, 3> lut_;  // byte -> rescaled and normalised value, per channel
};

}  // namespace ovr::image
