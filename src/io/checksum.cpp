#include "io/checksum.h"

#include <zlib.h>

namespace ovr::io {

uint32_t crc32_update(uint32_t crc, const void* data, size_t n) {
  return uint32_t(::crc32_z(crc, static_cast<const Bytef*>(data), n));
}

uint32_t crc32_concat(uint32_t crc_a, uint32_t crc_b, uint64_t len_b) {
  return uint32_t(::crc32_combine(crc_a, crc_b, z_off_t(len_b)));
}

}  // namespace ovr::io
