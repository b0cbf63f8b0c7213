// What the safetensors tests share: file images built byte by byte.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace ovr::io::test {

using Bytes = std::vector<uint8_t>;

inline const std::string kOrigin = "x.safetensors";

inline void put_le64(uint64_t v, uint8_t* p) {
  for (int i = 0; i < 8; ++i) p[i] = uint8_t(v >> (8 * i));
}

// A whole file image: 8-byte length, header text, `data_size` data bytes.
inline Bytes make_file(const std::string& header, uint64_t data_size) {
  Bytes b(8 + header.size() + data_size, 0);
  put_le64(header.size(), b.data());
  std::memcpy(b.data() + 8, header.data(), header.size());
  return b;
}

}  // namespace ovr::io::test
