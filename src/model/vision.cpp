#include "model/vision.h"

#include <torch/torch.h>

#include <cmath>
#include <map>

#include "common/error.h"

namespace ovr::model {

namespace nn = torch::nn;

PatchEmbedImpl::PatchEmbedImpl(const VisionConfig& c) {
  proj = register_module("proj", nn::Conv3d(nn::Conv3dOptions(c.in_channels, c.hidden_size,
                                                              {c.temporal_patch_size, c.patch_size, c.patch_size})
                                                .stride({c.temporal_patch_size, c.patch_size, c.patch_size})
                                                .bias(false)));
}

at::Tensor PatchEmbedImpl::forward(const at::Tensor& pixel_values) {
  // A convolution whose kernel equals its stride over one patch is a matrix product.
  const at::Tensor w = proj->weight.view({proj->weight.size(0), -1});
  return torch::matmul(pixel_values.to(w.scalar_type()), w.t());
}

VisionAttentionImpl::VisionAttentionImpl(const VisionConfig& c) : heads(c.num_heads), head_dim(c.head_dim()) {
  qkv = register_module("qkv", nn::Linear(nn::LinearOptions(c.hidden_size, 3 * c.hidden_size).bias(true)));
  proj = register_module("proj", nn::Linear(nn::LinearOptions(c.hidden_size, c.hidden_size).bias(true)));
}

at::Tensor VisionAttentionImpl::forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                                        const Segments& segments) {
  const int64_t n = x.size(0);
  at::Tensor all = qkv(x).view({n, 3, heads, head_dim}).permute({1, 0, 2, 3});  // [3, N, H, D]
  auto rotate = [&](const at::Tensor& t) {  // in fp32, as the reference does
    at::Tensor f = t.to(at::kFloat);
    return (f * cos.unsqueeze(1) + rotate_half(f) * sin.unsqueeze(1)).to(t.scalar_type());
  };
  at::Tensor q = rotate(all[0]), k = rotate(all[1]), v = all[2];
  at::Tensor out = torch::empty_like(q);
  // Segments of one length attend in one batched product.
  std::map<int64_t, std::vector<int64_t>> by_length;
  for (const auto& s : segments) by_length[s[1]].push_back(s[0]);
  const double scale = 1.0 / std::sqrt(double(head_dim));
  for (const auto& [len, starts] : by_length) {
    std::vector<int64_t> idx;
    idx.reserve(starts.size() * size_t(len));
    for (int64_t s : starts)
      for (int64_t j = 0; j < len; ++j) idx.push_back(s + j);
    const at::Tensor index = torch::tensor(idx).to(x.device());
    const int64_t g = int64_t(starts.size());
    auto group = [&](const at::Tensor& t) { return t.index_select(0, index).view({g, len, heads, head_dim}).transpose(1, 2); };
    const at::Tensor qg = group(q), kt = group(k).transpose(2, 3), vg = group(v);
    // Long segments (whole images in the full-attention blocks) go through in slices of queries,
    // so the scores of one slice stay in cache instead of an [heads, N, N] matrix in memory.
    const int64_t rows = std::max<int64_t>(1, (int64_t(1) << 22) / (g * heads * len));
    std::vector<at::Tensor> parts;
    for (int64_t r = 0; r < len; r += rows) {
      const at::Tensor qs = qg.narrow(2, r, std::min(rows, len - r));
      const at::Tensor probs = torch::softmax(torch::matmul(qs, kt) * scale, -1, at::kFloat).to(q.scalar_type());
      parts.push_back(torch::matmul(probs, vg));
    }
    at::Tensor o = (parts.size() == 1 ? parts[0] : torch::cat(parts, 2)).transpose(1, 2).reshape({g * len, heads, head_dim});
    out.index_copy_(0, index, o);
  }
  return proj(out.reshape({n, heads * head_dim}));
}

VisionBlockImpl::VisionBlockImpl(const VisionConfig& c) {
  norm1 = register_module("norm1", RMSNorm(c.hidden_size, c.rms_norm_eps));
  norm2 = register_module("norm2", RMSNorm(c.hidden_size, c.rms_norm_eps));
  attn = register_module("attn", VisionAttention(c));
  mlp = register_module("mlp", SwiGLU(c.hidden_size, c.intermediate_size, /*bias=*/true));
}

at::Tensor VisionBlockImpl::forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                                    const Segments& segments) {
  at::Tensor h = x + attn(norm1(x), cos, sin, segments);
  return h + mlp(norm2(h));
}

PatchMergerImpl::PatchMergerImpl(const VisionConfig& c) : merged(c.hidden_size * c.spatial_merge_size * c.spatial_merge_size) {
  ln_q = register_module("ln_q", RMSNorm(c.hidden_size, c.rms_norm_eps));
  mlp = register_module("mlp", nn::Sequential(nn::Linear(merged, merged), nn::GELU(),
                                              nn::Linear(merged, c.out_hidden_size)));
}

at::Tensor PatchMergerImpl::forward(const at::Tensor& x) { return mlp->forward(ln_q(x).view({-1, merged})); }

