#include "io/fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/error.h"

namespace ovr::io {

namespace {
[[noreturn]] void fail(const std::string& what) { throw Error(what + ": " + std::strerror(errno)); }
}  // namespace

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail(path);
  return ss.str();
}

uint64_t file_size(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) fail(path);
  return uint64_t(st.st_size);
}

bool path_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

bool is_directory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string parent_dir(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string join_path(const std::string& dir, const std::string& name) {
  if (dir.empty() || dir == ".") return name;
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}

void make_dirs(const std::string& path) {
  if (path.empty() || is_directory(path)) return;
  make_dirs(parent_dir(path));
  if (::mkdir(path.c_str(), 0777) != 0 && errno != EEXIST) fail(path);
}

void pread_full(int fd, void* dst, uint64_t n, uint64_t offset, const std::string& what) {
  auto* p = static_cast<char*>(dst);
  while (n > 0) {
    ssize_t got = ::pread(fd, p, n > (1u << 30) ? (1u << 30) : n, off_t(offset));
    if (got < 0) {
      if (errno == EINTR) continue;
      fail(what);
    }
    if (got == 0) throw Error(what + ": unexpected end of file (truncated?)");
    p += got, n -= uint64_t(got), offset += uint64_t(got);
  }
}

void pwrite_full(int fd, const void* src, uint64_t n, uint64_t offset, const std::string& what) {
  auto* p = static_cast<const char*>(src);
  while (n > 0) {
    ssize_t put = ::pwrite(fd, p, n > (1u << 30) ? (1u << 30) : n, off_t(offset));
    if (put < 0) {
      if (errno == EINTR) continue;
      fail(what);
    }
    p += put, n -= uint64_t(put), offset += uint64_t(put);
  }
}

void fsync_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) fail(path);
  int rc = ::fsync(fd);
  int saved = errno;
  ::close(fd);
  errno = saved;
  if (rc != 0) fail(path + ": fsync");
}

void fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) fail(dir);
  ::fsync(fd);  // some filesystems refuse fsync on directories; the rename is still atomic there
  ::close(fd);
}

void rename_durable(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) fail("rename " + from + " -> " + to);
  fsync_dir(parent_dir(to));
}

void write_file_atomic(const std::string& path, const std::string& content) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) fail(tmp);
  try {
    pwrite_full(fd, content.data(), content.size(), 0, tmp);
    if (::fsync(fd) != 0) fail(tmp + ": fsync");
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  ::close(fd);
  rename_durable(tmp, path);
}

void append_line(const std::string& path, const std::string& line) {
  std::FILE* f = std::fopen(path.c_str(), "a");
  if (!f) throw Error(path + ": " + std::strerror(errno));
  const bool ok = std::fprintf(f, "%s\n", line.c_str()) >= 0;
  if (std::fclose(f) != 0 || !ok) throw Error(path + ": " + std::strerror(errno));
}

}  // namespace ovr::io
