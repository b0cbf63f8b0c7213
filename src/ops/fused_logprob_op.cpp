#include "ops/fused_logprob_op.h"

#include <torch/torch.h>

#include <sstream>
#include <stdexcept>

#include "common/error.h"
#include "ops/kernel_launch.h"
#include "kernels/fused_logprob.h"

namespace ovr::ops {

namespace {

namespace K = kernels;

// What the kernel gets: where it runs, and hidden/weight in a dtype it takes. The CPU twin is fp32
// only; on CUDA bf16 passes through (fp32 accumulation) and anything else becomes fp32.
struct KernelInputs {
  K::Device device;
  K::DType dtype;
  at::Tensor hidden, weight, targets;
  void* stream = nullptr;
};

KernelInputs kernel_inputs(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets) {
  KernelInputs in;
  const ops::KernelLaunch launch = ops::kernel_launch(hidden);
  in.device = launch.device, in.stream = launch.stream;
  const bool bf16 = in.device == K::Device::CUDA && hidden.scalar_type() == at::kBFloat16 &&
                    weight.scalar_type() == at::kBFloat16;
  in.dtype = bf16 ? K::DType::BF16 : K::DType::F32;
  const auto st = bf16 ? at::kBFloat16 : at::kFloat;
  in.hidden = hidden.detach().to(st).contiguous();
  in.weight = weight.detach().to(st).contiguous();
  in.targets = targets.detach().to(at::kLong).contiguous();
  return in;
}

struct FusedLogprobFn : torch::autograd::Function<FusedLogprobFn> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& hidden,
                                                const at::Tensor& weight, const at::Tensor& targets,
                                                bool with_entropy) {
    const c10::DeviceGuard guard(hidden.device());  // the kernels run on the current device
    KernelInputs in = kernel_inputs(hidden, weight, targets);
    const int64_t T = in.hidden.size(0);
    const auto f32 = hidden.options().dtype(at::kFloat);
    at::Tensor logprob = at::empty({T}, f32), lse = at::empty({T}, f32);
    at::Tensor entropy = with_entropy ? at::empty({T}, f32) : at::Tensor();

    K::LogprobForwardArgs a;
    a.T = T, a.V = in.weight.size(0), a.H = in.weight.size(1), a.dtype = in.dtype;
    a.hidden = in.hidden.data_ptr(), a.weight = in.weight.data_ptr(), a.targets = in.targets.data_ptr<int64_t>();
    a.logprob = logprob.data_ptr<float>(), a.lse = lse.data_ptr<float>();
    a.entropy = with_entropy ? entropy.data_ptr<float>() : nullptr;
    ops::run_kernel([&] { K::fused_logprob_forward(in.device, a, in.stream); });

    // The original tensors are saved (not the fp32 copies): the backward makes its copies again
    // rather than hold a second [V, H] weight between forward and backward.
    ctx->save_for_backward({hidden, weight, targets, lse, with_entropy ? entropy : at::Tensor()});
    ctx->saved_data["with_entropy"] = with_entropy;
    return with_entropy ? torch::autograd::variable_list{logprob, entropy} : torch::autograd::variable_list{logprob};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &hidden = saved[0], &weight = saved[1], &targets = saved[2], &lse = saved[3];
    const bool with_entropy = ctx->saved_data["with_entropy"].toBool();
    const c10::DeviceGuard guard(hidden.device());
    KernelInputs in = kernel_inputs(hidden, weight, targets);
    auto f32 = [](const at::Tensor& g) { return g.defined() ? g.to(at::kFloat).contiguous() : g; };
    const at::Tensor g_logprob = f32(grads[0]);
    const at::Tensor g_entropy = with_entropy ? f32(grads[1]) : at::Tensor();
    const bool want_hidden = ctx->needs_input_grad(0), want_weight = ctx->needs_input_grad(1);
    const auto opts = hidden.options().dtype(at::kFloat);
    at::Tensor grad_hidden = want_hidden ? at::empty(in.hidden.sizes(), opts) : at::Tensor();
    at::Tensor grad_weight = want_weight ? at::empty(in.weight.sizes(), opts) : at::Tensor();

    K::LogprobBackwardArgs a;
    a.T = in.hidden.size(0), a.V = in.weight.size(0), a.H = in.weight.size(1), a.dtype = in.dtype;
    a.hidden = in.hidden.data_ptr(), a.weight = in.weight.data_ptr(), a.targets = in.targets.data_ptr<int64_t>();
    a.lse = lse.data_ptr<float>();
    a.entropy = with_entropy ? saved[4].data_ptr<float>() : nullptr;
    a.grad_logprob = g_logprob.defined() ? g_logprob.data_ptr<float>() : nullptr;
    a.grad_entropy = g_entropy.defined() ? g_entropy.data_ptr<float>() : nullptr;
    a.grad_hidden = want_hidden ? grad_hidden.data_ptr<float>() : nullptr;
    a.grad_weight = want_weight ? grad_weight.data_ptr<float>() : nullptr;
    if (want_hidden || want_weight) ops::run_kernel([&] { K::fused_logprob_backward(in.device, a, in.stream); });
    if (want_hidden) grad_hidden = grad_hidden.to(hidden.scalar_type());
    if (want_weight) grad_weight = grad_weight.to(weight.scalar_type());
    return {grad_hidden, grad_weight, at::Tensor(), at::Tensor()};
  }
};

