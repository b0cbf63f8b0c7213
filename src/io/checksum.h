// CRC-32 (zlib's polynomial, as in gzip/PNG) of stored tensor bytes. CRCs of adjacent byte
// ranges combine without rereading the data, so ranks that each wrote or read one contiguous
// shard of a dataset can still check the whole dataset's CRC.
#pragma once
#include <cstddef>
#include <cstdint>

namespace ovr::io {

uint32_t crc32_update(uint32_t crc, const void* data, size_t n);  // start with crc = 0
// CRC of A followed by B, from crc(A), crc(B) and B's length in bytes.
uint32_t crc32_concat(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

}  // namespace ovr::io