WindowLayout window_layout(const VisionConfig& c, const at::Tensor& grid_thw) {
  const at::Tensor grid = grid_thw.to(at::kCPU, at::kLong).contiguous();
  const int64_t sms = c.spatial_merge_size, unit = sms * sms;
  const int64_t win = c.window_size / sms / c.patch_size;  // window side, in merged units
  WindowLayout out;
  int64_t base = 0, patch_at = 0, window_at = 0;
  for (int64_t i = 0; i < grid.size(0); ++i) {
    const int64_t t = grid[i][0].item<int64_t>(), h = grid[i][1].item<int64_t>(), w = grid[i][2].item<int64_t>();
    if (t <= 0 || h <= 0 || w <= 0 || h % sms || w % sms)
      throw Error("vision: grid_thw row " + std::to_string(i) + " must be positive with h and w multiples of " + std::to_string(sms));
    const int64_t lh = h / sms, lw = w / sms;
    for (int64_t f = 0; f < t; ++f) {
      out.images.push_back({patch_at, h * w});
      patch_at += h * w;
      for (int64_t wy = 0; wy < lh; wy += win)
        for (int64_t wx = 0; wx < lw; wx += win) {
          int64_t count = 0;
          for (int64_t y = wy; y < std::min(wy + win, lh); ++y)
            for (int64_t x = wx; x < std::min(wx + win, lw); ++x, ++count) out.unit_order.push_back(base + f * lh * lw + y * lw + x);
          out.windows.push_back({window_at, count * unit});
          window_at += count * unit;
        }
    }
    base += t * lh * lw;
  }
  return out;
}

VisionTransformerImpl::VisionTransformerImpl(const VisionConfig& c) : config(c) {
  patch_embed = register_module("patch_embed", PatchEmbed(c));
  blocks = register_module("blocks", nn::ModuleList());
  for (int64_t i = 0; i < c.depth; ++i) blocks->push_back(VisionBlock(c));
  merger = register_module("merger", PatchMerger(c));
}

at::Tensor VisionTransformerImpl::forward(const at::Tensor& pixel_values, const at::Tensor& grid_thw) {
  const auto& c = config;
  const int64_t sms = c.spatial_merge_size, unit = sms * sms;
  const WindowLayout layout = window_layout(c, grid_thw);
  const int64_t n = int64_t(layout.unit_order.size()) * unit;
  if (pixel_values.dim() != 2 || pixel_values.size(0) != n)
    throw Error("vision: pixel_values has " + std::to_string(pixel_values.size(0)) + " patches, grid_thw describes " +
                std::to_string(n));
  const at::Device device = pixel_values.device();
  at::Tensor h = patch_embed(pixel_values);  // [N, hidden]

  // 2-D rotary angles of each patch: its row and column, patches ordered by 2x2 merge units.
  const at::Tensor grid = grid_thw.to(at::kCPU, at::kLong);
  std::vector<int64_t> rows, cols;
  for (int64_t i = 0; i < grid.size(0); ++i) {
    const int64_t t = grid[i][0].item<int64_t>(), gh = grid[i][1].item<int64_t>(), gw = grid[i][2].item<int64_t>();
    for (int64_t f = 0; f < t; ++f)
      for (int64_t by = 0; by < gh / sms; ++by)
        for (int64_t bx = 0; bx < gw / sms; ++bx)
          for (int64_t y = 0; y < sms; ++y)
            for (int64_t x = 0; x < sms; ++x) rows.push_back(by * sms + y), cols.push_back(bx * sms + x);
  }
  const int64_t rot = c.head_dim() / 2;  // rotary dimension of each axis pair
  const at::Tensor inv_freq =
      torch::pow(10000.0, torch::arange(0, rot, 2, at::TensorOptions().dtype(at::kFloat)) / double(rot)).reciprocal();
  at::Tensor angles = torch::cat({torch::tensor(rows).to(at::kFloat).unsqueeze(1) * inv_freq,
                                  torch::tensor(cols).to(at::kFloat).unsqueeze(1) * inv_freq}, 1);  // [N, head_dim/2]

  // Visit the patches window by window (merge units stay together).
  const at::Tensor order = torch::tensor(layout.unit_order);
  h = h.view({n / unit, unit, -1}).index_select(0, order.to(device)).reshape({n, -1});
  angles = angles.view({n / unit, unit, -1}).index_select(0, order).reshape({n, -1});
  const at::Tensor emb = torch::cat({angles, angles}, -1).to(device);
  const at::Tensor cos = emb.cos(), sin = emb.sin();

  for (int64_t i = 0; i < c.depth; ++i) {
    const bool full = std::find(c.fullatt_block_indexes.begin(), c.fullatt_block_indexes.end(), i) != c.fullatt_block_indexes.end();
    h = blocks[size_t(i)]->as<VisionBlockImpl>()->forward(h, cos, sin, full ? layout.images : layout.windows);
  }
  h = merger(h);  // [N / 4, out_hidden], still in window order
  return h.index_select(0, torch::argsort(order).to(device));
}

}  // namespace ovr::model
