// One interface over the places model tensors live: our HDF5 checkpoint, a safetensors file,
// and a Hugging Face model directory (config.json + safetensors, sharded or not). ovr_convert
// and ovr_average stream through it row by row, so memory follows the chunk, not the model.
#pragma once
#include <mpi.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/dtype.h"
#include "io/hdf5_checkpoint.h"

namespace ovr::io {

enum class StoreFormat { Hdf5, Safetensors, HfDir };
const char* store_format_name(StoreFormat f);  // "hdf5", "safetensors", "hf"
// "hdf5" | "h5" | "safetensors" | "hf"; throws ConfigError otherwise.
StoreFormat parse_store_format(const std::string& name);
// An existing input: a directory with `latest` is a checkpoint directory (HDF5), another
// directory is a Hugging Face model, else the file's extension (.h5/.hdf5, .safetensors) decides.
StoreFormat detect_input_format(const std::string& path);
// An output path: .h5/.hdf5 -> HDF5, .safetensors -> one safetensors file, else a HF directory.
StoreFormat detect_output_format(const std::string& path);

class ModelSource {
 public:
  virtual ~ModelSource() = default;
  virtual const std::string& origin() const = 0;                  // the path, for messages
  virtual const std::vector<TensorInfo>& tensors() const = 0;     // in stored order
  virtual void read_rows(const std::string& name, int64_t row_begin, int64_t row_count, void* dst) = 0;
  virtual std::string model_config() const = 0;                   // config.json text, "" if none
  virtual std::map<std::string, std::string> metadata() const = 0;  // safetensors "__metadata__"
  // The CRC-32 a tensor's bytes must have (our HDF5 checkpoints store one per dataset), for a
  // reader that cannot have read_rows check it (reading in slices); false when the format has none.
  virtual bool stored_crc(const std::string& name, uint32_t* crc) const { (void)name, (void)crc; return false; }
};

// Opens on the calling rank alone (reads are independent).
std::unique_ptr<ModelSource> open_model_source(const std::string& path);

struct SinkOptions {
  std::string model_config;                       // written as config.json / the model_config attribute
  std::map<std::string, std::string> metadata;    // safetensors "__metadata__"
  CheckpointAttrs attrs;                          // HDF5 only (model_config above overrides attrs')
  uint64_t max_shard_size = 5'000'000'000;        // HF directory: bytes per safetensors shard
  bool update_latest = false;                     // HDF5 only: point <dir>/latest at the output
  bool overwrite = false;                         // replace an existing output directory
};

// Collective over comm: every rank passes the same tensor list. Each tensor is then written by
// exactly one rank (rows in increasing order); commit() is collective and makes the output
// appear atomically (a temporary name renamed at the end).
class ModelSink {
 public:
  virtual ~ModelSink() = default;
  virtual void write_rows(const std::string& name, int64_t row_begin, int64_t row_count, const void* src) = 0;
  virtual void commit() = 0;
};

std::unique_ptr<ModelSink> create_model_sink(const std::string& path, StoreFormat format,
                                             const std::vector<TensorInfo>& tensors, const SinkOptions& options,
                                             MPI_Comm comm);

// Parses a safetensors "__metadata__" map stored as a JSON object string (and back).
std::map<std::string, std::string> metadata_from_json(const std::string& text, const std::string& origin);
std::string metadata_to_json(const std::map<std::string, std::string>& metadata);

}  // namespace ovr::io
