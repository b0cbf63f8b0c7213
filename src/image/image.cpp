#include "image/image.h"

// jpeglib.h needs size_t and FILE declared before it.
#include <cstdio>
#include <csetjmp>
#include <cstring>
#include <jpeglib.h>
#include <jerror.h>  // JWRN_JPEG_EOF
#include <png.h>

#include "common/error.h"
#include "io/fs.h"

namespace ovr::image {

namespace {

bool is_png(const uint8_t* p, size_t n) { return n >= 8 && png_sig_cmp(p, 0, 8) == 0; }
bool is_jpeg(const uint8_t* p, size_t n) { return n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF; }

void check_size(int64_t height, int64_t width, const std::string& name) {
  if (height <= 0 || width <= 0) throw Error(name + ": image has no pixels (" + std::to_string(width) + "x" +
                                             std::to_string(height) + ")");
  if (height * width > kMaxImagePixels)
    throw Error(name + ": image of " + std::to_string(width) + "x" + std::to_string(height) +
                " pixels is over the limit of " + std::to_string(kMaxImagePixels) + " (a decompression bomb?)");
}

// ---- PNG ---------------------------------------------------------------------------------------

// libpng state and our error message. Error callbacks longjmp back into png_decode_into; the
// destructor (which runs in our frames only) frees libpng's structures.
struct PngReader {
  png_structp png = nullptr;
  png_infop info = nullptr;
  const uint8_t* data = nullptr;
  size_t size = 0, pos = 0;
  char message[256] = "";
  ~PngReader() { png_destroy_read_struct(&png, info ? &info : nullptr, nullptr); }
};

void png_on_error(png_structp png, png_const_charp msg) {
  auto* r = static_cast<PngReader*>(png_get_error_ptr(png));
  std::snprintf(r->message, sizeof r->message, "%s", msg);
  png_longjmp(png, 1);
}
void png_on_warning(png_structp, png_const_charp) {}  // ancillary-chunk problems: ignored, as PIL does

void png_read_from_memory(png_structp png, png_bytep out, png_size_t n) {
  auto* r = static_cast<PngReader*>(png_get_io_ptr(png));
  if (n > r->size - r->pos) png_error(png, "file is truncated");
  std::memcpy(out, r->data + r->pos, n);
  r->pos += n;
}

// PIL's alpha_composite of a pixel (colour c, alpha a) over opaque white: Pillow's integer
// arithmetic (AlphaComposite.c, 7 extra bits of precision), equal to Pillow 12 and 13 on all
// 65,536 (c, a) pairs.
uint8_t over_white(uint32_t c, uint32_t a) {
  if (a == 0) return 255;
  const uint32_t blend = 255 * (255 - a), outa255 = a * 255 + blend;
  const uint32_t coef1 = a * 255 * 255 * (1u << 7) / outa255, coef2 = 255 * (1u << 7) - coef1;
  const uint32_t tmp = c * coef1 + 255 * coef2 + (0x80u << 7);
  return static_cast<uint8_t>((((tmp >> 8) + tmp) >> 8) >> 7);
}

// Everything between setjmp and a possible longjmp lives here. No object with a destructor is
// created in this frame (longjmp would skip it); `out`, `pixels` and `rows` belong to the caller,
// and exceptions (bad_alloc, the size check) leave through our frames only. Returns false after a
// libpng error (message in r.message).
bool png_decode_into(PngReader& r, Image& out, std::vector<uint8_t>& pixels, std::vector<png_bytep>& rows,
                     const std::string& name) {
  if (setjmp(png_jmpbuf(r.png))) return false;
  png_set_read_fn(r.png, &r, png_read_from_memory);
  png_read_info(r.png, r.info);
  const int64_t width = png_get_image_width(r.png, r.info), height = png_get_image_height(r.png, r.info);
  check_size(height, width, name);
  const int color_type = png_get_color_type(r.png, r.info), depth = png_get_bit_depth(r.png, r.info);
  const bool trns = png_get_valid(r.png, r.info, PNG_INFO_tRNS) != 0;
  // PIL opens 16-bit grey as mode I;16, whose convert("RGB") clips each value to 255 (it does not
  // scale): read the 16-bit samples and clip them below. Everything else becomes 8-bit RGB or RGBA
  // as PIL's modes hold it: high bytes of 16-bit samples, palettes looked up, grey replicated, a
  // tRNS chunk turned into alpha.
  const bool grey16 = color_type == PNG_COLOR_TYPE_GRAY && depth == 16 && !trns;
  if (!grey16) png_set_strip_16(r.png);
  png_set_packing(r.png);  // 1/2/4-bit samples to bytes
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(r.png);
  if (color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_expand_gray_1_2_4_to_8(r.png);
  if (trns) png_set_tRNS_to_alpha(r.png);
  png_set_interlace_handling(r.png);
  png_read_update_info(r.png, r.info);
  const int64_t channels = png_get_channels(r.png, r.info), bytes = grey16 ? 2 : 1;
  const size_t row_bytes = png_get_rowbytes(r.png, r.info);
  if (row_bytes != static_cast<size_t>(width * channels * bytes))
    png_error(r.png, "unexpected pixel layout after conversion");
  pixels.resize(static_cast<size_t>(height) * row_bytes);
  rows.resize(static_cast<size_t>(height));
  for (int64_t y = 0; y < height; ++y) rows[y] = pixels.data() + y * row_bytes;
  png_read_image(r.png, rows.data());
  png_read_end(r.png, nullptr);  // reads the trailing chunks, so a file cut before IEND is caught
  out.height = height;
  out.width = width;
  out.rgb.resize(static_cast<size_t>(height * width * 3));
  // To RGB as transformers' convert_to_rgb: an image with alpha is composited onto white.
  const uint8_t* in = pixels.data();
  uint8_t* o = out.rgb.data();
  for (int64_t i = 0; i < height * width; ++i, o += 3) {
    if (grey16) {
      const unsigned v = (in[2 * i] << 8) | in[2 * i + 1];  // PNG samples are big-endian
      o[0] = o[1] = o[2] = static_cast<uint8_t>(v > 255 ? 255 : v);
    } else if (channels == 1) {
      o[0] = o[1] = o[2] = in[i];
    } else if (channels == 2) {
      o[0] = o[1] = o[2] = over_white(in[2 * i], in[2 * i + 1]);
    } else if (channels == 3) {
      o[0] = in[3 * i], o[1] = in[3 * i + 1], o[2] = in[3 * i + 2];
    } else {
      for (int c = 0; c < 3; ++c) o[c] = over_white(in[4 * i + c], in[4 * i + 3]);
    }
  }
  return true;
}

Image decode_png(const uint8_t* data, size_t size, const std::string& name) {
  PngReader r;
  r.data = data;
  r.size = size;
  r.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r, png_on_error, png_on_warning);
  if (!r.png) throw Error(name + ": cannot initialise libpng");
  r.info = png_create_info_struct(r.png);
  if (!r.info) throw Error(name + ": cannot initialise libpng");
  Image out;
  std::vector<uint8_t> pixels;
  std::vector<png_bytep> rows;
  if (!png_decode_into(r, out, pixels, rows, name)) throw Error(name + ": corrupt or truncated PNG (" + r.message + ")");
  return out;
}

// ---- JPEG --------------------------------------------------------------------------------------

struct JpegErrors {
  jpeg_error_mgr mgr;  // first member: libjpeg hands us a pointer to it
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX] = "";
};

[[noreturn]] void jpeg_on_error(j_common_ptr cinfo) {
  auto* e = reinterpret_cast<JpegErrors*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, e->message);
  std::longjmp(e->jump, 1);
}

