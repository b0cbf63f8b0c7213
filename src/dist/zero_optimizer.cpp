#include "dist/zero_optimizer.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/error.h"
#include "common/mpi_runtime.h"
#include "ops/kernel_launch.h"
#include "kernels/adamw.h"

namespace ovr::dist {

namespace {
const char* const kStateNames[] = {"/optim/master", "/optim/exp_avg", "/optim/exp_avg_sq"};
int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
}  // namespace

ZeroAdamW::ZeroAdamW(std::vector<ZeroParam> params, Communicator& comm, int stage, AdamWOptions options,
                     int64_t bucket_elems)
    : params_(std::move(params)), comm_(comm), stage_(stage), opt_(options) {
  if (stage != 1 && stage != 2) throw ConfigError("--zero-stage: expected 1 or 2, got " + std::to_string(stage));
  if (params_.empty()) throw Error("ZeRO optimizer: no trainable parameters");
  const int ranks = comm.size();
  const at::Device device = params_[0].tensor.device();
  if (comm.device_buffers() != device.is_cuda())
    throw ConfigError(std::string("the ") + comm.backend() + " communicator needs " +
                      (comm.device_buffers() ? "CUDA" : "host") + " tensors; the model is on " + device.str());

  // Canonical layout and buckets of whole parameters.
  for (size_t i = 0; i < params_.size(); ++i) {
    const at::Tensor& t = params_[i].tensor;
    if (t.scalar_type() != at::kFloat) throw Error("ZeRO optimizer: parameter " + params_[i].name + " is not fp32");
    if (t.device() != device) throw Error("ZeRO optimizer: parameters on several devices");
    offsets_.push_back(total_);
    if (buckets_.empty() || buckets_.back().length >= bucket_elems) {
      Bucket b;
      b.begin = total_;
      b.first_param = i;
      buckets_.push_back(b);
    }
    buckets_.back().length += t.numel();
    buckets_.back().end_param = i + 1;
    total_ += t.numel();
  }
  for (Bucket& b : buckets_) {
    b.slice = ceil_div(b.length, ranks);
    b.padded_begin = padded_total_;
    b.shard_begin = shard_;
    padded_total_ += b.slice * ranks;
    shard_ += b.slice;
    max_bucket_padded_ = std::max(max_bucket_padded_, b.slice * ranks);
    max_slice_ = std::max(max_slice_, b.slice);
    for (size_t i = b.first_param; i < b.end_param; ++i) padded_offsets_.push_back(b.padded_begin + offsets_[i] - b.begin);
  }

  // Weight-decay stretches of this rank's slices.
  for (const Bucket& b : buckets_) {
    int64_t own_begin, own_count;
    owned_range(b, &own_begin, &own_count);
    for (size_t i = b.first_param; i < b.end_param; ++i) {
      if (!params_[i].decay) continue;
      const int64_t lo = std::max(own_begin, offsets_[i]);
      const int64_t hi = std::min(own_begin + own_count, offsets_[i] + params_[i].tensor.numel());
      if (lo < hi) decay_segments_.push_back({b.shard_begin + (lo - own_begin), hi - lo});
    }
  }

  // The parameters become views of one flat buffer (values kept), so that the all-gather writes
  // them in place; the master slices start as copies of this rank's parts.
  const auto f32 = at::TensorOptions().dtype(at::kFloat).device(device);
  flat_params_ = torch::zeros({padded_total_}, f32);
  {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < params_.size(); ++i) {
      at::Tensor& t = params_[i].tensor;
      at::Tensor view = flat_params_.narrow(0, padded_offsets_[i], t.numel()).view(t.sizes());
      view.copy_(t);
      t.set_data(view);
    }
  }
  master_ = torch::zeros({shard_}, f32);
  exp_avg_ = torch::zeros({shard_}, f32);
  exp_avg_sq_ = torch::zeros({shard_}, f32);
  grad_shard_ = torch::zeros({shard_}, f32);
  for (const Bucket& b : buckets_)
    master_.narrow(0, b.shard_begin, b.slice).copy_(flat_params_.narrow(0, b.padded_begin + comm.rank() * b.slice, b.slice));
  if (stage_ == 1) {
    flat_grads_ = torch::zeros({padded_total_}, f32);
    for (size_t i = 0; i < params_.size(); ++i) {
      at::Tensor& t = params_[i].tensor;
      t.mutable_grad() = flat_grads_.narrow(0, padded_offsets_[i], t.numel()).view(t.sizes());
    }
  } else {
    // Reused for every bucket (fresh buffers would be page-faulted in during the collective).
    staging_ = torch::zeros({max_bucket_padded_}, f32);
    reduced_ = torch::zeros({max_slice_}, f32);
  }
}

