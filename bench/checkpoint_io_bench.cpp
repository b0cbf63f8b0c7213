// Checkpoint write/read throughput against plain sequential write()/read() of the same bytes on
// the same filesystem, measured in the same run. Goal: >= 70% of the plain figures.
//
//   checkpoint_io_bench [DIR] [MEGABYTES] [TENSOR_MEGABYTES]
//
// Both sides include fsync, and both evict their file from the page cache before reading, so
// that reads come from the device, not from memory.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/mpi_runtime.h"
#include "io/fs.h"
#include "io/hdf5_checkpoint.h"

using namespace ovr;

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

void evict(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  ::fdatasync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

struct Figures {
  double write_s = 0, read_s = 0;
};

Figures plain(const std::string& path, const std::vector<std::vector<float>>& tensors) {
  Figures f;
  double t0 = now();
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  uint64_t off = 0;
  for (const auto& t : tensors) {
    io::pwrite_full(fd, t.data(), t.size() * 4, off, path);
    off += t.size() * 4;
  }
  ::fsync(fd);
  ::close(fd);
  f.write_s = now() - t0;
  evict(path);
  std::vector<float> buf(tensors[0].size());
  t0 = now();
  fd = ::open(path.c_str(), O_RDONLY);
  off = 0;
  for (const auto& t : tensors) {
    io::pread_full(fd, buf.data(), t.size() * 4, off, path);
    off += t.size() * 4;
  }
  ::close(fd);
  f.read_s = now() - t0;
  return f;
}

Figures checkpoint(const std::string& path, const std::vector<std::vector<float>>& tensors) {
  Figures f;
  double t0 = now();
  {
    io::CheckpointWriter w(path, MPI_COMM_SELF, io::CheckpointAttrs{});
    for (size_t i = 0; i < tensors.size(); ++i)
      w.define("/model/t" + std::to_string(i), io::DType::F32, {int64_t(tensors[i].size())});
    for (size_t i = 0; i < tensors.size(); ++i)
      w.write_rows("/model/t" + std::to_string(i), 0, int64_t(tensors[i].size()), tensors[i].data());
    w.commit(false);  // includes the fsync
  }
  f.write_s = now() - t0;
  evict(path);
  std::vector<float> buf(tensors[0].size());
  t0 = now();
  {
    io::CheckpointReader r(path);
    for (size_t i = 0; i < tensors.size(); ++i) r.read("/model/t" + std::to_string(i), buf.data());  // CRC checked
  }
  f.read_s = now() - t0;
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  return run_main("checkpoint_io_bench", argc, argv, [](int argc, char** argv) {
    const std::string dir = argc > 1 ? argv[1] : "/tmp/ovr_bench";
    const double total_mb = argc > 2 ? std::atof(argv[2]) : 1024;
    const double tensor_mb = argc > 3 ? std::atof(argv[3]) : 64;
    io::make_dirs(dir);
    const size_t per = size_t(tensor_mb * 1e6 / 4), count = size_t(total_mb / tensor_mb);
    std::vector<std::vector<float>> tensors(count, std::vector<float>(per));
    for (size_t i = 0; i < count; ++i)
      for (size_t e = 0; e < per; ++e) tensors[i][e] = float(i) + float(e % 1000) * 1e-3f;
    const double bytes = double(count * per * 4);
    std::printf("checkpoint I/O: %zu tensors x %.0f MB = %.0f MB in %s\n", count, tensor_mb, bytes / 1e6, dir.c_str());
    // Interleave the two, twice, and keep each one's best: the same disk state for both.
    Figures p{1e9, 1e9}, c{1e9, 1e9};
    for (int rep = 0; rep < 2; ++rep) {
      Figures a = plain(dir + "/plain.bin", tensors), b = checkpoint(dir + "/ckpt.h5", tensors);
      p.write_s = std::min(p.write_s, a.write_s), p.read_s = std::min(p.read_s, a.read_s);
      c.write_s = std::min(c.write_s, b.write_s), c.read_s = std::min(c.read_s, b.read_s);
    }
    ::unlink((dir + "/plain.bin").c_str());
    ::unlink((dir + "/ckpt.h5").c_str());
    std::printf("%-7s %22s %22s %8s %s\n", "", "plain write()/read()", "ovr checkpoint", "ratio", "goal");
    std::printf("%-7s %17.0f MB/s %17.0f MB/s %7.0f%% %s\n", "write", bytes / 1e6 / p.write_s, bytes / 1e6 / c.write_s,
                100 * p.write_s / c.write_s, p.write_s / c.write_s >= 0.7 ? ">= 70% met" : ">= 70% NOT met");
    std::printf("%-7s %17.0f MB/s %17.0f MB/s %7.0f%% %s\n", "read", bytes / 1e6 / p.read_s, bytes / 1e6 / c.read_s,
                100 * p.read_s / c.read_s, p.read_s / c.read_s >= 0.7 ? ">= 70% met" : ">= 70% NOT met");
    return 0;
  });
}
