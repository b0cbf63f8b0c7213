#include "io/hdf5_support.h"

#include <algorithm>
#include <cstring>
#include <exception>

#include "common/error.h"
#include "io/hdf5_checkpoint.h"

namespace ovr::io::hdf5 {


// ---- HDF5 error reporting: the library's own innermost message, with our context ----------

herr_t collect_attr_name(hid_t, const char* name, const H5A_info_t*, void* out) {
  static_cast<std::vector<std::string>*>(out)->push_back(name);
  return 0;
}

herr_t collect_error(unsigned n, const H5E_error2_t* e, void* out) {
  auto* text = static_cast<std::string*>(out);
  if (n == 0 && e->desc && *e->desc) *text = e->desc;  // innermost entry: the actual cause
  return 0;
}

[[noreturn]] void h5_fail(const std::string& what) {
  std::string cause;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, collect_error, &cause);
  H5Eclear2(H5E_DEFAULT);
  // One line: the drivers append a multi-line dump ("file write failed: time = ..., errno = 28, ...").
  cause = cause.substr(0, std::min(cause.find(": time = "), cause.find('\n')));
  throw Error(what + (cause.empty() ? "" : ": " + cause));
}

hid_t h5(hid_t id, const std::string& what) {
  if (id < 0) h5_fail(what);
  return id;
}
void h5(herr_t rc, const std::string& what, int) {
  if (rc < 0) h5_fail(what);
}

struct QuietHdf5 {  // HDF5 prints its error stack to stderr by default; we report it ourselves
  QuietHdf5() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }
};
void quiet_hdf5() { static QuietHdf5 once; }


// ---- types -------------------------------------------------------------------------------

// A 2-byte little-endian HDF5 float with the given layout, so that h5dump and h5py read the
// values of f16 and bf16 tensors with no extra code (h5py shows bf16 as float32).
Handle half_type(size_t exp_bits, size_t mant_bits, size_t bias) {
  Handle t(H5Tcopy(H5T_IEEE_F32LE), H5Tclose);
  h5(H5Tset_fields(t, 15, mant_bits, exp_bits, 0, mant_bits), "H5Tset_fields", 0);
  h5(H5Tset_offset(t, 0), "H5Tset_offset", 0);
  h5(H5Tset_precision(t, 16), "H5Tset_precision", 0);
  h5(H5Tset_size(t, 2), "H5Tset_size", 0);
  h5(H5Tset_ebias(t, bias), "H5Tset_ebias", 0);
  return t;
}

// The file type of a dtype; also used as the memory type, so bytes are stored without conversion.
Handle h5_type(DType t) {
  auto copy = [](hid_t base) { return Handle(H5Tcopy(base), H5Tclose); };
  switch (t) {
    case DType::F64: return copy(H5T_IEEE_F64LE);
    case DType::F32: return copy(H5T_IEEE_F32LE);
    case DType::F16: return half_type(5, 10, 15);
    case DType::BF16: return half_type(8, 7, 127);
    case DType::I64: return copy(H5T_STD_I64LE);
    case DType::I32: return copy(H5T_STD_I32LE);
    case DType::I16: return copy(H5T_STD_I16LE);
    case DType::I8: return copy(H5T_STD_I8LE);
    case DType::U8: return copy(H5T_STD_U8LE);
    case DType::BOOL: return copy(H5T_STD_U8LE);
  }
  throw Error("unsupported dtype");
}

// ---- attributes ----------------------------------------------------------------------------

void write_string_attr(hid_t obj, const std::string& name, const std::string& value) {
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  h5(H5Tset_size(type, value.size() + 1), "H5Tset_size", 0);
  h5(H5Tset_cset(type, H5T_CSET_UTF8), "H5Tset_cset", 0);
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle attr(h5(H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), "create attribute " + name), H5Aclose);
  h5(H5Awrite(attr, type, value.c_str()), "write attribute " + name, 0);
}

void write_int_attr(hid_t obj, const std::string& name, hid_t type, const void* value) {
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle attr(h5(H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), "create attribute " + name), H5Aclose);
  h5(H5Awrite(attr, type, value), "write attribute " + name, 0);
}

bool has_attr(hid_t obj, const std::string& name) { return H5Aexists(obj, name.c_str()) > 0; }

