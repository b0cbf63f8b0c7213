// Hugging Face safetensors: a validated reader (one file), a streaming writer, and the
// sharded-directory index (model.safetensors.index.json).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "io/dtype.h"

namespace ovr::io {

// Largest header we accept, as the reference implementation does (100 MB).
constexpr uint64_t kSafetensorsMaxHeader = 100'000'000;

struct SafetensorsEntry {
  TensorInfo info;
  uint64_t begin = 0;  // byte offsets relative to the start of the data section
  uint64_t end = 0;
};

// The parsed and validated header of a safetensors file.
struct SafetensorsHeader {
  std::vector<SafetensorsEntry> entries;         // in data-offset order
  std::map<std::string, std::string> metadata;   // "__metadata__" (string -> string)
  uint64_t header_size = 0;                      // N, the JSON length after the 8-byte prefix
  uint64_t data_start() const { return 8 + header_size; }
};

// Parses and fully validates a header before anything trusts it: the 8-byte length is sane and
// in bounds, the JSON is well-formed, every dtype is known, every shape is non-negative and its
// byte count = dtype size x numel (no overflow), offsets are in bounds, do not overlap and tile
// the data section exactly. `bytes` holds the first min(file_size, 8 + N) bytes of the file.
// Throws ovr::Error("<origin>: ...") on any violation; never reads out of bounds.
SafetensorsHeader parse_safetensors_header(const uint8_t* bytes, size_t nbytes, uint64_t file_size,
                                           const std::string& origin);

// Read-only access to one file. Tensor data are read with pread, one tensor (or a slice of
// one) at a time, so memory use follows what the caller asks for.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);  // opens, reads and validates the header
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const SafetensorsHeader& header() const { return header_; }
  const SafetensorsEntry* find(const std::string& name) const;  // nullptr if absent
  // Reads bytes [offset, offset + n) of tensor `name`'s data into dst.
  void read(const std::string& name, void* dst, uint64_t offset, uint64_t n) const;
  void read(const std::string& name, void* dst) const;  // the whole tensor

 private:
  std::string path_;
  int fd_ = -1;
  SafetensorsHeader header_;
  std::map<std::string, size_t> index_;
};

// Writes one safetensors file whose tensor list is known up front: the header is written at
// construction, then each tensor's bytes at its offset (in any order, in pieces if wanted).
// Writers on several processes may each open the same path with `create = false` after one
// process created it, and write disjoint tensors (pwrite at fixed offsets).
class SafetensorsWriter {
 public:
  SafetensorsWriter(const std::string& path, const std::vector<TensorInfo>& tensors,
                    const std::map<std::string, std::string>& metadata, bool create = true);
  ~SafetensorsWriter();
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

  void write(const std::string& name, const void* src, uint64_t offset, uint64_t n);
  void write(const std::string& name, const void* src);
  void close();  // fsync + close; throws on failure (the destructor only closes)
  // Total file size for a tensor list (header included), e.g. to plan shards.
  static uint64_t file_size(const std::vector<TensorInfo>& tensors,
                            const std::map<std::string, std::string>& metadata);

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t data_start_ = 0;
  std::map<std::string, SafetensorsEntry> entries_;
};

// The index of a sharded Hugging Face checkpoint.
struct SafetensorsIndex {
  uint64_t total_size = 0;
  std::map<std::string, std::string> weight_map;  // tensor name -> shard file name
};
SafetensorsIndex read_safetensors_index(const std::string& path);  // validates; clear errors
void write_safetensors_index(const std::string& path, const SafetensorsIndex& index);

}  // namespace ovr::io
