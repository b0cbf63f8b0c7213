// Still images for the vision path: PNG (libpng) and JPEG (libjpeg-turbo) decoded to 8-bit RGB.
//
// The conversion to RGB follows what Hugging Face's processors get from PIL's image.convert("RGB"):
// grey is replicated to three channels, palettes are looked up, and alpha (an alpha channel, or a
// PNG tRNS chunk) is DROPPED, not composited onto a background. 16-bit PNG samples keep their high
// byte (as Pillow does for 16-bit RGB; Pillow clips 16-bit *grey* to 255 instead, a quirk we do
// not copy). Gamma and colour-profile chunks are ignored, as PIL ignores them; EXIF orientation is
// not applied (HF's processors do not apply it to an image they are given either).
// CMYK/YCCK JPEGs are an error: PIL's CMYK -> RGB formula differs between versions, so a
// conversion could not promise equality with the reference.
//
// The format is read from the magic bytes, never from the extension. A missing, truncated or
// corrupt file is an ovr::Error naming the file: libpng and libjpeg report errors by longjmp from
// our callbacks, which are turned into exceptions outside their frames (never exit(), never UB).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ovr::model {

struct Image {
  int64_t height = 0, width = 0;
  std::vector<uint8_t> rgb;  // height * width * 3 bytes, row-major, channels last (HWC)
};

// Images over this many pixels are refused before their pixels are decoded: PIL's decompression-
// bomb limit (2 * Image.MAX_IMAGE_PIXELS), so a crafted header cannot make us allocate gigabytes.
constexpr int64_t kMaxImagePixels = 2 * 89478485;

// Decodes a PNG or JPEG file.
Image decode_image_file(const std::string& path);
// Decodes a PNG or JPEG held in memory; `name` (usually the file's path) prefixes every error.
Image decode_image(const void* data, size_t size, const std::string& name);

}  // namespace ovr::model