void ZeroAdamW::owned_range(const Bucket& b, int64_t* begin, int64_t* count) const {
  const int64_t first = std::min(b.length, comm_.rank() * b.slice);
  *begin = b.begin + first;
  *count = std::min(b.slice, b.length - first);
}

void ZeroAdamW::reduce_micro_batch() {
  if (stage_ == 1) return;
  torch::NoGradGuard no_grad;
  double comm_time = 0;
  for (const Bucket& b : buckets_) {
    at::Tensor bucket = staging_.narrow(0, 0, b.slice * comm_.size());
    bucket.zero_();
    for (size_t i = b.first_param; i < b.end_param; ++i) {
      at::Tensor& g = params_[i].tensor.mutable_grad();
      if (!g.defined()) continue;  // a parameter this micro-batch did not use
      bucket.narrow(0, offsets_[i] - b.begin, g.numel()).copy_(g.reshape({-1}));
      g.reset();  // released: only this rank's slice of the gradient is kept
    }
    at::Tensor reduced = reduced_.narrow(0, 0, b.slice);
    const double t0 = monotonic_seconds();
    comm_.reduce_scatter_sum(bucket.data_ptr<float>(), reduced.data_ptr<float>(), b.slice);
    comm_.synchronize();
    comm_time += monotonic_seconds() - t0;
    grad_shard_.narrow(0, b.shard_begin, b.slice).add_(reduced);
  }
  reduce_seconds_ += comm_time;
}

double ZeroAdamW::step(double lr, double max_grad_norm) {
  torch::NoGradGuard no_grad;
  if (stage_ == 1) {
    const double t0 = monotonic_seconds();
    for (const Bucket& b : buckets_)
      comm_.reduce_scatter_sum(flat_grads_.data_ptr<float>() + b.padded_begin,
                               grad_shard_.data_ptr<float>() + b.shard_begin, b.slice);
    comm_.synchronize();
    reduce_seconds_ += monotonic_seconds() - t0;
  }

  // Global gradient norm: padding slots hold zeros, so the sum of squares over slices is exact.
  const ops::KernelLaunch on = ops::kernel_launch(grad_shard_);
  at::Tensor sq_out = torch::zeros({1}, grad_shard_.options().dtype(at::kDouble));
  ops::run_kernel([&] {
    kernels::grad_sum_squares(on.device, grad_shard_.data_ptr<float>(), shard_, sq_out.data_ptr<double>(), on.stream);
  });
  double sq = sq_out.item<double>();
  OVR_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &sq, 1, MPI_DOUBLE, MPI_SUM, comm_.host_comm()));
  const double norm = std::sqrt(sq);
  double clip = 1;
  if (max_grad_norm > 0) clip = std::min(1.0, max_grad_norm / (norm + 1e-6));  // torch.nn.utils.clip_grad_norm_

  // AdamW as torch.optim.AdamW computes it, the clip folded in: one pass over master, moments and
  // gradient (kernels/adamw.h), on the shard's device. Weight decay goes by stretch.
  ++steps_;
  kernels::AdamWArgs a;
  a.lr = lr, a.beta1 = opt_.beta1, a.beta2 = opt_.beta2, a.eps = opt_.eps, a.step = steps_, a.grad_scale = clip;
  auto update = [&](int64_t offset, int64_t length, double weight_decay) {
    if (length <= 0) return;
    a.n = length, a.weight_decay = weight_decay;
    a.master = master_.data_ptr<float>() + offset, a.exp_avg = exp_avg_.data_ptr<float>() + offset;
    a.exp_avg_sq = exp_avg_sq_.data_ptr<float>() + offset, a.grad = grad_shard_.data_ptr<float>() + offset;
    ops::run_kernel([&] { kernels::adamw_step(on.device, a, on.stream); });
  };
  int64_t done = 0;
  for (const Segment& s : decay_segments_) {
    update(done, s.offset - done, 0);
    update(s.offset, s.length, opt_.weight_decay);
    done = s.offset + s.length;
  }
  update(done, shard_ - done, 0);

  gather_parameters();
  grad_shard_.zero_();
  if (stage_ == 1) flat_grads_.zero_();
  return norm;
}

