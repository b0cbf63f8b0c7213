#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "io/fs.h"

namespace ovr::io {

namespace {

using json = nlohmann::json;
// The writer keeps the caller's tensor order in the header text too, so a header reads in data
// order, as the reference writer's do.
using ordered_json = nlohmann::ordered_json;

// A valid header nests at most object -> tensor object -> shape array; anything much deeper is
// hostile, and refusing it early bounds the memory a crafted header can make us allocate.
constexpr int kMaxJsonDepth = 8;

// Names and parser messages come from untrusted headers and may be megabytes long; keep error
// messages readable.
std::string clip(const std::string& s, size_t max = 200) {
  return s.size() <= max ? s : s.substr(0, max) + "...";
}

std::string quoted(const std::string& s) { return "'" + clip(s) + "'"; }

// A short description of an unexpected JSON value: numbers verbatim, anything else by type.
std::string describe(const nlohmann::json& v) {
  return v.is_number() ? v.dump() : std::string(v.type_name());
}

std::string offsets_string(uint64_t begin, uint64_t end) {
  return "[" + std::to_string(begin) + ", " + std::to_string(end) + "]";
}

uint64_t load_le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

void store_le64(uint64_t v, char* p) {
  for (int i = 0; i < 8; ++i) p[i] = char((v >> (8 * i)) & 0xff);
}

// numel and byte count of a shape, or a message saying why it is unusable. Checked here because
// TensorInfo::numel() trusts its input and a crafted shape must not reach it.
bool checked_nbytes(const std::vector<int64_t>& shape, DType dtype, uint64_t* nbytes,
                    std::string* why) {
  int64_t numel = 1;
  for (int64_t d : shape) {
    if (d < 0) {
      *why = "negative dimension in shape " + shape_string(shape);
      return false;
    }
    if (__builtin_mul_overflow(numel, d, &numel)) {
      *why = "shape " + shape_string(shape) + " overflows the element count";
      return false;
    }
  }
  if (__builtin_mul_overflow(uint64_t(numel), uint64_t(dtype_size(dtype)), nbytes)) {
    *why = "shape " + shape_string(shape) + " x " + dtype_name(dtype) + " overflows the byte count";
    return false;
  }
  return true;
}

// ---- header parsing -----------------------------------------------------------------------

json parse_header_json(const uint8_t* text, uint64_t n, const std::string& origin) {
  auto depth_guard = [&origin](int depth, json::parse_event_t event, json&) {
    bool opens = event == json::parse_event_t::object_start ||
                 event == json::parse_event_t::array_start;
    if (opens && depth >= kMaxJsonDepth)
      throw Error(origin + ": header JSON is nested deeper than " + std::to_string(kMaxJsonDepth) +
                  " levels");
    return true;
  };
  const char* first = reinterpret_cast<const char*>(text);
  // nlohmann's lexer takes a NUL for the end of input and would silently ignore what follows.
  if (const void* nul = std::memchr(first, 0, size_t(n)))
    throw Error(origin + ": header is not valid JSON: NUL byte at offset " +
                std::to_string(static_cast<const char*>(nul) - first));
  try {
    return json::parse(first, first + n, depth_guard);
  } catch (const json::exception& e) {
    throw Error(origin + ": header is not valid JSON: " + clip(e.what(), 400));
  }
}

void parse_metadata(const json& value, const std::string& origin,
                    std::map<std::string, std::string>* out) {
  if (!value.is_object())
    throw Error(origin + ": __metadata__ is not a JSON object (" + value.type_name() + ")");
  for (const auto& item : value.items()) {
    if (!item.value().is_string())
      throw Error(origin + ": __metadata__ value for key " + quoted(item.key()) +
                  " is not a string (" + item.value().type_name() + ")");
    (*out)[item.key()] = item.value().get<std::string>();
  }
}

std::vector<int64_t> parse_shape(const json& value, const std::string& where) {
  if (!value.is_array()) throw Error(where + ": shape is not an array (" + value.type_name() + ")");
  std::vector<int64_t> shape;
  shape.reserve(value.size());
  for (const json& d : value) {
    if (d.is_number_unsigned()) {
      uint64_t u = d.get<uint64_t>();
      if (u > uint64_t(std::numeric_limits<int64_t>::max()))
        throw Error(where + ": dimension " + std::to_string(u) + " does not fit in int64");
      shape.push_back(int64_t(u));
    } else if (d.is_number_integer()) {
      // nlohmann stores non-negative integers as unsigned, so this one is negative.
      throw Error(where + ": negative dimension " + std::to_string(d.get<int64_t>()) +
                  " in shape");
    } else {
      throw Error(where + ": shape entry is not an integer (" + describe(d) + ")");
    }
  }
  return shape;
}

void parse_offsets(const json& value, const std::string& where, uint64_t* begin, uint64_t* end) {
  if (!value.is_array() || value.size() != 2)
    throw Error(where + ": data_offsets is not an array of 2 integers");
  for (const json& v : value)
    if (!v.is_number_unsigned())
      throw Error(where + ": data_offsets entry is not a non-negative integer (" + describe(v) +
                  ")");
  *begin = value[0].get<uint64_t>();
  *end = value[1].get<uint64_t>();
  if (*begin > *end)
    throw Error(where + ": data_offsets " + offsets_string(*begin, *end) + " have begin > end");
}

SafetensorsEntry parse_entry(const std::string& name, const json& value,
                             const std::string& origin) {
  if (name.empty()) throw Error(origin + ": tensor with an empty name");
  const std::string where = origin + ": tensor " + quoted(name);
  if (!value.is_object())
    throw Error(where + ": entry is not a JSON object (" + value.type_name() + ")");
  for (const auto& item : value.items())
    if (item.key() != "dtype" && item.key() != "shape" && item.key() != "data_offsets")
      throw Error(where + ": unexpected field " + quoted(item.key()));
  for (const char* field : {"dtype", "shape", "data_offsets"})
    if (!value.contains(field)) throw Error(where + ": missing field " + quoted(field));

  SafetensorsEntry e;
  e.info.name = name;
  const json& dtype = value["dtype"];
  if (!dtype.is_string()) throw Error(where + ": dtype is not a string (" + describe(dtype) + ")");
  if (!dtype_from_name(dtype.get<std::string>(), &e.info.dtype))
    throw Error(where + ": unknown dtype " + quoted(dtype.get<std::string>()));
  e.info.shape = parse_shape(value["shape"], where);
  parse_offsets(value["data_offsets"], where, &e.begin, &e.end);

  uint64_t nbytes = 0;
  std::string why;
  if (!checked_nbytes(e.info.shape, e.info.dtype, &nbytes, &why)) throw Error(where + ": " + why);
  if (e.end - e.begin != nbytes)
    throw Error(where + ": data_offsets " + offsets_string(e.begin, e.end) +
                " do not match dtype " + dtype_name(e.info.dtype) + " x shape " +
                shape_string(e.info.shape) + " = " + std::to_string(nbytes) + " bytes");
  return e;
}

// Tensors must cover the data section exactly, as the reference reader demands: no overlap (two
// tensors aliasing bytes), no hole and no trailing bytes (data nobody accounts for).
void check_tiling(std::vector<SafetensorsEntry>* entries, uint64_t data_size,
                  const std::string& origin) {
  std::sort(entries->begin(), entries->end(), [](const auto& a, const auto& b) {
    if (a.begin != b.begin) return a.begin < b.begin;
    if (a.end != b.end) return a.end < b.end;  // zero-size tensors first at a shared offset
    return a.info.name < b.info.name;
  });
  for (const auto& e : *entries)
    if (e.end > data_size)
      throw Error(origin + ": tensor " + quoted(e.info.name) + ": data_offsets " +
                  offsets_string(e.begin, e.end) + " extend beyond the end of the data section (" +
                  std::to_string(data_size) + " bytes)");
  uint64_t expected = 0;
  const std::string* previous = nullptr;
  for (const auto& e : *entries) {
    if (e.begin < expected)
      throw Error(origin + ": tensor " + quoted(e.info.name) + ": data_offsets " +
                  offsets_string(e.begin, e.end) + " overlap tensor " + quoted(*previous) +
                  " (which ends at " + std::to_string(expected) + ")");
    if (e.begin > expected)
      throw Error(origin + ": tensor " + quoted(e.info.name) + ": data_offsets " +
                  offsets_string(e.begin, e.end) + " leave a hole of " +
                  std::to_string(e.begin - expected) + " bytes before them");
    expected = e.end;
    previous = &e.info.name;
  }
  if (expected != data_size)
    throw Error(origin + ": data section has " + std::to_string(data_size - expected) +
                " trailing bytes after the last tensor");
}

// ---- writer layout ------------------------------------------------------------------------

struct WriterLayout {
  std::string prefix_and_header;  // 8-byte length + padded JSON
  std::map<std::string, SafetensorsEntry> entries;
  uint64_t data_start = 0;
  uint64_t total_size = 0;
};

WriterLayout plan_layout(const std::vector<TensorInfo>& tensors,
                         const std::map<std::string, std::string>& metadata,
                         const std::string& origin) {
  WriterLayout layout;
  ordered_json header = ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const TensorInfo& t : tensors) {
    const std::string where = origin + ": tensor " + quoted(t.name);
    if (t.name.empty()) throw Error(origin + ": tensor with an empty name");
    if (t.name == "__metadata__") throw Error(where + ": name is reserved");
    uint64_t nbytes = 0, end = 0;
    std::string why;
    if (!checked_nbytes(t.shape, t.dtype, &nbytes, &why)) throw Error(where + ": " + why);
    if (__builtin_add_overflow(offset, nbytes, &end))
      throw Error(where + ": data section size overflows");
    SafetensorsEntry e{t, offset, end};
    if (!layout.entries.emplace(t.name, e).second) throw Error(where + ": duplicate tensor name");
    header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape},
                      {"data_offsets", {offset, end}}};
    offset = end;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const ordered_json::exception& e) {  // e.g. a name that is not valid UTF-8
    throw Error(origin + ": cannot encode safetensors header: " + e.what());
  }
  // Pad so the data section starts 8-byte aligned, as the reference writer does.
  text.append((8 - text.size() % 8) % 8, ' ');
  if (text.size() > kSafetensorsMaxHeader)
    throw Error(origin + ": header of " + std::to_string(text.size()) + " bytes exceeds the " +
                std::to_string(kSafetensorsMaxHeader) + "-byte limit");
  layout.prefix_and_header.resize(8);
  store_le64(text.size(), &layout.prefix_and_header[0]);
  layout.prefix_and_header += text;
  layout.data_start = layout.prefix_and_header.size();
  if (__builtin_add_overflow(layout.data_start, offset, &layout.total_size))
    throw Error(origin + ": file size overflows");
  return layout;
}

