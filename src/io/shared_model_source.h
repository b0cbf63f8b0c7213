// A model read once by all ranks together. Every rank loading the whole model from the parallel
// filesystem reads it N times: for a 7B policy and critic on 64 ranks, 2 TB per RL iteration.
// Here each rank reads 1/N of every tensor's rows and an all-gather over the ranks' network gives
// every rank the whole tensor: the filesystem serves the model once.
#pragma once
#include <mpi.h>

#include <memory>
#include <string>
#include <vector>

#include "io/tensor_store.h"

namespace ovr::io {

// Collective: every rank of comm must call read_rows for the same tensors, with the same rows,
// in the same order (model::load_parameters does). A read that fails on any rank throws the same
// error on every rank. A whole tensor read is checked against its stored CRC-32 (HDF5), combined
// from the ranks' slices, on every rank. On MPI_COMM_SELF it reads as open_model_source does.
std::unique_ptr<ModelSource> open_model_source_shared(const std::string& path, MPI_Comm comm);

// How `rows` rows of `row_bytes` are read and gathered: rounds of at most max(1, max_round_bytes /
// row_bytes) rows, each split evenly over the ranks. Every byte count and displacement of a
// round stays under max_round_bytes (<= 1 GiB: MPI's int counts), whatever the tensor's size.
struct SliceRound {
  int64_t first_row = 0, rows = 0;
  std::vector<int> counts, displs;  // per rank, bytes within the round
};
std::vector<SliceRound> slice_rounds(int64_t rows, uint64_t row_bytes, int ranks, uint64_t max_round_bytes);

// Bytes of tensors this process has read from files through shared sources (benchmarks, tests,
// ovr_ppo's metrics).
uint64_t shared_source_bytes_read();

}  // namespace ovr::io
