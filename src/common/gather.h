// Moving byte strings of any size between ranks. MPI counts are int: one call moves at most
// 2^31 - 1 elements, and the results of a large evaluation (e.g. 64 samples x 32k tokens x 500
// problems, several GB of text) exceed that. These helpers take 64-bit sizes and move the bytes
// in pieces that each fit one call.
#pragma once
#include <mpi.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ovr {

// Largest piece one MPI call moves here: 1 GiB, well inside int.
constexpr uint64_t kMaxMpiPiece = uint64_t(1) << 30;

// [offset, size) pieces of at most max_piece bytes covering [0, n) in order; none for n = 0.
std::vector<std::pair<uint64_t, uint64_t>> byte_pieces(uint64_t n, uint64_t max_piece = kMaxMpiPiece);

// Every rank's `mine`, concatenated in rank order, on rank 0 ("" on the others). Collective.
std::string gather_to_root(MPI_Comm comm, const std::string& mine, uint64_t max_piece = kMaxMpiPiece);

// This rank's byte offset in the concatenation of every rank's `n` (an exclusive prefix sum), and
// the total. Collective.
std::pair<uint64_t, uint64_t> offset_and_total(MPI_Comm comm, uint64_t n);

}  // namespace ovr
