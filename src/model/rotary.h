// Rotary position embeddings written for Qwen2.5-VL's multimodal rotary (M-RoPE): positions have
// three axes (temporal, height, width), and the rotary frequencies of a head are split between
// them by mrope_section. Text tokens carry the same position on all three axes, which makes
// M-RoPE equal to plain 1-D RoPE; a plain Qwen2 config (no mrope_section) uses one axis.
#pragma once
#include <ATen/core/Tensor.h>

#include <vector>

namespace ovr::model {

struct RotaryTables {
  at::Tensor cos, sin;  // [B, S, head_dim], broadcast over heads
};

// positions: [3, B, S] (or [B, S] for one axis) int64. mrope_section empty = one axis.
RotaryTables rotary_tables(const at::Tensor& positions, int64_t head_dim, double theta,
                           const std::vector<int64_t>& mrope_section, at::ScalarType dtype);

// [-x2, x1] for x = [x1, x2] split in halves of the last dimension.
at::Tensor rotate_half(const at::Tensor& x);

// x: [B, heads, S, head_dim]; returns x * cos + rotate_half(x) * sin.
at::Tensor apply_rotary(const at::Tensor& x, const RotaryTables& t);

// Position ids of text rows: 0, 1, 2, ... over the valid tokens of each row (as Hugging Face
// computes them from an attention mask); [3, B, S]. Padding positions get 1, as in HF.
at::Tensor text_position_ids(const at::Tensor& attention_mask);

}  // namespace ovr::model