// Bounds check shared by reader and writer: [offset, offset + n) within a tensor's bytes.
void check_range(const std::string& origin, const SafetensorsEntry& e, uint64_t offset,
                 uint64_t n, const char* verb) {
  uint64_t size = e.end - e.begin;
  if (offset > size || n > size - offset)
    throw Error(origin + ": tensor " + quoted(e.info.name) + ": " + verb + " of " +
                std::to_string(n) + " bytes at offset " + std::to_string(offset) +
                " is out of bounds (tensor has " + std::to_string(size) + " bytes)");
}

// ---- index --------------------------------------------------------------------------------

void check_shard_name(const std::string& origin, const std::string& tensor,
                      const std::string& file) {
  if (file.empty() || file == "." || file == ".." || file.find('/') != std::string::npos)
    throw Error(origin + ": weight_map entry for tensor " + quoted(tensor) + ": file name " +
                quoted(file) + " is not a plain file name in the checkpoint directory");
}

uint64_t parse_total_size(const json& value, const std::string& origin) {
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  // Some published indexes store total_size as a float; accept it when it is an exact count.
  if (value.is_number_float()) {
    double d = value.get<double>();
    if (d >= 0 && d < 18446744073709551616.0 && std::floor(d) == d) return uint64_t(d);
  }
  throw Error(origin + ": metadata.total_size is not a non-negative integer (" + describe(value) +
              ")");
}

}  // namespace

