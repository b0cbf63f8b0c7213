// A model read once by all ranks together. Every rank loading the whole model from the parallel
// filesystem reads it N times: for a 7B policy and critic on 64 ranks, 2 TB per RL iteration.
// Here each rank reads 1/N of every tensor's rows and an all-gather over the ranks' network gives
// every rank the whole tensor: the filesystem serves the model once.
#pragma once
#include <mpi.h>

#include <memory>
#include <string>

#include "io/tensor_store.h"

namespace ovr::io {

// Collective: every rank of comm must call read_rows for the same tensors, with the same rows,
// in the same order (model::load_parameters does). A read that fails on any rank throws the same
// error on every rank. On MPI_COMM_SELF it reads as open_model_source does.
std::unique_ptr<ModelSource> open_model_source_shared(const std::string& path, MPI_Comm comm);

// Bytes of tensors this process has read from files through shared sources (benchmarks, tests,
// ovr_ppo's metrics).
uint64_t shared_source_bytes_read();

}  // namespace ovr::io
