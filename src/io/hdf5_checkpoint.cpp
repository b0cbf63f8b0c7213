#include "io/hdf5_checkpoint.h"

#include <hdf5.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>

#include "common/error.h"
#include "common/mpi_runtime.h"
#include "common/unclosable_files.h"
#include "io/checksum.h"
#include "io/fs.h"
#include "io/hdf5_support.h"

namespace ovr::io {

using namespace hdf5;

int64_t dataset_rows(const TensorInfo& info) { return info.shape.empty() ? 1 : info.shape[0]; }

uint64_t row_bytes(const TensorInfo& info) {
  uint64_t n = dtype_size(info.dtype);
  for (size_t i = 1; i < info.shape.size(); ++i) n *= uint64_t(info.shape[i]);
  return n;
}

bool is_ovr_checkpoint(const std::string& path) {
  return is_directory(path) ? path_exists(join_path(path, "latest")) : path.size() > 3 && path.substr(path.size() - 3) == ".h5";
}

std::string resolve_latest(const std::string& dir) {
  const std::string pointer = join_path(dir, "latest");
  if (!path_exists(pointer)) throw Error(dir + ": no 'latest' pointer (not a checkpoint directory, or nothing committed yet)");
  std::string name = read_text_file(pointer);
  while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
  if (name.empty() || name.find('/') != std::string::npos || name == "..")
    throw Error(pointer + ": invalid content (expected a checkpoint file name)");
  return join_path(dir, name);
}

// =============================================================================================
// Writer

namespace {

// Why a write or close failed, as far as the system says: errno where the driver left it (POSIX
// writes), else a folder with almost no space left (MPI-IO's independent writes lose errno).
std::string write_failure_cause(const std::string& path, int err) {
  if (err == ENOSPC || err == EDQUOT || err == EFBIG || err == EIO) return std::string(" (") + std::strerror(err) + ")";
  struct statvfs v;
  const std::string dir = parent_dir(path);
  if (::statvfs(dir.c_str(), &v) == 0 && uint64_t(v.f_bavail) * uint64_t(v.f_frsize) < (1u << 20))
    return " (No space left on device: under 1 MiB free in " + dir + ")";
  return "";
}

}  // namespace

struct CheckpointWriter::Impl {
  std::string path, tmp_path;
  MPI_Comm comm = MPI_COMM_NULL;
  int rank = 0, size = 1;
  CheckpointAttrs attrs;
  Handle file;
  struct Dataset {
    std::string path;
    TensorInfo info;
    Handle id, type;
    std::vector<Segment> written;  // by this rank
  };
  std::vector<Dataset> datasets;
  std::map<std::string, size_t> index;
  bool committed = false, abandoned = false;
  // The first write that failed on this rank (a full disk, a quota, an I/O error). Writes go on
  // failing quietly, so that every rank still enters every collective call; commit() then makes
  // all ranks agree before the collective close.
  std::string error;

  void record(const std::exception& e) {
    if (error.empty()) error = e.what();
  }

  // Gives the file up without closing it: a collective close with the ranks' HDF5 states diverged
  // after a failed write hangs, and a failed close leaves a torn object behind (common/unclosable_files.h).
  void abandon() {
    for (auto& d : datasets) d.id.release(), d.type.release();
    file.release();
    abandoned = true;
    mark_unclosable_file();
    if (rank == 0) ::unlink(tmp_path.c_str());
  }

  // Collective: when any rank has failed, every rank abandons the file and throws the lowest
  // failing rank's error, so that all leave together with the same line and nothing committed.
  void agree_or_abandon() {
    const std::string message = first_error(comm, error);
    if (message.empty()) return;
    abandon();
    throw Error(message + "; nothing committed, " + base_name(tmp_path) + " removed");
  }

  // Closes datasets and file, checking each close (a full disk often shows only here, when HDF5
  // flushes its metadata). Returns whether all succeeded; on failure the error is recorded.
  bool close_all() {
    bool ok = true;
    for (auto& d : datasets) {
      const hid_t id = d.id.get();
      d.id.release();
      if (id >= 0 && H5Dclose(id) < 0) ok = false;
    }
    datasets.clear();
    const hid_t f = file.get();
    file.release();
    errno = 0;
    if (f >= 0 && H5Fclose(f) < 0) ok = false;
    if (!ok) {
      const std::string cause = write_failure_cause(tmp_path, errno);
      try {
        h5_fail(tmp_path + ": closing the file failed" + cause);
      } catch (const Error& e) {
        record(e);
      }
    }
    return ok;
  }

  Dataset& find(const std::string& p) {
    auto it = index.find(p);
    if (it == index.end()) throw Error(tmp_path + ": dataset " + p + " was not defined");
    return datasets[it->second];
  }

