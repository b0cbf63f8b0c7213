#include "io/run_lock.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "common/error.h"
#include "common/log.h"
#include "common/mpi_runtime.h"
#include "common/root_then_share.h"
#include "io/fs.h"

namespace ovr::io {

RunLock::RunLock(const std::string& dir, MPI_Comm comm) : dir_(dir) {
  on_root_then_share(comm, [&] {
    if (path_exists(dir) && !is_directory(dir)) throw Error(dir + ": exists and is not a directory (an output directory is expected)");
    created_dir_ = !path_exists(dir);
    make_dirs(dir);
    const std::string path = join_path(dir, ".ovr-lock");
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw Error(path + ": cannot open (" + std::strerror(errno) + ")");
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      if (err == EWOULDBLOCK) {
        char holder[512] = {0};
        const ssize_t n = ::pread(fd_, holder, sizeof holder - 1, 0);
        std::string who = n > 0 ? std::string(holder, size_t(n)) : "another process";
        while (!who.empty() && (who.back() == '\n' || who.back() == ' ')) who.pop_back();
        ::close(fd_), fd_ = -1;
        throw Error(dir + " is in use by " + who + "; two runs on one output directory would mix their files (wait for it, or use another directory)");
      }
      log::warn("%s: no lock (flock: %s); make sure no other run writes this directory", dir.c_str(), std::strerror(err));
    } else {
      char host[256] = {0};
      ::gethostname(host, sizeof host - 1);
      const std::time_t now = std::time(nullptr);
      char when[64];
      std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&now));
      const std::string me = program_name() + " (pid " + std::to_string(::getpid()) + " on " + host + ", since " + when + ")\n";
      if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, me.data(), me.size(), 0) != ssize_t(me.size()))
        log::warn("%s/.ovr-lock: cannot record the holder (%s)", dir.c_str(), std::strerror(errno));
    }
  });
}

RunLock::~RunLock() {
  if (fd_ < 0) return;
  if (created_dir_) {  // nothing but the lock in a folder this run made: the run wrote nothing
    bool only_lock = true;
    if (DIR* d = ::opendir(dir_.c_str())) {
      while (const dirent* e = ::readdir(d)) {
        const std::string name = e->d_name;
        if (name != "." && name != ".." && name != ".ovr-lock") only_lock = false;
      }
      ::closedir(d);
    }
    if (only_lock) {
      ::unlink(join_path(dir_, ".ovr-lock").c_str());
      ::rmdir(dir_.c_str());
    }
  }
  ::close(fd_);  // releases the flock
}

}  // namespace ovr::io