// ---- parse_safetensors_header -------------------------------------------------------------

SafetensorsHeader parse_safetensors_header(const uint8_t* bytes, size_t nbytes, uint64_t file_size,
                                           const std::string& origin) {
  if (file_size < 8)
    throw Error(origin + ": file of " + std::to_string(file_size) +
                " bytes is too small for the 8-byte header length (truncated?)");
  if (nbytes < 8)
    throw Error(origin + ": only " + std::to_string(nbytes) +
                " bytes given, need the 8-byte header length");
  SafetensorsHeader h;
  h.header_size = load_le64(bytes);
  if (h.header_size > kSafetensorsMaxHeader)
    throw Error(origin + ": header length " + std::to_string(h.header_size) +
                " exceeds the limit of " + std::to_string(kSafetensorsMaxHeader) + " bytes");
  if (h.header_size > file_size - 8)
    throw Error(origin + ": header length " + std::to_string(h.header_size) +
                " extends beyond the end of the file (" + std::to_string(file_size) +
                " bytes; truncated?)");
  if (nbytes - 8 < h.header_size)
    throw Error(origin + ": only " + std::to_string(nbytes) + " bytes given, need " +
                std::to_string(h.data_start()) + " for the header");

  json doc = parse_header_json(bytes + 8, h.header_size, origin);
  if (!doc.is_object())
    throw Error(origin + ": header is not a JSON object (" + doc.type_name() + ")");
  for (const auto& item : doc.items()) {
    if (item.key() == "__metadata__")
      parse_metadata(item.value(), origin, &h.metadata);
    else
      h.entries.push_back(parse_entry(item.key(), item.value(), origin));
  }
  check_tiling(&h.entries, file_size - h.data_start(), origin);
  return h;
}

