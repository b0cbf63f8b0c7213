// AdamW with ZeRO stage 1 or 2 data parallelism (Rajbhandari et al., 2020).
//
// The trainable parameters are laid end to end in a canonical order (the order given, which the
// trainer takes from the module: the same on every rank and every run) and grouped into buckets
// of whole parameters (about `bucket_elems` floats each; one large parameter is a bucket of its
// own). Every bucket is split evenly over the ranks: rank r owns slice r of each bucket (the last
// slices are padded with zeros to equal size, which NCCL needs). A rank keeps only its slices of
// the fp32 master weights and of both Adam moments: optimizer memory is 1/N per rank.
//
// One step:
//   stage 1: gradients accumulate over the micro-batches in one flat buffer (the parameters'
//            .grad are views into it); at the step, each bucket is reduce-scattered once;
//   stage 2: after every micro-batch each bucket is reduce-scattered and added into the rank's
//            gradient slice, and the full gradients are released: only 1/N of the gradient
//            lives between micro-batches (during backward, autograd still holds them whole);
//   then: global gradient norm (sum of squares over slices, all-reduced), clipping, AdamW on the
//   rank's slices, and an all-gather of the updated master slices into the parameters, which are
//   views of one flat buffer. AdamW is torch.optim.AdamW's arithmetic, element for element, in one fused
//   pass (kernels/adamw.h: CUDA on a GPU, the CPU twin otherwise), the clip folded in.
//
// In a checkpoint the state is stored as flat 1-D datasets over the canonical order, without
// padding (/optim/master, /optim/exp_avg, /optim/exp_avg_sq), each rank writing its slices; so a
// run resumes on any number of ranks and with any bucket size.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "dist/communicator.h"
#include "io/hdf5_checkpoint.h"

namespace ovr::dist {

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};

struct ZeroParam {
  std::string name;
  at::Tensor tensor;  // fp32, requires grad; becomes a view of the flat parameter buffer
  bool decay = true;  // weight decay applies to it
};

class ZeroAdamW {
 public:
  ZeroAdamW(std::vector<ZeroParam> params, Communicator& comm, int stage, AdamWOptions options,
            int64_t bucket_elems = 32 << 20);

  // Stage 2: reduce-scatters this micro-batch's gradients into the rank's slices and releases
  // them. Stage 1: nothing (they keep accumulating). Call after each micro-batch's backward.
  void reduce_micro_batch();
  // The optimizer step at learning rate `lr`; clips the global gradient norm to max_grad_norm when
  // it is > 0. Returns the norm before clipping. Leaves gradients zeroed for the next step.
  double step(double lr, double max_grad_norm);

  int64_t steps_taken() const { return steps_; }
  int64_t numel() const { return total_; }            // trainable parameters
  int64_t shard_numel() const { return shard_; }      // per rank, padding included
  uint64_t state_bytes_per_rank() const;              // master + moments + gradient state
  int stage() const { return stage_; }
  // Seconds spent in gradient reduce-scatter and parameter all-gather so far (for metrics/bench).
  double reduce_seconds() const { return reduce_seconds_; }
  double gather_seconds() const { return gather_seconds_; }

  // Checkpoint I/O (collective over the communicator's ranks). The parameter list is stored as
  // a root attribute; loading checks it and then sets the parameters from the master weights.
  std::string layout_json() const;  // [[name, numel], ...]
  void define(io::CheckpointWriter& w) const;
  void save(io::CheckpointWriter& w) const;
  void load(io::CheckpointReader& r, int64_t steps_taken);

 private:
  struct Bucket {
    int64_t begin = 0, length = 0;  // canonical flat range
    int64_t slice = 0;              // elements per rank (ceil(length / ranks))
    int64_t padded_begin = 0;       // offset in the flat (padded) parameter/gradient buffers
    int64_t shard_begin = 0;        // offset in this rank's slices
    size_t first_param = 0, end_param = 0;
  };
  struct Segment {  // a stretch of this rank's shard with weight decay
    int64_t offset, length;
  };
  // This rank's canonical range of bucket b: [begin, begin + count).
  void owned_range(const Bucket& b, int64_t* begin, int64_t* count) const;
  void gather_parameters();
  at::Tensor host(const at::Tensor& t) const;

  std::vector<ZeroParam> params_;
  std::vector<int64_t> offsets_;  // canonical offset of each parameter
  std::vector<int64_t> padded_offsets_;
  std::vector<Bucket> buckets_;
  std::vector<Segment> decay_segments_;
  Communicator& comm_;
  int stage_;
  AdamWOptions opt_;
  int64_t total_ = 0, padded_total_ = 0, shard_ = 0, max_bucket_padded_ = 0, max_slice_ = 0, steps_ = 0;
  double reduce_seconds_ = 0, gather_seconds_ = 0;
  at::Tensor flat_params_, flat_grads_, staging_, reduced_;  // flat_grads_: stage 1; staging_, reduced_: stage 2
  at::Tensor master_, exp_avg_, exp_avg_sq_, grad_shard_;
};

}  // namespace ovr::dist
