#include "common/log.h"

#include <chrono>
#include <cstdio>

#include "common/mpi_runtime.h"

namespace ovr::log {

namespace {
bool g_all_ranks = false;
const auto g_start = std::chrono::steady_clock::now();

void emit(FILE* out, const char* level, const char* fmt, va_list args) {
  char line[4096];
  std::vsnprintf(line, sizeof line, fmt, args);
  const int size = world_size();
  if (size > 1)
    std::fprintf(out, "[%s r%d %7.1fs]%s %s\n", program_name().c_str(), world_rank(), elapsed_seconds(), level, line);
  else
    std::fprintf(out, "[%s %7.1fs]%s %s\n", program_name().c_str(), elapsed_seconds(), level, line);
  std::fflush(out);
}
}  // namespace

void set_all_ranks(bool all) { g_all_ranks = all; }

double elapsed_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - g_start).count();
}

void info(const char* fmt, ...) {
  if (!g_all_ranks && world_rank() != 0) return;
  va_list args;
  va_start(args, fmt);
  emit(stdout, "", fmt, args);
  va_end(args);
}

void warn(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  emit(stderr, " warning:", fmt, args);
  va_end(args);
}

}  // namespace ovr::log
