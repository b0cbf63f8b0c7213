#include "io/hdf5_checkpoint.h"

#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <exception>

#include "common/error.h"
#include "common/mpi_runtime.h"
#include "io/checksum.h"
#include "io/fs.h"
#include "io/hdf5_support.h"

namespace ovr::io {

using namespace hdf5;

// =============================================================================================
// Reader

struct CheckpointReader::Impl {
  std::string path;
  MPI_Comm comm = MPI_COMM_NULL;
  int rank = 0, size = 1;
  Handle file;
  CheckpointAttrs attrs;
  struct Cached {
    TensorInfo info;
    uint32_t crc = 0;
    Segment cursor;  // rows read so far, in order from row 0
  };
  std::map<std::string, Cached> cache;

  Cached& lookup(const std::string& dataset) {
    auto it = cache.find(dataset);
    if (it != cache.end()) return it->second;
    check_dataset_path(dataset);
    const std::string where = path + ": dataset " + dataset;
    if (H5Lexists(file, dataset.c_str(), H5P_DEFAULT) <= 0) throw Error(where + " not found");
    Handle d(h5(H5Dopen2(file, dataset.c_str(), H5P_DEFAULT), where), H5Dclose);
    Cached c;
    c.info.name = dataset;
    if (!has_attr(d, "dtype")) throw Error(where + ": no 'dtype' attribute (not written by ovr)");
    DType t;
    const std::string tname = read_string_attr(d, "dtype", where);
    if (!dtype_from_name(tname, &t)) throw Error(where + ": unknown dtype '" + tname + "'");
    c.info.dtype = t;
    Handle ftype(h5(H5Dget_type(d), where), H5Tclose);
    if (H5Tget_size(ftype) != dtype_size(t)) throw Error(where + ": stored element size does not match dtype " + tname);
    Handle space(h5(H5Dget_space(d), where), H5Sclose);
    const int ndims = H5Sget_simple_extent_ndims(space);
    if (ndims < 0 || ndims > 32) throw Error(where + ": invalid dataspace");
    std::vector<hsize_t> dims(static_cast<size_t>(ndims));
    H5Sget_simple_extent_dims(space, dims.data(), nullptr);
    c.info.shape.assign(dims.begin(), dims.end());
    if (!has_attr(d, "crc32")) throw Error(where + ": no 'crc32' attribute (the checkpoint was never committed)");
    c.crc = uint32_t(read_int_attr(d, "crc32", where));
    return cache.emplace(dataset, std::move(c)).first->second;
  }

  void read_piece(const Cached& c, int64_t begin, int64_t count, void* dst, hid_t dxpl) {
    const std::string where = path + ": dataset " + c.info.name;
    Handle d(h5(H5Dopen2(file, c.info.name.c_str(), H5P_DEFAULT), where), H5Dclose);
    Handle type = h5_type(c.info.dtype);
    Handle fspace(h5(H5Dget_space(d), where), H5Sclose);
    Handle mspace = select_rows(fspace, c.info.shape, begin, count);
    h5(H5Dread(d, type, mspace, fspace, dxpl, dst), where + ": read failed", 0);
  }

  [[noreturn]] void corrupt(const Cached& c, uint32_t computed) {
    char buf[96];
    std::snprintf(buf, sizeof buf, " (stored crc32 %08x, computed %08x)", c.crc, computed);
    throw Error(path + ": dataset " + c.info.name + ": checksum mismatch" + buf + "; the file is corrupt");
  }
};

CheckpointReader::CheckpointReader(const std::string& path, MPI_Comm comm) : impl_(std::make_unique<Impl>()) {
  quiet_hdf5();
  auto& m = *impl_;
  m.path = is_directory(path) ? resolve_latest(path) : path;
  if (!path_exists(m.path)) throw Error(m.path + ": no such file");
  OVR_MPI_CHECK(MPI_Comm_dup(comm, &m.comm));
  MPI_Comm_rank(m.comm, &m.rank);
  MPI_Comm_size(m.comm, &m.size);
  Handle fapl = file_access(m.comm, m.size, false);
  m.file = Handle(h5(H5Fopen(m.path.c_str(), H5F_ACC_RDONLY, fapl), m.path + ": cannot open checkpoint"), H5Fclose);
  if (!has_attr(m.file, "format"))
    throw Error(m.path + ": not a committed ovr checkpoint (no 'format' attribute; left by an interrupted write?)");
  const std::string format = read_string_attr(m.file, "format", m.path);
  if (format != kCheckpointFormat) throw Error(m.path + ": format '" + format + "' is not " + kCheckpointFormat);
  const int64_t version = read_int_attr(m.file, "format_version", m.path);
  if (version < 1 || version > kCheckpointFormatVersion)
    throw Error(m.path + ": format version " + std::to_string(version) + " is not supported by this build (max " +
                std::to_string(kCheckpointFormatVersion) + ")");
  auto& a = m.attrs;
  a.step = read_int_attr(m.file, "step", m.path);
  a.role = read_string_attr(m.file, "role", m.path);
  a.model_config = read_string_attr(m.file, "model_config", m.path);
  a.run_config = read_string_attr(m.file, "run_config", m.path);
  a.code_version = read_string_attr(m.file, "code_version", m.path);
  // Further string attributes (e.g. safetensors_metadata) come back in `extra`.
  std::vector<std::string> names;
  h5(H5Aiterate2(m.file, H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_attr_name, &names), m.path + ": list attributes", 0);
  static const char* kKnown[] = {"format", "format_version", "step", "role", "model_config", "run_config",
                                 "code_version", "writer_world_size"};
  for (const auto& name : names)
    if (std::none_of(std::begin(kKnown), std::end(kKnown), [&](const char* k) { return name == k; }))
      a.extra[name] = read_string_attr(m.file, name, m.path);
}

CheckpointReader::~CheckpointReader() {
  if (impl_->size > 1 && std::uncaught_exceptions() > 0) impl_->file.release();  // see ~CheckpointWriter
  impl_->file.reset();
  if (impl_->comm != MPI_COMM_NULL) MPI_Comm_free(&impl_->comm);
}

const std::string& CheckpointReader::path() const { return impl_->path; }
const CheckpointAttrs& CheckpointReader::attrs() const { return impl_->attrs; }

bool CheckpointReader::has(const std::string& dataset) const {
  if (dataset.empty() || dataset[0] != '/') return false;
  // H5Lexists needs every intermediate group to exist.
  for (size_t s = dataset.find('/', 1); s != std::string::npos; s = dataset.find('/', s + 1))
    if (H5Lexists(impl_->file, dataset.substr(0, s).c_str(), H5P_DEFAULT) <= 0) return false;
  return H5Lexists(impl_->file, dataset.c_str(), H5P_DEFAULT) > 0;
}

TensorInfo CheckpointReader::info(const std::string& dataset) const { return impl_->lookup(dataset).info; }
uint32_t CheckpointReader::stored_crc(const std::string& dataset) const { return impl_->lookup(dataset).crc; }

namespace {
#if H5_VERSION_GE(1, 12, 0)
using LinkInfo = H5L_info2_t;
#else
using LinkInfo = H5L_info_t;
#endif
herr_t collect_link(hid_t, const char* name, const LinkInfo*, void* out) {
  static_cast<std::vector<std::string>*>(out)->push_back(name);
  return 0;
}
}  // namespace

std::vector<TensorInfo> CheckpointReader::list(const std::string& group) const {
  auto& m = *impl_;
  std::vector<TensorInfo> out;
  if (!has(group)) return out;
  Handle g(h5(H5Gopen2(m.file, group.c_str(), H5P_DEFAULT), m.path + ": open group " + group), H5Gclose);
  std::vector<std::string> names;
  hsize_t idx = 0;
  if (H5Literate(g, H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, collect_link, &names) < 0) {
    H5Eclear2(H5E_DEFAULT);  // no creation-order index (not written by us): fall back to names
    names.clear();
    idx = 0;
    h5(H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_link, &names), m.path + ": list " + group, 0);
  }
  for (const auto& n : names) {
    TensorInfo info = m.lookup(group + "/" + n).info;
    info.name = n;
    out.push_back(std::move(info));
  }
  return out;
}

