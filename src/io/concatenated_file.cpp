#include "io/concatenated_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/error.h"
#include "common/gather.h"
#include "common/root_then_share.h"
#include "io/fs.h"

namespace ovr::io {

void write_concatenated(const std::string& path, MPI_Comm comm, const std::string& mine) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  const std::string tmp = path + ".tmp";
  const auto [offset, total] = offset_and_total(comm, mine.size());
  on_root_then_share(comm, [&] {
    make_dirs(parent_dir(path));
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) throw Error(tmp + ": " + std::strerror(errno));
    ::close(fd);
  });
  std::string error;
  try {
    const int fd = ::open(tmp.c_str(), O_WRONLY);
    if (fd < 0) throw Error(tmp + ": " + std::strerror(errno));
    try {
      pwrite_full(fd, mine.data(), mine.size(), offset, tmp);
      if (::fsync(fd) != 0) throw Error(tmp + ": fsync: " + std::strerror(errno));
    } catch (...) {
      ::close(fd);
      throw;
    }
    if (::close(fd) != 0) throw Error(tmp + ": close: " + std::strerror(errno));
  } catch (const std::exception& e) {
    error = e.what();
  }
  const std::string failed = first_error(comm, error);
  if (!failed.empty()) {
    if (rank == 0) ::unlink(tmp.c_str());
    throw Error(failed + "; nothing written to " + path);
  }
  on_root_then_share(comm, [&] {
    // Opened again, not stat'ed: an NFS client revalidates a file's attributes on open, not on a
    // stat served from its cache (other nodes wrote to it since rank 0 created it).
    const int fd = ::open(tmp.c_str(), O_RDONLY);
    struct stat st {};
    const bool ok = fd >= 0 && ::fstat(fd, &st) == 0;
    if (fd >= 0) ::close(fd);
    if (!ok) throw Error(tmp + ": " + std::strerror(errno));
    if (uint64_t(st.st_size) != total)
      throw Error(tmp + ": " + std::to_string(st.st_size) + " bytes, expected " + std::to_string(total));
    rename_durable(tmp, path);
  });
}

}  // namespace ovr::io