std::string read_string_attr(hid_t obj, const std::string& name, const std::string& where) {
  Handle attr(h5(H5Aopen(obj, name.c_str(), H5P_DEFAULT), where + ": attribute '" + name + "'"), H5Aclose);
  Handle ftype(h5(H5Aget_type(attr), where + ": attribute '" + name + "'"), H5Tclose);
  if (H5Tget_class(ftype) != H5T_STRING || H5Tis_variable_str(ftype) > 0)
    throw Error(where + ": attribute '" + name + "' is not a fixed-length string");
  const size_t size = H5Tget_size(ftype);
  if (size == 0 || size > (1u << 30)) throw Error(where + ": attribute '" + name + "' has an implausible size");
  Handle mtype(H5Tcopy(ftype), H5Tclose);  // same size and character set: no conversion
  std::string buf(size + 1, '\0');
  h5(H5Aread(attr, mtype, buf.data()), where + ": read attribute '" + name + "'", 0);
  buf.resize(std::strlen(buf.c_str()));
  return buf;
}

int64_t read_int_attr(hid_t obj, const std::string& name, const std::string& where) {
  Handle attr(h5(H5Aopen(obj, name.c_str(), H5P_DEFAULT), where + ": attribute '" + name + "'"), H5Aclose);
  Handle space(h5(H5Aget_space(attr), where + ": attribute '" + name + "'"), H5Sclose);
  if (H5Sget_simple_extent_npoints(space) != 1) throw Error(where + ": attribute '" + name + "' is not a scalar");
  int64_t v = 0;
  h5(H5Aread(attr, H5T_NATIVE_INT64, &v), where + ": read attribute '" + name + "'", 0);
  return v;
}

// ---- shapes and selections -------------------------------------------------------------------

std::vector<hsize_t> dims_of(const std::vector<int64_t>& shape) { return {shape.begin(), shape.end()}; }

Handle make_space(const std::vector<int64_t>& shape) {
  if (shape.empty()) return Handle(H5Screate(H5S_SCALAR), H5Sclose);
  auto dims = dims_of(shape);
  return Handle(H5Screate_simple(int(dims.size()), dims.data(), nullptr), H5Sclose);
}

// Selects rows [begin, begin+count) of `file_space` and returns the matching memory space.
Handle select_rows(hid_t file_space, const std::vector<int64_t>& shape, int64_t begin, int64_t count) {
  if (shape.empty()) {  // a scalar has exactly one row
    if (count == 0) {
      H5Sselect_none(file_space);
      Handle mem(H5Screate(H5S_SCALAR), H5Sclose);
      H5Sselect_none(mem);
      return mem;
    }
    return Handle(H5Screate(H5S_SCALAR), H5Sclose);
  }
  auto dims = dims_of(shape);
  std::vector<hsize_t> start(dims.size(), 0), counts = dims;
  start[0] = hsize_t(begin), counts[0] = hsize_t(count);
  if (count == 0 || std::find(dims.begin(), dims.end(), 0) != dims.end()) {
    H5Sselect_none(file_space);
    hsize_t one = 1;
    Handle mem(H5Screate_simple(1, &one, nullptr), H5Sclose);
    H5Sselect_none(mem);
    return mem;
  }
  h5(H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start.data(), nullptr, counts.data(), nullptr), "select rows", 0);
  return Handle(H5Screate_simple(int(counts.size()), counts.data(), nullptr), H5Sclose);
}

Handle file_access(MPI_Comm comm, int comm_size, bool writing) {
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  if (comm_size > 1) {
    h5(H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL), "H5Pset_fapl_mpio", 0);
    // Collective metadata writes: one rank writes what all ranks agreed on (fewer small I/Os).
    if (writing) h5(H5Pset_coll_metadata_write(fapl, true), "H5Pset_coll_metadata_write", 0);
  }
  // File-format objects with checksums (superblock v2+, object headers v2): corrupt metadata is
  // reported by HDF5 itself instead of being misread. Readable by HDF5 >= 1.8.
  h5(H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST), "H5Pset_libver_bounds", 0);
  // Large tensors start on 64 KiB boundaries: better for parallel filesystems' stripes.
  h5(H5Pset_alignment(fapl, 1 << 20, 1 << 16), "H5Pset_alignment", 0);
  return fapl;
}

Handle ordered_group_props() {
  Handle gcpl(H5Pcreate(H5P_GROUP_CREATE), H5Pclose);
  h5(H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED), "creation order", 0);
  return gcpl;
}