// ---- SafetensorsFile ----------------------------------------------------------------------

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw Error(path + ": " + std::strerror(errno));
  try {
    struct stat st;
    if (::fstat(fd_, &st) != 0) throw Error(path + ": fstat: " + std::strerror(errno));
    const uint64_t size = uint64_t(st.st_size);
    // Read the length first and let the parser judge it before sizing a buffer from it.
    std::vector<uint8_t> buf(size < 8 ? size_t(size) : 8);
    pread_full(fd_, buf.data(), buf.size(), 0, path);
    if (buf.size() == 8) {
      uint64_t n = load_le64(buf.data());
      if (n <= kSafetensorsMaxHeader && n <= size - 8) {
        buf.resize(8 + size_t(n));
        pread_full(fd_, buf.data() + 8, n, 8, path);
      }
    }
    header_ = parse_safetensors_header(buf.data(), buf.size(), size, path);
    for (size_t i = 0; i < header_.entries.size(); ++i)
      index_.emplace(header_.entries[i].info.name, i);
  } catch (...) {
    ::close(fd_);
    fd_ = -1;
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (fd_ >= 0) ::close(fd_);
}

const SafetensorsEntry* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &header_.entries[it->second];
}

void SafetensorsFile::read(const std::string& name, void* dst, uint64_t offset, uint64_t n) const {
  const SafetensorsEntry* e = find(name);
  if (!e) throw Error(path_ + ": no tensor named " + quoted(name));
  check_range(path_, *e, offset, n, "read");
  pread_full(fd_, dst, n, header_.data_start() + e->begin + offset,
             path_ + ": tensor " + quoted(name));
}

void SafetensorsFile::read(const std::string& name, void* dst) const {
  const SafetensorsEntry* e = find(name);
  if (!e) throw Error(path_ + ": no tensor named " + quoted(name));
  read(name, dst, 0, e->end - e->begin);
}

// ---- SafetensorsWriter --------------------------------------------------------------------