void ZeroAdamW::gather_parameters() {
  const double t0 = monotonic_seconds();
  for (const Bucket& b : buckets_)
    comm_.all_gather(master_.data_ptr<float>() + b.shard_begin, flat_params_.data_ptr<float>() + b.padded_begin,
                     b.slice);
  comm_.synchronize();
  gather_seconds_ += monotonic_seconds() - t0;
}

uint64_t ZeroAdamW::state_bytes_per_rank() const {
  uint64_t elems = 4 * uint64_t(shard_);  // master, two moments, gradient slices
  if (stage_ == 1) elems += uint64_t(padded_total_);
  else elems += uint64_t(max_bucket_padded_ + max_slice_);
  return elems * sizeof(float);
}

std::string ZeroAdamW::layout_json() const {
  nlohmann::json j = nlohmann::json::array();
  for (const ZeroParam& p : params_) j.push_back({p.name, p.tensor.numel()});
  return j.dump();
}

at::Tensor ZeroAdamW::host(const at::Tensor& t) const { return t.is_cuda() ? t.to(at::kCPU) : t; }

void ZeroAdamW::define(io::CheckpointWriter& w) const {
  for (const char* name : kStateNames) w.define(name, io::DType::F32, {total_});
}

void ZeroAdamW::save(io::CheckpointWriter& w) const {
  const at::Tensor* state[] = {&master_, &exp_avg_, &exp_avg_sq_};
  for (int s = 0; s < 3; ++s) {
    const at::Tensor values = host(*state[s]);
    for (const Bucket& b : buckets_) {
      int64_t begin, count;
      owned_range(b, &begin, &count);
      w.write_shard(kStateNames[s], begin, count, values.data_ptr<float>() + b.shard_begin);
    }
  }
}

void ZeroAdamW::load(io::CheckpointReader& r, int64_t steps_taken) {
  const auto it = r.attrs().extra.find("optim_params");
  if (it == r.attrs().extra.end()) throw Error(r.path() + ": no optimizer state (attribute optim_params missing)");
  if (it->second != layout_json())
    throw Error(r.path() + ": its optimizer state is for other trainable parameters than this run's (different "
                           "model or --train); parameters there: " + it->second.substr(0, 200));
  at::Tensor* state[] = {&master_, &exp_avg_, &exp_avg_sq_};
  for (int s = 0; s < 3; ++s) {
    const io::TensorInfo info = r.info(kStateNames[s]);
    if (info.dtype != io::DType::F32 || info.shape != std::vector<int64_t>{total_})
      throw Error(r.path() + ": " + kStateNames[s] + " does not hold " + std::to_string(total_) + " fp32 values");
    // This rank's slices, read in one collective call, then spread to their padded places.
    std::vector<std::pair<int64_t, int64_t>> ranges;
    int64_t owned = 0;
    for (const Bucket& b : buckets_) {
      int64_t begin, count;
      owned_range(b, &begin, &count);
      ranges.emplace_back(begin, count);
      owned += count;
    }
    std::vector<float> packed(static_cast<size_t>(owned));
    r.read_shards(kStateNames[s], ranges, packed.data());
    at::Tensor values = torch::zeros({shard_}, at::kFloat);
    int64_t at = 0;
    for (size_t k = 0; k < buckets_.size(); ++k) {
      std::copy_n(packed.data() + at, ranges[k].second, values.data_ptr<float>() + buckets_[k].shard_begin);
      at += ranges[k].second;
    }
    state[s]->copy_(values);
  }
  steps_ = steps_taken;
  torch::NoGradGuard no_grad;
  gather_parameters();
}

}  // namespace ovr::dist