  void ensure_groups(const std::string& dataset_path) {
    for (size_t slash = dataset_path.find('/', 1); slash != std::string::npos; slash = dataset_path.find('/', slash + 1)) {
      std::string group = dataset_path.substr(0, slash);
      if (H5Lexists(file, group.c_str(), H5P_DEFAULT) > 0) continue;
      Handle gcpl = ordered_group_props();
      Handle g(h5(H5Gcreate2(file, group.c_str(), H5P_DEFAULT, gcpl, H5P_DEFAULT), tmp_path + ": create group " + group), H5Gclose);
    }
  }

  // One transfer; a failure is recorded (with the system's reason where it is a full disk, a quota,
  // a file-size limit or an I/O error), not thrown (see `error`).
  void write_piece(Dataset& d, int64_t begin, int64_t count, const void* src, hid_t dxpl) {
    try {
      Handle fspace(h5(H5Dget_space(d.id), tmp_path + ": " + d.path), H5Sclose);
      Handle mspace = select_rows(fspace, d.info.shape, begin, count);
      errno = 0;
      if (H5Dwrite(d.id, d.type, mspace, fspace, dxpl, src) < 0) {
        h5_fail(tmp_path + ": write " + d.path + write_failure_cause(tmp_path, errno));
      }
    } catch (const Error& e) {
      record(e);
    }
  }
};

CheckpointWriter::CheckpointWriter(const std::string& path, MPI_Comm comm, const CheckpointAttrs& attrs)
    : impl_(std::make_unique<Impl>()) {
  quiet_hdf5();
  auto& m = *impl_;
  m.path = path;
  m.tmp_path = path + ".tmp";
  m.attrs = attrs;
  m.attrs.code_version = OVR_VERSION_STRING;
  OVR_MPI_CHECK(MPI_Comm_dup(comm, &m.comm));
  MPI_Comm_rank(m.comm, &m.rank);
  MPI_Comm_size(m.comm, &m.size);
  on_root_then_share(m.comm, [&] { make_dirs(parent_dir(path)); });
  Handle fapl = file_access(m.comm, m.size, true);
  Handle fcpl(H5Pcreate(H5P_FILE_CREATE), H5Pclose);
  h5(H5Pset_link_creation_order(fcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED), "creation order", 0);
  m.file = Handle(h5(H5Fcreate(m.tmp_path.c_str(), H5F_ACC_TRUNC, fcpl, fapl), "cannot create checkpoint " + m.tmp_path), H5Fclose);
}

CheckpointWriter::~CheckpointWriter() {
  auto& m = *impl_;
  if (!m.committed && !m.abandoned) {
    // Closing a parallel file is collective, and after an exception the other ranks may never get
    // here: give it up rather than hang. On one rank, close it (and give it up if that fails).
    if (m.size > 1 && std::uncaught_exceptions() > 0) m.abandon();
    else if (!m.close_all()) m.abandon();
  }
  if (!m.committed && m.rank == 0) ::unlink(m.tmp_path.c_str());
  if (m.comm != MPI_COMM_NULL) MPI_Comm_free(&m.comm);
}

void CheckpointWriter::define(const std::string& dataset, DType dtype, const std::vector<int64_t>& shape) {
  auto& m = *impl_;
  check_dataset_path(dataset);
  if (m.index.count(dataset)) throw Error(m.tmp_path + ": dataset " + dataset + " defined twice");
  for (int64_t d : shape)
    if (d < 0) throw Error(m.tmp_path + ": dataset " + dataset + ": negative dimension in " + shape_string(shape));
  m.ensure_groups(dataset);
  Impl::Dataset d;
  d.path = dataset;
  d.info = TensorInfo{dataset, dtype, shape};
  d.type = h5_type(dtype);
  Handle space = make_space(shape);
  Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  // Every byte gets written by us: skip HDF5's fill pass, which would double the write volume.
  h5(H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER), "H5Pset_fill_time", 0);
  h5(H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY), "H5Pset_alloc_time", 0);
  try {
    d.id = Handle(h5(H5Dcreate2(m.file, dataset.c_str(), d.type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT),
                     m.tmp_path + ": create dataset " + dataset), H5Dclose);
    write_string_attr(d.id, "dtype", dtype_name(dtype));
  } catch (const Error& e) {
    m.record(e);  // its writes then fail too; commit() reports the first failure on every rank
  }
  m.index[dataset] = m.datasets.size();
  m.datasets.push_back(std::move(d));
}