void CheckpointReader::read_rows(const std::string& dataset, int64_t row_begin, int64_t row_count, void* dst) {
  auto& m = *impl_;
  auto& c = m.lookup(dataset);
  check_rows(m.path, c.info, row_begin, row_count);
  const int64_t rows = dataset_rows(c.info);
  const uint64_t rb = row_bytes(c.info);
  const int64_t step = std::max<int64_t>(1, int64_t(kMaxTransferBytes / std::max<uint64_t>(rb, 1)));
  for (int64_t r = 0; r < row_count; r += step)
    m.read_piece(c, row_begin + r, std::min(step, row_count - r), static_cast<char*>(dst) + uint64_t(r) * rb, H5P_DEFAULT);
  // Sequential reads from row 0 are checked against the stored CRC when the last row arrives;
  // a pass that skips around is simply not checked.
  if (row_begin == 0) c.cursor = Segment{0, 0, 0};
  if (c.cursor.begin == 0 && c.cursor.end == row_begin) {
    c.cursor.crc = crc32_update(c.cursor.crc, dst, uint64_t(row_count) * rb);
    c.cursor.end += row_count;
    if (c.cursor.end == rows && c.cursor.crc != c.crc) m.corrupt(c, c.cursor.crc);
  } else {
    c.cursor = Segment{};
  }
}

void CheckpointReader::read(const std::string& dataset, void* dst) {
  read_rows(dataset, 0, dataset_rows(impl_->lookup(dataset).info), dst);
}

void CheckpointReader::read_shard(const std::string& dataset, int64_t offset, int64_t count, void* dst) {
  read_shards(dataset, {{offset, count}}, dst);
}

void CheckpointReader::read_shards(const std::string& dataset, const std::vector<std::pair<int64_t, int64_t>>& ranges,
                                   void* dst) {
  auto& m = *impl_;
  auto& c = m.lookup(dataset);
  const uint64_t es = dtype_size(c.info.dtype);
  if (c.info.shape[0] == 0) return;  // an empty dataset: nothing to read or check
  Handle dxpl(H5Pcreate(H5P_DATASET_XFER), H5Pclose);
  if (m.size > 1) h5(H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE), "H5Pset_dxpl_mpio", 0);
  std::vector<Segment> mine;
  char* out = static_cast<char*>(dst);
  for (const auto& [offset, count] : ranges) {
    check_shard(m.path, c.info, offset, count);
    for_each_collective_piece(m.comm, count, es, [&](int64_t b, int64_t n) {
      m.read_piece(c, offset + b, n, out + uint64_t(b) * es, dxpl);
    });
    if (!mine.empty() && count > 0 && offset < mine.back().end)
      throw Error(m.path + ": " + dataset + ": shard ranges must come in increasing order");
    add_rows(mine, offset, count, out, uint64_t(count) * es, true, m.path);
    out += uint64_t(count) * es;
  }
  auto all = allgather_segments(m.comm, m.size, {mine});
  uint32_t crc = 0;
  std::string gap;
  if (!combine_segments(all[0], c.info.shape[0], es, &crc, &gap))
    throw Error(m.path + ": " + dataset + ": the ranks' shards must tile the dataset to be checked (" + gap + ")");
  if (crc != c.crc) m.corrupt(c, crc);
}

}  // namespace ovr::io
