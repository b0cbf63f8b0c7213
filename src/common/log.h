// Rank-aware logging: rank 0 prints by default; --log-all-ranks makes every rank print,
// each line prefixed with its rank. Lines carry the program name and the elapsed time.
#pragma once
#include <cstdarg>

namespace ovr::log {

void set_all_ranks(bool all);
// printf-style; a newline is added. info: progress for users (stdout); warn: stderr, every rank.
void info(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void warn(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
double elapsed_seconds();  // since the first call into this module (program start, in practice)

}  // namespace ovr::log
