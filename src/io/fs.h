// Small POSIX file helpers with checked errors: whole reads and writes, fsync, atomic replace.
#pragma once
#include <cstdint>
#include <string>

namespace ovr::io {

std::string read_text_file(const std::string& path);      // throws "<path>: <strerror>"
uint64_t file_size(const std::string& path);              // throws if missing
bool path_exists(const std::string& path);
bool is_directory(const std::string& path);
std::string parent_dir(const std::string& path);          // "." for a bare file name
std::string join_path(const std::string& dir, const std::string& name);
void make_dirs(const std::string& path);                  // mkdir -p

// pread/pwrite that loop over short transfers; a read past the end of the file is an error
// naming `what` (e.g. "model.safetensors: tensor x").
void pread_full(int fd, void* dst, uint64_t n, uint64_t offset, const std::string& what);
void pwrite_full(int fd, const void* src, uint64_t n, uint64_t offset, const std::string& what);

void fsync_file(const std::string& path);
void fsync_dir(const std::string& dir);
// rename(2) then fsync of the directory, so the new name survives a crash.
void rename_durable(const std::string& from, const std::string& to);
// Writes `content` to path.tmp.<pid>, fsyncs it and renames it over `path`: readers see the old
// or the new content, never a mix.
void write_file_atomic(const std::string& path, const std::string& content);
// Appends `line` and a newline (metrics JSONL); throws "<path>: <strerror>".
void append_line(const std::string& path, const std::string& line);

}  // namespace ovr::io
