#include "model/qwen2.h"

#include <torch/torch.h>

#include <cmath>

#include "common/error.h"
#include "model/fused_ops.h"

namespace ovr::model {

namespace nn = torch::nn;

RMSNormImpl::RMSNormImpl(int64_t dim, double eps_) : eps(eps_) {
  weight = register_parameter("weight", torch::ones({dim}));
}

// Normalised in fp32 whatever the compute dtype, as the reference does (kernels/rmsnorm.h).
at::Tensor RMSNormImpl::forward(const at::Tensor& x) { return rms_norm(x, weight, eps); }

at::Tensor segments_from_attention_mask(const at::Tensor& attention_mask) {
  return torch::where(attention_mask.ne(0), torch::zeros_like(attention_mask, at::kLong),
                      torch::full_like(attention_mask, -1, at::kLong));
}

at::Tensor causal_segment_mask(const at::Tensor& seg, at::ScalarType dtype) {
  const int64_t s = seg.size(1);
  const auto on = at::TensorOptions().device(seg.device());
  at::Tensor causal = torch::ones({s, s}, on.dtype(at::kBool)).tril();
  at::Tensor same = seg.unsqueeze(2).eq(seg.unsqueeze(1)) & seg.unsqueeze(1).ge(0);  // [B, S, S]
  at::Tensor allowed = (same & causal) | torch::eye(s, on.dtype(at::kBool));
  at::Tensor mask = torch::zeros(allowed.sizes(), on.dtype(dtype));
  mask.masked_fill_(allowed.logical_not(), -std::numeric_limits<double>::infinity());
  return mask.unsqueeze(1);
}

Qwen2AttentionImpl::Qwen2AttentionImpl(const Qwen2Config& c)
    : heads(c.num_attention_heads),
      kv_heads(c.num_key_value_heads),
      head_dim(c.head_dim),
      rope_theta(c.rope_theta),
      mrope_section(c.mrope_section) {
  q_proj = register_module("q_proj", nn::Linear(nn::LinearOptions(c.hidden_size, heads * head_dim).bias(true)));
  k_proj = register_module("k_proj", nn::Linear(nn::LinearOptions(c.hidden_size, kv_heads * head_dim).bias(true)));
  v_proj = register_module("v_proj", nn::Linear(nn::LinearOptions(c.hidden_size, kv_heads * head_dim).bias(true)));
  o_proj = register_module("o_proj", nn::Linear(nn::LinearOptions(heads * head_dim, c.hidden_size).bias(false)));
}

at::Tensor Qwen2AttentionImpl::forward(const at::Tensor& x, const at::Tensor& positions, const at::Tensor& mask,
                                       const at::Tensor& past_k, const at::Tensor& past_v, at::Tensor* new_k,
                                       at::Tensor* new_v) {
  const int64_t b = x.size(0), s = x.size(1);
  // Rotated while each token's heads are still adjacent ([B, S, H, hd]): one kernel for q and k.
  auto [q, k] = apply_rope(q_proj(x).view({b, s, heads, head_dim}), k_proj(x).view({b, s, kv_heads, head_dim}),
                           positions, rope_theta, mrope_section);
  q = q.transpose(1, 2);
  k = k.transpose(1, 2);
  at::Tensor v = v_proj(x).view({b, s, kv_heads, head_dim}).transpose(1, 2);
  if (past_k.defined()) {
    k = torch::cat({past_k, k}, 2);
    v = torch::cat({past_v, v}, 2);
  }
  if (new_k) *new_k = k;
  if (new_v) *new_v = v;
  // Grouped-query attention: query head h reads key/value head h / (heads / kv_heads).
  const int64_t rep = heads / kv_heads;
  if (rep > 1) {
    k = k.repeat_interleave(rep, 1);
    v = v.repeat_interleave(rep, 1);
  }
  at::Tensor scores = torch::matmul(q, k.transpose(2, 3)) * (1.0 / std::sqrt(double(head_dim))) + mask;
  at::Tensor probs = torch::softmax(scores, -1, at::kFloat).to(q.scalar_type());
  at::Tensor out = torch::matmul(probs, v).transpose(1, 2).reshape({b, s, heads * head_dim});
  return o_proj(out);
}

SwiGLUImpl::SwiGLUImpl(int64_t hidden, int64_t intermediate, bool bias) {
  gate_proj = register_module("gate_proj", nn::Linear(nn::LinearOptions(hidden, intermediate).bias(bias)));
  up_proj = register_module("up_proj", nn::Linear(nn::LinearOptions(hidden, intermediate).bias(bias)));
  down_proj = register_module("down_proj", nn::Linear(nn::LinearOptions(intermediate, hidden).bias(bias)));
}

at::Tensor SwiGLUImpl::forward(const at::Tensor& x) { return down_proj(swiglu(gate_proj(x), up_proj(x))); }

Qwen2DecoderLayerImpl::Qwen2DecoderLayerImpl(const Qwen2Config& c) {
  input_layernorm = register_module("input_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
  self_attn = register_module("self_attn", Qwen2Attention(c));
  post_attention_layernorm = register_module("post_attention_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
  mlp = register_module("mlp", SwiGLU(c.hidden_size, c.intermediate_size, /*bias=*/false));
}

at::Tensor Qwen2DecoderLayerImpl::forward(const at::Tensor& x, const at::Tensor& positions, const at::Tensor& mask,
                                          const at::Tensor& past_k, const at::Tensor& past_v, at::Tensor* new_k,
                                          at::Tensor* new_v) {
  at::Tensor h = x + self_attn(input_layernorm(x), positions, mask, past_k, past_v, new_k, new_v);
  return h + mlp(post_attention_layernorm(h));
}

Qwen2ModelImpl::Qwen2ModelImpl(const Qwen2Config& c) {
  embed_tokens = register_module("embed_tokens", nn::Embedding(c.vocab_size, c.hidden_size));
  layers = register_module("layers", nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) layers->push_back(Qwen2DecoderLayer(c));
  norm = register_module("norm", RMSNorm(c.hidden_size, c.rms_norm_eps));
}

namespace {

// One decoder layer under activation checkpointing: forward without saving activations, and in
// backward recompute the layer with autograd on and backpropagate through it; its parameters'
// gradients accumulate as usual, the input's gradient is returned.
struct CheckpointedLayer : torch::autograd::Function<CheckpointedLayer> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, Qwen2DecoderLayerImpl* layer,
                            const at::Tensor& positions, const at::Tensor& mask) {
    ctx->save_for_backward({x, positions, mask});
    ctx->saved_data["layer"] = int64_t(reinterpret_cast<intptr_t>(layer));
    return layer->forward(x, positions, mask);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    const auto saved = ctx->get_saved_variables();
    auto* layer = reinterpret_cast<Qwen2DecoderLayerImpl*>(intptr_t(ctx->saved_data["layer"].toInt()));
    at::Tensor x = saved[0].detach().requires_grad_(true);
    at::Tensor out;
    {
      torch::AutoGradMode grad_on(true);
      out = layer->forward(x, saved[1], saved[2]);
    }
    torch::autograd::backward({out}, {grad_out[0]});
    return {x.grad(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

Qwen2ForCausalLMImpl::Qwen2ForCausalLMImpl(const Qwen2Config& c) : config(c) {
  model = register_module("model", Qwen2Model(c));
  if (!c.tie_word_embeddings)
    lm_head = register_module("lm_head", nn::Linear(nn::LinearOptions(c.hidden_size, c.vocab_size).bias(false)));
}

at::Tensor Qwen2ForCausalLMImpl::embed(const at::Tensor& input_ids) { return model->embed_tokens(input_ids); }

at::Tensor Qwen2ForCausalLMImpl::hidden_states(const at::Tensor& inputs_embeds, const at::Tensor& positions,
                                                const at::Tensor& mask, LayerCache* cache) {
  at::Tensor h = inputs_embeds;
  for (size_t i = 0; i < model->layers->size(); ++i) {
    auto layer = model->layers[i]->as<Qwen2DecoderLayerImpl>();
    if (cache) {
      at::Tensor pk, pv, k, v;
      cache->past(i, &pk, &pv);
      h = layer->forward(h, positions, mask, pk, pv, &k, &v);
      cache->update(i, k, v);
    } else if (checkpoint_activations && is_training() && torch::GradMode::is_enabled()) {
      h = CheckpointedLayer::apply(h, layer, positions, mask);
    } else {
      h = layer->forward(h, positions, mask);
    }
  }
  return model->norm(h);
}

const at::Tensor& Qwen2ForCausalLMImpl::output_weight() const {
  return lm_head ? lm_head->weight : model->embed_tokens->weight;
}

at::Tensor Qwen2ForCausalLMImpl::logits(const at::Tensor& hidden) {
  return lm_head ? lm_head(hidden) : torch::matmul(hidden, model->embed_tokens->weight.t());
}

at::Tensor Qwen2ForCausalLMImpl::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask) {
  at::Tensor embeds = embed(input_ids);
  at::Tensor mask = causal_segment_mask(segments_from_attention_mask(attention_mask), embeds.scalar_type());
  return logits(hidden_states(embeds, text_position_ids(attention_mask), mask));
}

}  // namespace ovr::model
