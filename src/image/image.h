// Still images for the vision path: PNG (libpng) and JPEG (libjpeg-turbo) decoded to 8-bit RGB.
//
// The conversion to RGB is what transformers' Qwen2-VL processor (>= 5.24, Pillow backend) does
// with the image PIL opened (docs/images.md): convert_to_rgb composites an image with alpha (an
// alpha channel, or a PNG tRNS chunk) onto white with PIL's integer alpha_composite, so black
// strokes on a transparent background stay black on white; grey is replicated, palettes looked up,
// 16-bit samples keep their high byte, except 16-bit grey, which PIL opens as I;16 and clips to
// 255. CMYK and YCCK JPEGs are converted with PIL's formula (Adobe's inverted CMYK assumed, as PIL
// does). Gamma and colour-profile chunks are ignored, as PIL ignores them; EXIF orientation is not
// applied (the processor does not apply it to an image it is given; only transformers' load_image
// helper does). Every mode was checked against transformers and Pillow 12.1.1 and 13.0
// (tests/fixtures/image_modes).
//
// The format is read from the magic bytes, never from the extension. A missing, truncated or
// corrupt file is an ovr::Error naming the file: libpng and libjpeg report errors by longjmp from
// our callbacks, which are turned into exceptions outside their frames (never exit(), never UB).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ovr::image {

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

}  // namespace ovr::image
