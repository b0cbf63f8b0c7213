#include "model/rotary.h"

#include <ATen/ATen.h>

#include "common/error.h"

namespace ovr::model {

RotaryTables rotary_tables(const at::Tensor& positions, int64_t head_dim, double theta,
                           const std::vector<int64_t>& mrope_section, at::ScalarType dtype) {
  at::Tensor pos = positions.dim() == 2 ? positions.unsqueeze(0) : positions;  // [A, B, S]
  if (pos.dim() != 3) throw Error("rotary: positions must be [B, S] or [3, B, S]");
  // inv_freq[i] = theta^(-2i / head_dim), computed in fp32 as Hugging Face does.
  at::Tensor inv_freq =
      at::pow(theta, at::arange(0, head_dim, 2, at::TensorOptions().dtype(at::kFloat).device(pos.device())) / double(head_dim))
          .reciprocal();
  at::Tensor freqs = pos.to(at::kFloat).unsqueeze(-1) * inv_freq;  // [A, B, S, half]
  if (!mrope_section.empty()) {
    if (pos.size(0) != 3) throw Error("rotary: M-RoPE needs positions of shape [3, B, S]");
    // Frequency i takes its position from axis 0, 1 or 2 according to mrope_section.
    std::vector<at::Tensor> parts;
    int64_t at_dim = 0;
    for (int axis = 0; axis < 3; ++axis) {
      parts.push_back(freqs[axis].narrow(-1, at_dim, mrope_section[size_t(axis)]));
      at_dim += mrope_section[size_t(axis)];
    }
    freqs = at::cat(parts, -1);  // [B, S, half]
  } else {
    freqs = freqs[0];
  }
  at::Tensor emb = at::cat({freqs, freqs}, -1);  // [B, S, head_dim]
  return {emb.cos().to(dtype), emb.sin().to(dtype)};
}

at::Tensor rotate_half(const at::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

at::Tensor apply_rotary(const at::Tensor& x, const RotaryTables& t) {
  return x * t.cos.unsqueeze(1) + rotate_half(x) * t.sin.unsqueeze(1);  // tables broadcast over heads
}

at::Tensor text_position_ids(const at::Tensor& attention_mask) {
  at::Tensor pos = attention_mask.to(at::kLong).cumsum(-1) - 1;
  pos.masked_fill_(attention_mask.eq(0), 1);
  return pos.unsqueeze(0).expand({3, pos.size(0), pos.size(1)}).contiguous();
}

}  // namespace ovr::model
