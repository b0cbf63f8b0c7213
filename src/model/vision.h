// Qwen2.5-VL's vision tower (Qwen2_5_VisionTransformerPretrainedModel), in LibTorch: patch
// embedding of 2x14x14 RGB patches, 2-D rotary embeddings, window attention over 112-pixel
// windows with full attention in a few blocks, RMSNorm, SwiGLU MLPs, and the 2x2 patch merger
// into the language model's width. Several images of different sizes go through in one call.
// Module names compose to Hugging Face's ("blocks.0.attn.qkv.weight" under "visual.").
#pragma once
#include <nlohmann/json.hpp>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <array>
#include <vector>

#include "model/qwen2.h"
#include "model/vision_config.h"

namespace ovr::model {

struct PatchEmbedImpl : torch::nn::Module {
  explicit PatchEmbedImpl(const VisionConfig& c);
  at::Tensor forward(const at::Tensor& pixel_values);  // [N, C*T*P*P] -> [N, hidden]
  torch::nn::Conv3d proj{nullptr};                      // kernel = stride = (T, P, P): a matrix product
};
TORCH_MODULE(PatchEmbed);

// Runs of patches that attend only among themselves: windows, or whole images. {start, length}.
using Segments = std::vector<std::array<int64_t, 2>>;

struct VisionAttentionImpl : torch::nn::Module {
  explicit VisionAttentionImpl(const VisionConfig& c);
  // x [N, hidden]; cos/sin [N, head_dim]. Attention stays inside each segment; segments of equal
  // length are batched together, so no N x N mask is ever built.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, const Segments& segments);
  torch::nn::Linear qkv{nullptr}, proj{nullptr};
  int64_t heads, head_dim;
};
TORCH_MODULE(VisionAttention);

struct VisionBlockImpl : torch::nn::Module {
  explicit VisionBlockImpl(const VisionConfig& c);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, const Segments& segments);
  RMSNorm norm1{nullptr}, norm2{nullptr};
  VisionAttention attn{nullptr};
  SwiGLU mlp{nullptr};  // with biases
};
TORCH_MODULE(VisionBlock);

struct PatchMergerImpl : torch::nn::Module {
  explicit PatchMergerImpl(const VisionConfig& c);
  at::Tensor forward(const at::Tensor& x);  // groups of 4 neighbouring patches -> one LLM token
  RMSNorm ln_q{nullptr};
  torch::nn::Sequential mlp{nullptr};  // Linear, GELU, Linear: names mlp.0 and mlp.2
  int64_t merged;
};
TORCH_MODULE(PatchMerger);

// The order in which the tower visits merged 2x2 units: window by window (window_size pixels
// square, clipped at the image edge), image by image; and the windows as segments of patches.
struct WindowLayout {
  std::vector<int64_t> unit_order;  // merged-unit indices in window order
  Segments windows;                 // in patches, in the window order
  Segments images;                  // one segment per image frame (t * h * w patches each)
};
WindowLayout window_layout(const VisionConfig& c, const at::Tensor& grid_thw);

struct VisionTransformerImpl : torch::nn::Module {
  explicit VisionTransformerImpl(const VisionConfig& c);
  // pixel_values [sum_i t_i*h_i*w_i, C*T*P*P] as the image processor makes them; grid_thw
  // [images, 3] (int64). Returns the merged tokens [sum_i t_i*h_i*w_i / 4, out_hidden], image by image.
  at::Tensor forward(const at::Tensor& pixel_values, const at::Tensor& grid_thw);
  VisionConfig config;
  PatchEmbed patch_embed{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  PatchMerger merger{nullptr};
};
TORCH_MODULE(VisionTransformer);

}  // namespace ovr::model
