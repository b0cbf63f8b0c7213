// The Qwen2 decoder language model as Hugging Face's Qwen2.5-VL has it, in LibTorch:
//   embed_tokens -> N x [RMSNorm -> attention (q/k/v bias, grouped-query heads, M-RoPE) -> +
//                        RMSNorm -> SwiGLU MLP -> +] -> RMSNorm -> lm_head (tied or not).
// Module names compose to Hugging Face's parameter names ("model.layers.0.self_attn.q_proj.weight"),
// so weights load by name from safetensors and from our HDF5 checkpoints.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>

#include "model/qwen2_config.h"
#include "model/rotary.h"

namespace ovr::model {

struct RMSNormImpl : torch::nn::Module {
  RMSNormImpl(int64_t dim, double eps);
  at::Tensor forward(const at::Tensor& x);
  at::Tensor weight;
  double eps;
};
TORCH_MODULE(RMSNorm);

// Which keys each query may attend to. Tokens attend causally to earlier tokens of the same
// segment: a padded batch has segment 0 for real tokens and -1 for padding; a packed row has
// one segment per document, so documents never see each other.
at::Tensor segments_from_attention_mask(const at::Tensor& attention_mask);  // [B, S] -> [B, S]
// Additive mask [B, 1, S, S] (0 allowed, -inf masked); a padding query attends to itself only,
// so that no softmax row is empty.
at::Tensor causal_segment_mask(const at::Tensor& segment_ids, at::ScalarType dtype);

struct Qwen2AttentionImpl : torch::nn::Module {
  explicit Qwen2AttentionImpl(const Qwen2Config& c);
  // x: [B, S, hidden]; positions: [3, B, S] (or [B, S]) int64, rotated in with the config's
  // rope_theta and mrope_section (model/fused_ops.h: apply_rope); mask: additive [B, 1, S, S_k].
  // When past_k/past_v are given (KV cache, [B, kv_heads, S_past, head_dim]), they are prepended;
  // new_k/new_v receive this step's keys.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& positions, const at::Tensor& mask,
                     const at::Tensor& past_k = {}, const at::Tensor& past_v = {}, at::Tensor* new_k = nullptr,
                     at::Tensor* new_v = nullptr);
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  int64_t heads, kv_heads, head_dim;
  double rope_theta;
  std::vector<int64_t> mrope_section;
};
TORCH_MODULE(Qwen2Attention);

// The SwiGLU MLP of both towers: down(silu(gate(x)) * up(x)); the vision tower's has biases.
struct SwiGLUImpl : torch::nn::Module {
  SwiGLUImpl(int64_t hidden, int64_t intermediate, bool bias);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(SwiGLU);

struct Qwen2DecoderLayerImpl : torch::nn::Module {
  explicit Qwen2DecoderLayerImpl(const Qwen2Config& c);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& positions, const at::Tensor& mask,
                     const at::Tensor& past_k = {}, const at::Tensor& past_v = {}, at::Tensor* new_k = nullptr,
                     at::Tensor* new_v = nullptr);
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  Qwen2Attention self_attn{nullptr};
  SwiGLU mlp{nullptr};
};
TORCH_MODULE(Qwen2DecoderLayer);

struct Qwen2ModelImpl : torch::nn::Module {
  explicit Qwen2ModelImpl(const Qwen2Config& c);
  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RMSNorm norm{nullptr};
};
TORCH_MODULE(Qwen2Model);

// Keys and values of earlier tokens, layer by layer, for incremental decoding. The dense cache
// below serves tests and prefill; the generation engine's paged cache implements it too.
class LayerCache {
 public:
  virtual ~LayerCache() = default;
  // Keys/values of the tokens before this call, [B, kv_heads, S_past, head_dim]; left undefined
  // when there are none. The attention mask passed with the call covers S_past + S keys.
  virtual void past(size_t layer, at::Tensor* k, at::Tensor* v) = 0;
  // Keys/values after the layer has run: the past followed by this call's S tokens.
  virtual void update(size_t layer, const at::Tensor& k, const at::Tensor& v) = 0;
};

struct KVCache : LayerCache {
  std::vector<at::Tensor> k, v;  // per layer: [B, kv_heads, S, head_dim]
  int64_t length() const { return k.empty() || !k[0].defined() ? 0 : k[0].size(2); }
  void past(size_t layer, at::Tensor* pk, at::Tensor* pv) override {
    if (layer < k.size()) *pk = k[layer], *pv = v[layer];
  }
  void update(size_t layer, const at::Tensor& nk, const at::Tensor& nv) override {
    if (k.size() <= layer) k.resize(layer + 1), v.resize(layer + 1);
    k[layer] = nk, v[layer] = nv;
  }
};

struct Qwen2ForCausalLMImpl : torch::nn::Module {
  explicit Qwen2ForCausalLMImpl(const Qwen2Config& c);

  // input_ids or inputs_embeds [B, S(, hidden)]; positions [3, B, S] (or [B, S]); mask additive
  // [B, 1, S, S_past + S]. Returns the final hidden states [B, S, hidden] (after the last norm).
  // With a cache, its keys/values are used and then extended by this call's tokens.
  at::Tensor hidden_states(const at::Tensor& inputs_embeds, const at::Tensor& positions, const at::Tensor& mask,
                           LayerCache* cache = nullptr);
  at::Tensor embed(const at::Tensor& input_ids);
  at::Tensor logits(const at::Tensor& hidden);  // lm_head (or the tied embedding)
  // The [vocab, hidden] matrix logits() multiplies by: lm_head's weight, or the tied embedding.
  // For the fused log-prob (ops/fused_logprob_op.h), which never forms the logits.
  const at::Tensor& output_weight() const;

  // The common case: logits [B, S, vocab] of a padded batch (attention_mask [B, S], 1 = token).
  at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& attention_mask);

  Qwen2Config config;
  // Training on long sequences: keep only each layer's input during the forward pass and run the
  // layer again during backward (reentrant, as torch.utils.checkpoint). Same gradients, less
  // activation memory, about one more forward pass of compute.
  bool checkpoint_activations = false;
  Qwen2Model model{nullptr};
  torch::nn::Linear lm_head{nullptr};  // null when tie_word_embeddings
};
TORCH_MODULE(Qwen2ForCausalLM);

}  // namespace ovr::model