// The SFT loss with its gradients computed in the forward (see fused_nll_sum in the header).
struct FusedNllSumFn : torch::autograd::Function<FusedNllSumFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& hidden, const at::Tensor& weight,
                            const at::Tensor& targets) {
    const c10::DeviceGuard guard(hidden.device());
    KernelInputs in = kernel_inputs(hidden, weight, targets);
    const int64_t T = in.hidden.size(0), V = in.weight.size(0);
    const auto f32 = hidden.options().dtype(at::kFloat);
    at::Tensor logprob = at::empty({T}, f32), lse = at::empty({T}, f32);
    K::LogprobForwardArgs a;
    a.T = T, a.V = V, a.H = in.weight.size(1), a.dtype = in.dtype;
    a.hidden = in.hidden.data_ptr(), a.weight = in.weight.data_ptr(), a.targets = in.targets.data_ptr<int64_t>();
    a.logprob = logprob.data_ptr<float>(), a.lse = lse.data_ptr<float>();

    // Inside a custom Function's forward autograd is off, but the inputs still say what they need.
    const bool want_hidden = hidden.requires_grad(), want_weight = weight.requires_grad();
    if (!want_hidden && !want_weight) {
      ops::run_kernel([&] { K::fused_logprob_forward(in.device, a, in.stream); });
      return -logprob.sum();
    }
    a.chunks = {512, V};  // the whole vocabulary per tile: the logits of a chunk are computed once
    const at::Tensor minus_one = at::full({T}, -1.0f, f32);
    at::Tensor grad_hidden = want_hidden ? at::empty(in.hidden.sizes(), f32) : at::Tensor();
    at::Tensor grad_weight = want_weight ? at::empty(in.weight.sizes(), f32) : at::Tensor();
    K::LogprobGrads g;
    g.grad_logprob = minus_one.data_ptr<float>();
    g.grad_hidden = want_hidden ? grad_hidden.data_ptr<float>() : nullptr;
    g.grad_weight = want_weight ? grad_weight.data_ptr<float>() : nullptr;
    ops::run_kernel([&] { K::fused_logprob_forward_backward(in.device, a, g, in.stream); });
    ctx->saved_data["grad_hidden"] = want_hidden ? grad_hidden.to(hidden.scalar_type()) : at::Tensor();
    ctx->saved_data["grad_weight"] = want_weight ? grad_weight.to(weight.scalar_type()) : at::Tensor();
    return -logprob.sum();
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    // Taken out of the context, so that autograd may keep these very tensors as the .grad.
    auto take = [&](const char* name) {
      at::Tensor t = ctx->saved_data[name].toTensor();
      ctx->saved_data.erase(name);
      return t.defined() ? t.mul_(grads[0].to(t.scalar_type())) : t;
    };
    at::Tensor grad_hidden = take("grad_hidden"), grad_weight = take("grad_weight");
    return {grad_hidden, grad_weight, at::Tensor()};
  }
};

void check_shapes(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets) {
  if (hidden.dim() != 2 || weight.dim() != 2 || targets.dim() != 1 || hidden.size(1) != weight.size(1) ||
      targets.size(0) != hidden.size(0)) {
    std::ostringstream msg;
    msg << "fused_logprob: want hidden [T, H], weight [V, H], targets [T]; got hidden " << hidden.sizes() << ", weight "
        << weight.sizes() << ", targets " << targets.sizes();
    throw Error(msg.str());
  }
  if (hidden.device() != weight.device() || hidden.device() != targets.device())
    throw Error("fused_logprob: hidden, weight and targets must be on one device");
}

}  // namespace

at::Tensor fused_nll_sum(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets) {
  check_shapes(hidden, weight, targets);
  return FusedNllSumFn::apply(hidden, weight, targets);
}

TokenLogprobs fused_logprob(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets,
                            bool with_entropy) {
  check_shapes(hidden, weight, targets);
  const auto out = FusedLogprobFn::apply(hidden, weight, targets, with_entropy);
  return {out[0], with_entropy ? out[1] : at::Tensor()};
}

}  // namespace ovr::ops