SafetensorsWriter::SafetensorsWriter(const std::string& path,
                                     const std::vector<TensorInfo>& tensors,
                                     const std::map<std::string, std::string>& metadata,
                                     bool create)
    : path_(path) {
  WriterLayout layout = plan_layout(tensors, metadata, path);
  data_start_ = layout.data_start;
  entries_ = std::move(layout.entries);

  int flags = create ? (O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC) : (O_WRONLY | O_CLOEXEC);
  fd_ = ::open(path.c_str(), flags, 0644);
  if (fd_ < 0) throw Error(path + ": " + std::strerror(errno));
  try {
    if (create) {
      pwrite_full(fd_, layout.prefix_and_header.data(), layout.prefix_and_header.size(), 0, path);
      // Extend to the final size now so writers on other processes can open it and pwrite.
      if (::ftruncate(fd_, off_t(layout.total_size)) != 0)
        throw Error(path + ": ftruncate to " + std::to_string(layout.total_size) +
                    " bytes: " + std::strerror(errno));
    } else {
      struct stat st;
      if (::fstat(fd_, &st) != 0) throw Error(path + ": fstat: " + std::strerror(errno));
      if (uint64_t(st.st_size) != layout.total_size)
        throw Error(path + ": existing file has " + std::to_string(st.st_size) +
                    " bytes, expected " + std::to_string(layout.total_size) +
                    " for this tensor list (created with a different one?)");
    }
  } catch (...) {
    ::close(fd_);
    fd_ = -1;
    throw;
  }
}

SafetensorsWriter::~SafetensorsWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void SafetensorsWriter::write(const std::string& name, const void* src, uint64_t offset,
                              uint64_t n) {
  if (fd_ < 0) throw Error(path_ + ": write after close");
  auto it = entries_.find(name);
  if (it == entries_.end()) throw Error(path_ + ": no tensor named " + quoted(name));
  const SafetensorsEntry& e = it->second;
  check_range(path_, e, offset, n, "write");
  pwrite_full(fd_, src, n, data_start_ + e.begin + offset, path_ + ": tensor " + quoted(name));
}

void SafetensorsWriter::write(const std::string& name, const void* src) {
  auto it = entries_.find(name);
  if (it == entries_.end()) throw Error(path_ + ": no tensor named " + quoted(name));
  write(name, src, 0, it->second.end - it->second.begin);
}

void SafetensorsWriter::close() {
  if (fd_ < 0) return;
  int fd = fd_;
  fd_ = -1;  // whatever happens below, the descriptor is gone
  if (::fsync(fd) != 0) {
    int saved = errno;
    ::close(fd);
    throw Error(path_ + ": fsync: " + std::strerror(saved));
  }
  if (::close(fd) != 0) throw Error(path_ + ": close: " + std::strerror(errno));
}

uint64_t SafetensorsWriter::file_size(const std::vector<TensorInfo>& tensors,
                                      const std::map<std::string, std::string>& metadata) {
  return plan_layout(tensors, metadata, "safetensors file").total_size;
}

// ---- index --------------------------------------------------------------------------------

SafetensorsIndex read_safetensors_index(const std::string& path) {
  std::string text = read_text_file(path);
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(path + ": not valid JSON: " + clip(e.what(), 400));
  }
  if (!doc.is_object()) throw Error(path + ": index is not a JSON object");

  SafetensorsIndex index;
  if (doc.contains("metadata")) {
    const json& meta = doc["metadata"];
    if (!meta.is_object()) throw Error(path + ": metadata is not a JSON object");
    if (meta.contains("total_size")) index.total_size = parse_total_size(meta["total_size"], path);
  }
  if (!doc.contains("weight_map")) throw Error(path + ": missing weight_map");
  const json& map = doc["weight_map"];
  if (!map.is_object()) throw Error(path + ": weight_map is not a JSON object");
  for (const auto& item : map.items()) {
    if (item.key().empty()) throw Error(path + ": weight_map has an empty tensor name");
    if (!item.value().is_string())
      throw Error(path + ": weight_map entry for tensor " + quoted(item.key()) +
                  " is not a string");
    std::string file = item.value().get<std::string>();
    check_shard_name(path, item.key(), file);
    index.weight_map[item.key()] = std::move(file);
  }
  return index;
}

void write_safetensors_index(const std::string& path, const SafetensorsIndex& index) {
  for (const auto& [tensor, file] : index.weight_map) {
    if (tensor.empty()) throw Error(path + ": weight_map has an empty tensor name");
    check_shard_name(path, tensor, file);
  }
  json doc = {{"metadata", {{"total_size", index.total_size}}},
              {"weight_map", index.weight_map}};
  std::string text;
  try {
    text = doc.dump(2) + "\n";
  } catch (const json::exception& e) {
    throw Error(path + ": cannot encode index: " + e.what());
  }
  write_file_atomic(path, text);
}

}  // namespace ovr::io
