// The HDF5 checkpoint every executable shares (format: docs/checkpoint-format.md).
//
//  /model/<HF name>   each tensor under its Hugging Face name, dtype kept (bf16/f16 as HDF5 floats)
//  /optim/<name>      flat 1-D fp32 optimizer state in a canonical parameter order; rank r writes
//                     its contiguous ZeRO shard, a reader on any number of ranks reads its own range
//  /state/<name>      small tensors: data cursor, RNG state, scheduler state
//  root attributes    format, format_version, step, role, model_config, run_config, code_version
//  every dataset      attributes dtype and crc32 (of its bytes, checked when it is read)
//
// A checkpoint is written to "<path>.tmp", closed, fsynced and renamed to <path>; then, if asked,
// "<dir>/latest" is atomically replaced by a file holding <path>'s name. A crash at any moment
// leaves the previous checkpoint and `latest` intact.
#pragma once
#include <mpi.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "io/dtype.h"

namespace ovr::io {

constexpr const char* kCheckpointFormat = "ovr-checkpoint";
constexpr int kCheckpointFormatVersion = 1;

struct CheckpointAttrs {
  int64_t step = 0;
  std::string role = "policy";        // policy | critic | average | converted
  std::string model_config = "{}";    // the model's config.json text, kept byte for byte
  std::string run_config = "{}";      // the effective configuration of the run (JSON)
  std::string code_version;           // filled by the writer
  std::map<std::string, std::string> extra;  // further string attributes (e.g. safetensors metadata)
};

// Rows of a dataset are slices along its first dimension (elements, for a 1-D dataset; the
// whole value, for a scalar, which has one row).
int64_t dataset_rows(const TensorInfo& info);
uint64_t row_bytes(const TensorInfo& info);

class CheckpointWriter {
 public:
  // Collective over comm: creates "<path>.tmp" (through MPI-IO when comm has several ranks).
  CheckpointWriter(const std::string& path, MPI_Comm comm, const CheckpointAttrs& attrs);
  // Without commit(): closes and removes the temporary file; `path` and `latest` are untouched.
  ~CheckpointWriter();
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;

  // Collective: every rank declares the same datasets ("/model/x", "/optim/exp_avg", ...) in the
  // same order. info.name is ignored; the dataset path names it.
  void define(const std::string& dataset, DType dtype, const std::vector<int64_t>& shape);
  // Independent: the one rank that owns `dataset` writes rows [row_begin, row_begin+row_count),
  // in increasing order over successive calls.
  void write_rows(const std::string& dataset, int64_t row_begin, int64_t row_count, const void* src);
  // Collective: each rank writes elements [offset, offset+count) of a 1-D dataset (count may be
  // 0); over all calls, the ranks' ranges tile the dataset. A rank's successive ranges go up but
  // need not be contiguous (ZeRO slices of several buckets).
  void write_shard(const std::string& dataset, int64_t offset, int64_t count, const void* src);
  // Collective: checks that every dataset was written completely, stores the checksums, closes,
  // fsyncs and renames to `path`; then, if update_latest, points "<dir>/latest" at it.
  void commit(bool update_latest);

  // Called on rank 0 as the commit passes each step ("data-written", "closed", "renamed",
  // "latest-updated"): progress logging, and the crash tests, which kill the writer there.
  std::function<void(const char* phase)> on_phase;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class CheckpointReader {
 public:
  // Opens a checkpoint file, or a checkpoint directory through its `latest` pointer. Collective
  // over comm (MPI-IO when comm has several ranks, else a plain POSIX open). Refuses a file that
  // is not an ovr checkpoint, has a newer format version, or was never committed.
  explicit CheckpointReader(const std::string& path, MPI_Comm comm = MPI_COMM_SELF);
  ~CheckpointReader();
  CheckpointReader(const CheckpointReader&) = delete;
  CheckpointReader& operator=(const CheckpointReader&) = delete;

  const std::string& path() const;  // the file actually opened
  const CheckpointAttrs& attrs() const;
  bool has(const std::string& dataset) const;
  TensorInfo info(const std::string& dataset) const;  // info.name = the dataset path
  uint32_t stored_crc(const std::string& dataset) const;  // the CRC-32 of its bytes, written at commit
  // The datasets directly under a group ("/model"), in the order they were defined; names are
  // relative to the group.
  std::vector<TensorInfo> list(const std::string& group) const;

  // Independent. Reading a dataset's rows in order from row 0 to the end checks its CRC when the
  // last row arrives; a mismatch throws an error naming the file and the dataset.
  void read_rows(const std::string& dataset, int64_t row_begin, int64_t row_count, void* dst);
  void read(const std::string& dataset, void* dst);  // the whole dataset, checked
  // Collective: each rank reads elements [offset, offset+count) of a 1-D dataset; the ranks'
  // ranges must tile the dataset, and the combined CRC is checked on every rank.
  void read_shard(const std::string& dataset, int64_t offset, int64_t count, void* dst);
  // The same for several increasing ranges per rank (every rank passes as many), stored one after
  // another in dst; the ranges of all ranks together must tile the dataset.
  void read_shards(const std::string& dataset, const std::vector<std::pair<int64_t, int64_t>>& ranges, void* dst);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Reads "<dir>/latest" and returns the checkpoint path it names; throws if missing or invalid.
std::string resolve_latest(const std::string& dir);

// Whether `path` names one of our checkpoints (a .h5 file, or a directory with a "latest" pointer)
// rather than a Hugging Face model directory; says nothing about whether it is readable.
bool is_ovr_checkpoint(const std::string& path);

}  // namespace ovr::io
