// Streaming tensor copy (ovr_convert) and weighted averaging (ovr_average) between stores.
// Tensors are split across the ranks of comm; each tensor is processed in chunks of rows, so
// peak memory is a few chunks, whatever the size of the model or of its largest tensor.
#pragma once
#include <mpi.h>

#include <cstdint>
#include <vector>

#include "io/tensor_store.h"

namespace ovr::io {

// Which rank handles which tensor: largest first onto the least-loaded rank; the same answer
// on every rank.
std::vector<int> assign_tensors(const std::vector<TensorInfo>& tensors, int nranks);

struct StreamStats {
  uint64_t bytes_read = 0, bytes_written = 0;  // by this rank
  int tensors = 0;                             // handled by this rank
};

// Copies every tensor of src into sink, byte for byte (the sink was created with src's tensors).
StreamStats copy_tensors(ModelSource& src, ModelSink& sink, MPI_Comm comm, uint64_t chunk_bytes);

// Checks that all inputs hold the same tensor names, dtypes and shapes as inputs[0]; throws an
// error naming the first mismatch (tensor, input, and what differs).
void check_same_tensors(const std::vector<ModelSource*>& inputs);

// sink <- sum_i w_i x_i / sum_i w_i for every floating tensor, accumulated in fp32 (fp64 for F64
// tensors) and stored in the inputs' dtype. Integer and bool tensors must be equal in all inputs
// and are copied.
StreamStats average_tensors(const std::vector<ModelSource*>& inputs, const std::vector<double>& weights,
                            ModelSink& sink, MPI_Comm comm, uint64_t chunk_bytes);

}  // namespace ovr::io