void CheckpointWriter::write_rows(const std::string& dataset, int64_t row_begin, int64_t row_count, const void* src) {
  auto& m = *impl_;
  auto& d = m.find(dataset);
  check_rows(m.tmp_path, d.info, row_begin, row_count);
  const uint64_t rb = row_bytes(d.info);
  add_rows(d.written, row_begin, row_count, src, uint64_t(row_count) * rb, false, m.tmp_path + ": " + dataset);
  const int64_t step = std::max<int64_t>(1, int64_t(kMaxTransferBytes / std::max<uint64_t>(rb, 1)));
  for (int64_t r = 0; r < row_count; r += step) {
    const int64_t n = std::min(step, row_count - r);
    m.write_piece(d, row_begin + r, n, static_cast<const char*>(src) + uint64_t(r) * rb, H5P_DEFAULT);
  }
}

void CheckpointWriter::write_shard(const std::string& dataset, int64_t offset, int64_t count, const void* src) {
  auto& m = *impl_;
  auto& d = m.find(dataset);
  check_shard(m.tmp_path, d.info, offset, count);
  if (dataset_rows(d.info) == 0) return;  // nothing to write (and MPI-IO has no address for it)
  const uint64_t es = dtype_size(d.info.dtype);
  add_rows(d.written, offset, count, src, uint64_t(count) * es, true, m.tmp_path + ": " + dataset);
  Handle dxpl(H5Pcreate(H5P_DATASET_XFER), H5Pclose);
  if (m.size > 1) h5(H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE), "H5Pset_dxpl_mpio", 0);
  for_each_collective_piece(m.comm, count, es, [&](int64_t b, int64_t n) {
    m.write_piece(d, offset + b, n, static_cast<const char*>(src) + uint64_t(b) * es, dxpl);
  });
}

void CheckpointWriter::commit(bool update_latest) {
  auto& m = *impl_;
  m.agree_or_abandon();  // a write failed on some rank: every rank stops here, nothing renamed
  std::vector<std::vector<Segment>> mine;
  for (const auto& d : m.datasets) mine.push_back(d.written);
  auto all = allgather_segments(m.comm, m.size, mine);
  for (size_t i = 0; i < m.datasets.size(); ++i) {
    auto& d = m.datasets[i];
    uint32_t crc = 0;
    std::string gap;
    if (!combine_segments(all[i], dataset_rows(d.info), row_bytes(d.info), &crc, &gap))
      throw Error(m.tmp_path + ": dataset " + d.path + " was not completely written (" + gap + "); not committing");
    try {
      write_int_attr(d.id, "crc32", H5T_STD_U32LE, &crc);
    } catch (const Error& e) {
      m.record(e);
    }
  }
  try {
    const auto& a = m.attrs;
    const int version = kCheckpointFormatVersion;
    write_int_attr(m.file, "format_version", H5T_STD_I32LE, &version);
    write_int_attr(m.file, "step", H5T_STD_I64LE, &a.step);
    write_string_attr(m.file, "role", a.role);
    write_string_attr(m.file, "model_config", a.model_config);
    write_string_attr(m.file, "run_config", a.run_config);
    write_string_attr(m.file, "code_version", a.code_version);
    const int64_t writers = m.size;
    write_int_attr(m.file, "writer_world_size", H5T_STD_I64LE, &writers);
    for (const auto& [k, v] : a.extra) write_string_attr(m.file, k, v);
    // Written last: a file without it was never committed.
    write_string_attr(m.file, "format", kCheckpointFormat);
  } catch (const Error& e) {
    m.record(e);
  }
  m.agree_or_abandon();
  if (m.rank == 0 && on_phase) on_phase("data-written");
  if (!m.close_all()) mark_unclosable_file();  // HDF5 may hold a half-closed file
  m.agree_or_abandon();  // H5Fclose is collective: every rank learns whether every flush succeeded
  // Each rank wrote its own slices through MPI-IO, so on a parallel filesystem each node's client
  // caches a part of the file, and one client's fsync does not flush another's: every rank syncs
  // it, and the file is renamed into place (and a later --keep-last may delete the previous one)
  // only once all have succeeded.
  try {
    fsync_file(m.tmp_path);
  } catch (const Error& e) {
    m.record(e);
  }
  m.agree_or_abandon();
  on_root_then_share(m.comm, [&] {
    if (on_phase) on_phase("closed");
    rename_durable(m.tmp_path, m.path);
    if (on_phase) on_phase("renamed");
    if (update_latest) {
      write_file_atomic(join_path(parent_dir(m.path), "latest"), base_name(m.path) + "\n");
      if (on_phase) on_phase("latest-updated");
    }
  });
  m.committed = true;
}

}  // namespace ovr::io