std::string base_name(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

void check_dataset_path(const std::string& p) {
  if (p.size() < 2 || p[0] != '/' || p.back() == '/' || p.find("//") != std::string::npos)
    throw Error("invalid dataset path '" + p + "' (expected e.g. /model/lm_head.weight)");
}

void check_rows(const std::string& file, const TensorInfo& info, int64_t begin, int64_t count) {
  const int64_t rows = dataset_rows(info);
  if (begin < 0 || count < 0 || begin + count > rows)
    throw Error(file + ": " + info.name + ": rows [" + std::to_string(begin) + ", " + std::to_string(begin + count) +
                ") outside [0, " + std::to_string(rows) + ")");
}

void check_shard(const std::string& file, const TensorInfo& info, int64_t offset, int64_t count) {
  if (info.shape.size() != 1) throw Error(file + ": shards need a 1-D dataset, " + info.name + " is not");
  check_rows(file, info, offset, count);
}



// Given every rank's segment of one dataset, checks that they tile [0, rows) and returns the
// CRC of the whole dataset; `gap` describes the first problem if they do not.
bool combine_segments(std::vector<Segment> segs, int64_t rows, uint64_t row_size, uint32_t* crc, std::string* gap) {
  segs.erase(std::remove_if(segs.begin(), segs.end(), [](const Segment& s) { return s.begin < 0 || s.begin == s.end; }),
             segs.end());
  std::sort(segs.begin(), segs.end(), [](const Segment& a, const Segment& b) { return a.begin < b.begin; });
  int64_t at = 0;
  uint32_t c = 0;
  for (const auto& s : segs) {
    if (s.begin != at) {
      *gap = s.begin > at ? "rows " + std::to_string(at) + ".." + std::to_string(s.begin) + " missing"
                          : "rows from " + std::to_string(s.begin) + " written twice";
      return false;
    }
    c = crc32_concat(c, s.crc, uint64_t(s.end - s.begin) * row_size);
    at = s.end;
  }
  if (at != rows && row_size > 0) {
    *gap = "rows " + std::to_string(at) + ".." + std::to_string(rows) + " missing";
    return false;
  }
  *crc = c;
  return true;
}

// Every rank's segments (begin, end, crc) of a list of datasets, gathered on all ranks: result[d]
// holds the segments of dataset d from all ranks. A rank may have any number per dataset.
std::vector<std::vector<Segment>> allgather_segments(MPI_Comm comm, int size, const std::vector<std::vector<Segment>>& mine) {
  std::vector<int64_t> send;
  for (size_t d = 0; d < mine.size(); ++d)
    for (const auto& s : mine[d]) send.insert(send.end(), {int64_t(d), s.begin, s.end, int64_t(s.crc)});
  int n = int(send.size());
  std::vector<int> counts(static_cast<size_t>(size)), displs(static_cast<size_t>(size));
  OVR_MPI_CHECK(MPI_Allgather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, comm));
  int total = 0;
  for (int r = 0; r < size; ++r) displs[size_t(r)] = total, total += counts[size_t(r)];
  std::vector<int64_t> recv(static_cast<size_t>(total));
  OVR_MPI_CHECK(MPI_Allgatherv(send.data(), n, MPI_INT64_T, recv.data(), counts.data(), displs.data(), MPI_INT64_T, comm));
  std::vector<std::vector<Segment>> per_dataset(mine.size());
  for (size_t i = 0; i + 3 < recv.size(); i += 4) per_dataset[size_t(recv[i])].push_back(Segment{recv[i + 1], recv[i + 2], uint32_t(recv[i + 3])});
  return per_dataset;
}

// Adds rows [row_begin, row_begin + row_count) to a rank's segments of one dataset: they continue
// the last segment or, with allow_gap (sharded writes), start a new one further on.
void add_rows(std::vector<Segment>& segs, int64_t row_begin, int64_t row_count, const void* data, uint64_t bytes,
              bool allow_gap, const std::string& what) {
  if (row_count == 0) return;
  if (segs.empty() || (allow_gap && row_begin > segs.back().end)) segs.push_back(Segment{});
  segs.back().extend(row_begin, row_count, data, bytes, what);
}

void Segment::extend(int64_t row_begin, int64_t row_count, const void* data, uint64_t bytes, const std::string& what) {
  if (begin < 0) begin = end = row_begin;
  if (row_begin != end)
    throw Error(what + ": rows must be written in increasing order without gaps (expected row " +
                std::to_string(end) + ", got " + std::to_string(row_begin) + ")");
  crc = crc32_update(crc, data, bytes);
  end += row_count;
}

}  // namespace ovr::io::hdf5
