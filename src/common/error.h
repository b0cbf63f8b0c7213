// Errors: exceptions that carry their context, and the exit codes every executable documents.
#pragma once
#include <stdexcept>
#include <string>

namespace ovr {

// Exit statuses shared by all executables (job scripts rely on them).
enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,   // bad input, I/O error, corrupt file, ...
  kExitUsage = 2,     // unknown option, bad option value, missing required value
  kExitRequeue = 75,  // EX_TEMPFAIL: checkpoint written after SIGTERM/SIGUSR1, "requeue me"
};

// A runtime failure. The message names what is wrong and where (file, dataset, line).
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// A bad option or option value. Every rank sees the same command line and config file, so
// every rank throws it identically and the job can exit without aborting the communicator.
class ConfigError : public Error {
 public:
  explicit ConfigError(const std::string& what) : Error(what) {}
};

}  // namespace ovr