// Warnings are not printed. A premature end of data is an error, as in PIL ("image file is
// truncated"); libjpeg would otherwise pad the image with grey and carry on.
void jpeg_on_message(j_common_ptr cinfo, int level) {
  if (level == -1 && cinfo->err->msg_code == JWRN_JPEG_EOF) jpeg_on_error(cinfo);
}

struct JpegReader {
  jpeg_decompress_struct cinfo;
  JpegErrors errors;
  bool created = false;
  ~JpegReader() {
    if (created) jpeg_destroy_decompress(&cinfo);
  }
};

// PIL's CMYK -> RGB (Convert.c cmyk2rgb) on CMYK as PIL holds it: JPEG's samples inverted
// ("CMYK;I": PIL assumes Adobe's inverted convention, as Photoshop writes them).
uint8_t cmyk_channel(int inverted_ink, int inverted_black) {
  const int ink = 255 - inverted_ink, nk = inverted_black;  // nk = 255 - k
  const int tmp = ink * nk + 128;
  const int v = nk - (((tmp >> 8) + tmp) >> 8);
  return static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

// As png_decode_into: the frame setjmp returns to holds nothing with a destructor.
bool jpeg_decode_into(JpegReader& r, const uint8_t* data, size_t size, Image& out, std::vector<uint8_t>& cmyk,
                      const std::string& name) {
  r.cinfo.err = jpeg_std_error(&r.errors.mgr);
  r.errors.mgr.error_exit = jpeg_on_error;
  r.errors.mgr.emit_message = jpeg_on_message;
  if (setjmp(r.errors.jump)) return false;
  jpeg_create_decompress(&r.cinfo);
  r.created = true;
  jpeg_mem_src(&r.cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&r.cinfo, TRUE);
  check_size(r.cinfo.image_height, r.cinfo.image_width, name);
  // libjpeg's defaults are PIL's too (islow DCT, fancy upsampling), so the pixels are PIL's. Grey
  // is replicated and YCbCr converted by libjpeg; CMYK (and YCCK, which libjpeg turns into CMYK)
  // is read as CMYK and converted below as PIL converts it.
  const bool four = r.cinfo.jpeg_color_space == JCS_CMYK || r.cinfo.jpeg_color_space == JCS_YCCK;
  r.cinfo.out_color_space = four ? JCS_CMYK : JCS_RGB;
  jpeg_start_decompress(&r.cinfo);
  out.height = r.cinfo.output_height;
  out.width = r.cinfo.output_width;
  const int64_t channels = four ? 4 : 3;
  std::vector<uint8_t>& target = four ? cmyk : out.rgb;
  target.resize(static_cast<size_t>(out.height * out.width * channels));
  while (r.cinfo.output_scanline < r.cinfo.output_height) {
    JSAMPROW row = target.data() + static_cast<size_t>(r.cinfo.output_scanline) * out.width * channels;
    jpeg_read_scanlines(&r.cinfo, &row, 1);
  }
  jpeg_finish_decompress(&r.cinfo);
  return true;
}

Image decode_jpeg(const uint8_t* data, size_t size, const std::string& name) {
  JpegReader r;
  Image out;
  std::vector<uint8_t> cmyk;
  if (!jpeg_decode_into(r, data, size, out, cmyk, name))
    throw Error(name + ": corrupt or truncated JPEG (" + r.errors.message + ")");
  if (!cmyk.empty()) {
    out.rgb.resize(static_cast<size_t>(out.height * out.width * 3));
    for (int64_t i = 0; i < out.height * out.width; ++i)
      for (int c = 0; c < 3; ++c) out.rgb[3 * i + c] = cmyk_channel(cmyk[4 * i + c], cmyk[4 * i + 3]);
  }
  return out;
}

}  // namespace

Image decode_image(const void* data, size_t size, const std::string& name) {
  const auto* p = static_cast<const uint8_t*>(data);
  if (is_png(p, size)) return decode_png(p, size, name);
  if (is_jpeg(p, size)) return decode_jpeg(p, size, name);
  if (size == 0) throw Error(name + ": empty file, not an image");
  throw Error(name + ": not a PNG or JPEG image (unrecognised first bytes)");
}

Image decode_image_file(const std::string& path) {
  const std::string bytes = io::read_text_file(path);  // "<path>: <strerror>" when missing
  return decode_image(bytes.data(), bytes.size(), path);
}

}  // namespace ovr::image
