// What the checkpoint writer and reader (hdf5_checkpoint*.cpp) share, inside src/io only: HDF5
// calls checked and reported with the library's own innermost message, identifiers closed by
// scope, our dtypes as HDF5 types, attributes, row selections, MPI-IO file access, and the
// per-rank segments whose CRCs combine into a whole dataset's.
#pragma once
#include <hdf5.h>
#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "common/mpi_runtime.h"
#include "common/root_then_share.h"
#include "io/checksum.h"
#include "io/dtype.h"

namespace ovr::io::hdf5 {

// Largest single HDF5/MPI-IO transfer; bigger ones are split (MPI counts are 32-bit ints).
constexpr uint64_t kMaxTransferBytes = 1ull << 30;

// An HDF5 identifier closed by the right function when it goes out of scope.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer close) : id_(id), close_(close) {}
  Handle(Handle&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = -1; }
  Handle& operator=(Handle&& o) noexcept {
    reset();
    std::swap(id_, o.id_);
    close_ = o.close_;
    return *this;
  }
  ~Handle() { reset(); }
  void reset() {
    if (id_ >= 0) close_(id_);
    id_ = -1;
  }
  hid_t get() const { return id_; }
  void release() { id_ = -1; }  // forget without closing
  operator hid_t() const { return id_; }

 private:
  hid_t id_ = -1;
  Closer close_ = nullptr;
};

// Calls fn(begin, count) over [0, count) in pieces of at most kMaxTransferBytes, the same number
// of times on every rank of comm (collective transfers must be entered together; a rank with
// less to move does empty transfers).
template <class Fn>
void for_each_collective_piece(MPI_Comm comm, int64_t count, uint64_t elem_size, Fn fn) {
  const int64_t step = int64_t(kMaxTransferBytes / elem_size);
  int64_t pieces = (count + step - 1) / step, max_pieces = 0;
  OVR_MPI_CHECK(MPI_Allreduce(&pieces, &max_pieces, 1, MPI_INT64_T, MPI_MAX, comm));
  for (int64_t p = 0; p < std::max<int64_t>(max_pieces, 1); ++p) {
    const int64_t b = std::min(count, p * step);
    fn(b, std::min(step, count - b));
  }
}

// A contiguous run of rows written or read by this rank, with the CRC of its bytes.
struct Segment {
  int64_t begin = -1, end = -1;
  uint32_t crc = 0;
  // Appends rows [row_begin, row_begin + row_count) (they must follow `end`), CRC included.
  void extend(int64_t row_begin, int64_t row_count, const void* data, uint64_t bytes, const std::string& what);
};

// ---- HDF5 error reporting: the library's own innermost message, with our context ----------
herr_t collect_attr_name(hid_t, const char* name, const H5A_info_t*, void* out);

herr_t collect_error(unsigned n, const H5E_error2_t* e, void* out);

[[noreturn]] void h5_fail(const std::string& what);

hid_t h5(hid_t id, const std::string& what);

void h5(herr_t rc, const std::string& what, int);

void quiet_hdf5();

// ---- types -------------------------------------------------------------------------------
// A 2-byte little-endian HDF5 float with the given layout, so that h5dump and h5py read the
// values of f16 and bf16 tensors with no extra code (h5py shows bf16 as float32).
Handle half_type(size_t exp_bits, size_t mant_bits, size_t bias);

// The file type of a dtype; also used as the memory type, so bytes are stored without conversion.
Handle h5_type(DType t);

// ---- attributes ----------------------------------------------------------------------------
void write_string_attr(hid_t obj, const std::string& name, const std::string& value);

void write_int_attr(hid_t obj, const std::string& name, hid_t type, const void* value);

bool has_attr(hid_t obj, const std::string& name);

std::string read_string_attr(hid_t obj, const std::string& name, const std::string& where);

int64_t read_int_attr(hid_t obj, const std::string& name, const std::string& where);

// ---- shapes and selections -------------------------------------------------------------------
std::vector<hsize_t> dims_of(const std::vector<int64_t>& shape);

Handle make_space(const std::vector<int64_t>& shape);

// Selects rows [begin, begin+count) of `file_space` and returns the matching memory space.
Handle select_rows(hid_t file_space, const std::vector<int64_t>& shape, int64_t begin, int64_t count);

Handle file_access(MPI_Comm comm, int comm_size, bool writing);

Handle ordered_group_props();

std::string base_name(const std::string& path);

void check_dataset_path(const std::string& p);

void check_rows(const std::string& file, const TensorInfo& info, int64_t begin, int64_t count);

void check_shard(const std::string& file, const TensorInfo& info, int64_t offset, int64_t count);

// Given every rank's segment of one dataset, checks that they tile [0, rows) and returns the
// CRC of the whole dataset; `gap` describes the first problem if they do not.
bool combine_segments(std::vector<Segment> segs, int64_t rows, uint64_t row_size, uint32_t* crc, std::string* gap);

// Every rank's segments (begin, end, crc) of a list of datasets, gathered on all ranks: result[d]
// holds the segments of dataset d from all ranks. A rank may have any number per dataset.
std::vector<std::vector<Segment>> allgather_segments(MPI_Comm comm, int size, const std::vector<std::vector<Segment>>& mine);

// Adds rows [row_begin, row_begin + row_count) to a rank's segments of one dataset: they continue
// the last segment or, with allow_gap (sharded writes), start a new one further on.
void add_rows(std::vector<Segment>& segs, int64_t row_begin, int64_t row_count, const void* data, uint64_t bytes,
              bool allow_gap, const std::string& what);


}  // namespace ovr::io::hdf5
