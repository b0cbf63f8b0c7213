// The image path against Hugging Face's Qwen2VLImageProcessor: smart_resize on every reference
// case, pixel_values of the reference images, PNG/JPEG decoding to RGB, and the error cases.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>
// jpeglib.h needs FILE and size_t declared first.
#include <jpeglib.h>
#include <png.h>

#include "common/error.h"
#include "image/image.h"
#include "image/image_processor.h"

using ovr::image::Image;
using ovr::image::ImageProcessor;
using ovr::image::ImageProcessorOptions;

namespace {

const std::string kFixtures = std::string(OVR_TEST_FIXTURES) + "/image_processor";

std::string temp_path(const std::string& name) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir && *dir ? dir : "/tmp") + "/ovr_image_test_" + std::to_string(::getpid()) + "_" + name;
}

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f) << path;
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(f.good()) << path;
}

// Runs `fn`, expects an ovr::Error whose message holds every one of `parts`.
template <class Fn>
void expect_error(Fn fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected one mentioning " << parts[0];
  } catch (const ovr::Error& e) {
    for (const auto& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what() << "\nlacks: " << p;
  }
}

// A PNG written through libpng's simplified API (format: PNG_FORMAT_*).
std::string write_png(const std::string& name, uint32_t format, int width, int height, const void* pixels,
                      const void* colormap = nullptr, int colormap_entries = 0) {
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  img.format = format;
  img.width = width;
  img.height = height;
  img.colormap_entries = colormap_entries;
  const std::string path = temp_path(name);
  EXPECT_TRUE(png_image_write_to_file(&img, path.c_str(), 0, pixels, 0, colormap)) << img.message;
  return path;
}

std::string encode_jpeg(const std::vector<uint8_t>& pixels, int width, int height, int components) {
  jpeg_compress_struct c{};
  jpeg_error_mgr err{};
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &buf, &size);
  c.image_width = width;
  c.image_height = height;
  c.input_components = components;
  c.in_color_space = components == 3 ? JCS_RGB : JCS_GRAYSCALE;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, 95, TRUE);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    auto* row = const_cast<JSAMPROW>(pixels.data() + static_cast<size_t>(c.next_scanline) * width * components);
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  std::string out(reinterpret_cast<char*>(buf), size);
  std::free(buf);
  return out;
}

struct Reference {
  std::vector<float> values;
  std::vector<int64_t> shape, grid_thw, resized_hw;
};

Reference load_reference(const std::string& stem) {
  Reference r;
  const auto meta = nlohmann::json::parse(read_bytes(kFixtures + "/pixel_values/" + stem + ".pil_ref.json"));
  r.shape = meta["shape"].get<std::vector<int64_t>>();
  r.grid_thw = meta["image_grid_thw"].get<std::vector<int64_t>>();
  r.resized_hw = meta["resized_hw"].get<std::vector<int64_t>>();
  const std::string raw = read_bytes(kFixtures + "/pixel_values/" + stem + ".pixel_values.pil_ref.f32");
  r.values.resize(raw.size() / 4);
  std::memcpy(r.values.data(), raw.data(), r.values.size() * 4);  // little-endian hosts only
  return r;
}

// Largest |ours - reference| over the pixel_values of a fixture image.
double max_abs_error(const std::string& stem) {
  const Reference ref = load_reference(stem);
  const ImageProcessor proc(ImageProcessorOptions::from_json_file(kFixtures + "/preprocessor_config.json"));
  const auto out = proc.process_file(kFixtures + "/images/" + stem + ".png");
  EXPECT_EQ(std::vector<int64_t>({out.rows, out.cols}), ref.shape);
  EXPECT_EQ(std::vector<int64_t>(out.grid_thw.begin(), out.grid_thw.end()), ref.grid_thw);
  EXPECT_EQ(std::vector<int64_t>({out.resized_height, out.resized_width}), ref.resized_hw);
  if (out.pixel_values.size() != ref.values.size()) return INFINITY;
  double worst = 0;
  for (size_t i = 0; i < ref.values.size(); ++i)
    worst = std::max(worst, std::abs(static_cast<double>(out.pixel_values[i]) - ref.values[i]));
  std::printf("%s: max |ours - reference| = %.3g\n", stem.c_str(), worst);
  return worst;
}

}  // namespace

// ---- smart_resize ------------------------------------------------------------------------------

TEST(SmartResize, MatchesTransformersOnEveryReferenceCase) {
  std::ifstream f(kFixtures + "/smart_resize_cases.jsonl");
  ASSERT_TRUE(f);
  std::string line;
  int rows = 0, errors = 0;
  while (std::getline(f, line)) {
    if (line.empty()) continue;
    const auto row = nlohmann::json::parse(line);
    const auto& want = row["transformers"];  // the reference; other columns may differ
    const int64_t h = row["height"], w = row["width"], lo = row["min_pixels"], hi = row["max_pixels"];
    SCOPED_TRACE("case " + row["id"].dump() + ": " + std::to_string(h) + "x" + std::to_string(w));
    ++rows;
    if (want.contains("error")) {
      ++errors;
      const std::string msg = want["error"];
      // transformers' own words up to the number it prints (ours formats the ratio differently)
      expect_error([&] { ovr::image::smart_resize(h, w, 28, lo, hi); }, {msg.substr(0, msg.find(", got"))});
      continue;
    }
    const auto got = ovr::image::smart_resize(h, w, 28, lo, hi);
    EXPECT_EQ(got.height, want["resized_height"].get<int64_t>());
    EXPECT_EQ(got.width, want["resized_width"].get<int64_t>());
    ImageProcessorOptions o;
    o.min_pixels = lo;
    o.max_pixels = hi;
    const auto size = ImageProcessor(o).target_size(h, w);
    EXPECT_EQ(std::vector<int64_t>({1, size.height / 14, size.width / 14}), want["grid_thw"].get<std::vector<int64_t>>());
    EXPECT_EQ(size.height / 14 * size.width / 14 / 4, want["num_llm_tokens"].get<int64_t>());
  }
  EXPECT_EQ(rows, 83);
  EXPECT_GT(errors, 10);
}

TEST(SmartResize, RoundsHalvesToEvenAsPython) {
  EXPECT_EQ(ovr::image::smart_resize(70, 70, 28, 1, 1 << 30).height, 56);    // 2.5 -> 2
  EXPECT_EQ(ovr::image::smart_resize(126, 126, 28, 1, 1 << 30).height, 112);  // 4.5 -> 4
  EXPECT_EQ(ovr::image::smart_resize(98, 98, 28, 1, 1 << 30).height, 112);    // 3.5 -> 4
}

// ---- options -----------------------------------------------------------------------------------

TEST(ImageProcessorOptions, ReadsQwenPreprocessorConfig) {
  const auto o = ImageProcessorOptions::from_json_file(kFixtures + "/preprocessor_config.json");
  EXPECT_EQ(o.min_pixels, 3136);
  EXPECT_EQ(o.max_pixels, 12845056);
  EXPECT_EQ(o.patch_size, 14);
  EXPECT_EQ(o.temporal_patch_size, 2);
  EXPECT_EQ(o.merge_size, 2);
  EXPECT_FLOAT_EQ(o.image_mean[1], 0.4578275f);
  EXPECT_FLOAT_EQ(o.image_std[2], 0.27577711f);
  EXPECT_DOUBLE_EQ(o.rescale_factor, 1.0 / 255.0);
}

TEST(ImageProcessorOptions, BadFilesAreErrorsNamingTheFile) {
  const std::string path = temp_path("bad_preprocessor_config.json");
  write_bytes(path, R"({"resample": 2})");
  expect_error([&] { ImageProcessorOptions::from_json_file(path); }, {path, "resample"});
  write_bytes(path, R"({"max_pixels": "many"})");
  expect_error([&] { ImageProcessorOptions::from_json_file(path); }, {path, "max_pixels"});
  write_bytes(path, "{");
  expect_error([&] { ImageProcessorOptions::from_json_file(path); }, {path, "JSON"});
  std::remove(path.c_str());
}

// ---- pixel_values against the reference -------------------------------------------------------

TEST(ImageProcessor, PixelValuesWithoutResizeMatchReference) {
  EXPECT_LE(max_abs_error("pattern_56x84"), 1e-6);
  EXPECT_LE(max_abs_error("checker_noise_84x56"), 1e-6);
}

TEST(ImageProcessor, PixelValuesWithBicubicResizeMatchPillow) {
  // 45x60 -> 56x56 through Pillow's fixed-point bicubic, reproduced bit for bit: the only
  // difference left is float32 rounding in the normalisation.
  // (0 on x86-64 with GCC 12; 1e-6 leaves room for another compiler's float contraction.)
  EXPECT_LE(max_abs_error("gradient_45x60_needs_resize"), 1e-6);
}

TEST(ImageProcessor, PatchifyLayoutAndTemporalDuplication) {
  // A 56x56 image whose bytes encode their own position lets us check every element's place.
  Image img;
  img.height = img.width = 56;
  img.rgb.resize(56 * 56 * 3);
  for (int y = 0; y < 56; ++y)
    for (int x = 0; x < 56; ++x)
      for (int c = 0; c < 3; ++c) img.rgb[(y * 56 + x) * 3 + c] = static_cast<uint8_t>((y * 7 + x * 3 + c * 50) % 256);
  ImageProcessorOptions o;
  o.do_rescale = o.do_normalize = false;  // pixel_values hold the bytes themselves
  const auto out = ImageProcessor(o).process(img);
  ASSERT_EQ(out.rows, 16);
  ASSERT_EQ(out.cols, 1176);
  EXPECT_EQ(out.num_image_tokens(), 4);
  for (int64_t row = 0; row < 16; ++row) {
    // rows: (h-block, w-block, h in block, w in block) with 2x2 blocks of a 4x4 patch grid
    const int64_t bh = row / 8, bw = (row / 4) % 2, mh = (row / 2) % 2, mw = row % 2;
    const int64_t py = bh * 2 + mh, px = bw * 2 + mw;
    for (int c = 0; c < 3; ++c)
      for (int t = 0; t < 2; ++t)
        for (int y = 0; y < 14; ++y)
          for (int x = 0; x < 14; ++x) {
            const float want = img.rgb[((py * 14 + y) * 56 + px * 14 + x) * 3 + c];
            ASSERT_EQ(out.pixel_values[row * 1176 + ((c * 2 + t) * 14 + y) * 14 + x], want)
                << "row " << row << " c " << c << " t " << t << " y " << y << " x " << x;
          }
  }
}

TEST(ImageProcessor, ImageUnder28PixelsIsAClearError) {
  Image img;
  img.height = 20;
  img.width = 300;
  img.rgb.assign(20 * 300 * 3, 128);
  expect_error([&] { ImageProcessor().process(img, "tiny.png"); }, {"tiny.png", "300x20", "factor:28"});
}

TEST(ImageProcessor, ResizeKeepsAFlatImageFlat) {
  Image img;
  img.height = 301;
  img.width = 199;
  img.rgb.assign(301 * 199 * 3, 77);
  const Image r = ovr::image::resize_bicubic(img, 112, 84);
  ASSERT_EQ(r.rgb.size(), 112u * 84 * 3);
  for (uint8_t v : r.rgb) ASSERT_EQ(v, 77);
}

// ---- decoding ----------------------------------------------------------------------------------

TEST(DecodeImage, PngVariantsBecomeRgbAsTransformersSeesThem) {
  // Partial alpha and every other mode against transformers itself: ImageModes below.
  const int w = 5, h = 3;
  {  // grey: replicated
    std::vector<uint8_t> px(w * h);
    for (int i = 0; i < w * h; ++i) px[i] = static_cast<uint8_t>(i * 17);
    const auto img = ovr::image::decode_image_file(write_png("grey.png", PNG_FORMAT_GRAY, w, h, px.data()));
    ASSERT_EQ(img.height, h);
    ASSERT_EQ(img.width, w);
    for (int i = 0; i < w * h; ++i)
      for (int c = 0; c < 3; ++c) ASSERT_EQ(img.rgb[i * 3 + c], px[i]);
  }
  {  // grey + alpha and RGBA: opaque pixels keep their colour, clear ones become white
    std::vector<uint8_t> ga(w * h * 2), rgba(w * h * 4);
    for (int i = 0; i < w * h; ++i) {
      const uint8_t alpha = i % 2 ? 255 : 0;
      ga[i * 2] = static_cast<uint8_t>(200 - i), ga[i * 2 + 1] = alpha;
      for (int c = 0; c < 3; ++c) rgba[i * 4 + c] = static_cast<uint8_t>(i * 13 + c * 50);
      rgba[i * 4 + 3] = alpha;
    }
    const auto g = ovr::image::decode_image_file(write_png("grey_alpha.png", PNG_FORMAT_GA, w, h, ga.data()));
    const auto r = ovr::image::decode_image_file(write_png("rgba.png", PNG_FORMAT_RGBA, w, h, rgba.data()));
    for (int i = 0; i < w * h; ++i)
      for (int c = 0; c < 3; ++c) {
        ASSERT_EQ(g.rgb[i * 3 + c], i % 2 ? ga[i * 2] : 255) << i;
        ASSERT_EQ(r.rgb[i * 3 + c], i % 2 ? rgba[i * 4 + c] : 255) << i;
      }
  }
  {  // palette with transparency (tRNS): looked up, a clear entry becomes white
    const uint8_t colormap[4 * 4] = {255, 0, 0, 255, 0, 255, 0, 0, 10, 20, 30, 255, 250, 251, 252, 255};
    std::vector<uint8_t> idx(w * h);
    for (int i = 0; i < w * h; ++i) idx[i] = static_cast<uint8_t>(i % 4);
    const auto img = ovr::image::decode_image_file(
        write_png("palette.png", PNG_FORMAT_RGBA_COLORMAP, w, h, idx.data(), colormap, 4));
    for (int i = 0; i < w * h; ++i)
      for (int c = 0; c < 3; ++c) ASSERT_EQ(img.rgb[i * 3 + c], idx[i] == 1 ? 255 : colormap[idx[i] * 4 + c]) << i;
  }
  {  // 16-bit grey clips to 255 (PIL's I;16 -> RGB); 16-bit RGB keeps the high byte
    std::vector<uint16_t> grey(w * h), rgb(w * h * 3);
    for (int i = 0; i < w * h; ++i) grey[i] = static_cast<uint16_t>(i * 30);
    for (int i = 0; i < w * h * 3; ++i) rgb[i] = static_cast<uint16_t>(i * 1300 + 0x80);
    const auto g = ovr::image::decode_image_file(write_png("grey16.png", PNG_FORMAT_LINEAR_Y, w, h, grey.data()));
    for (int i = 0; i < w * h; ++i)
      for (int c = 0; c < 3; ++c) ASSERT_EQ(g.rgb[i * 3 + c], std::min<int>(grey[i], 255)) << i;
    const auto r = ovr::image::decode_image_file(write_png("rgb16.png", PNG_FORMAT_LINEAR_RGB, w, h, rgb.data()));
    for (int i = 0; i < w * h * 3; ++i) ASSERT_EQ(r.rgb[i], rgb[i] >> 8) << i;
  }
}

// ---- every image mode against transformers ------------------------------------------------------

// tests/fixtures/image_modes: images of every mode (transparent RGBA, LA, palettes with and without
// tRNS, grey and RGB with tRNS, 16-bit grey/RGB/RGBA/LA, 1-bit, CMYK and grey JPEG, sizes that need
// a resize) and what transformers' Qwen2-VL processor (Pillow backend) makes of them, once per
// Pillow version (make_image_mode_fixtures.py). Our pixel_values must equal them: the decoding and
// the resize are integer arithmetic reproduced exactly, so the only room left is float32 rounding
// in the normalisation (0 here; 1e-6 allows another compiler's float contraction).
void expect_image_modes_match(int pillow) {
  const std::string dir = std::string(OVR_TEST_FIXTURES) + "/image_modes";
  const std::string ref_dir = dir + "/pillow" + std::to_string(pillow);
  ImageProcessorOptions o;
  o.min_pixels = 3136, o.max_pixels = 12845056, o.pillow = pillow;
  const ImageProcessor proc(o);
  int checked = 0;
  for (const char* stem : {"rgba_transparent_56x56", "la_56x56", "palette_trns_56x56", "palette_56x56", "grey_trns_56x56",
                           "rgb_trns_56x56", "grey16_56x56", "rgb16_56x56", "rgba16_56x56", "la16_56x56",
                           "bilevel_56x56", "cmyk_56x56", "grey_56x56", "rgba_resize_45x95", "rgb_resize_45x95",
                           "rgb_resize_95x45"}) {
    const auto meta = nlohmann::json::parse(read_bytes(ref_dir + "/" + stem + ".json"));
    const std::string values_dir = dir + "/" + meta.value("values_in", "pillow" + std::to_string(pillow));
    const std::string raw = read_bytes(values_dir + "/" + stem + ".f32");
    std::vector<float> ref(raw.size() / 4);
    std::memcpy(ref.data(), raw.data(), ref.size() * 4);  // little-endian hosts only
    const auto out = proc.process_file(dir + "/images/" + meta["image"].get<std::string>());
    EXPECT_EQ(std::vector<int64_t>(out.grid_thw.begin(), out.grid_thw.end()), meta["image_grid_thw"].get<std::vector<int64_t>>())
        << stem;
    ASSERT_EQ(out.pixel_values.size(), ref.size()) << stem;
    double worst = 0;
    for (size_t i = 0; i < ref.size(); ++i) worst = std::max(worst, std::abs(double(out.pixel_values[i]) - ref[i]));
    std::printf("Pillow %d  %-24s (PIL mode %-5s) max |ours - transformers| = %.3g\n", pillow, stem,
                meta["pil_mode"].get<std::string>().c_str(), worst);
    EXPECT_LE(worst, 1e-6) << stem << " (PIL mode " << meta["pil_mode"] << ")";
    ++checked;
  }
  EXPECT_EQ(checked, 16);
}

TEST(ImageModes, EveryModeMatchesTransformersWithPillow13) { expect_image_modes_match(13); }
TEST(ImageModes, EveryModeMatchesTransformersWithPillow12) { expect_image_modes_match(12); }

TEST(ImageModes, PillowVersionsDifferOnlyWhereTheirPassOrderDoes) {
  // 45 wide, 95 tall -> 56 x 84: the height shrinks while the width grows, so Pillow 13 runs the
  // vertical pass first and its bytes differ from Pillow 12's; 95 x 45 -> 84 x 56 does not.
  EXPECT_TRUE(ovr::image::pillow_resizes_vertically_first(95, 45, 84, 56, 13));
  EXPECT_FALSE(ovr::image::pillow_resizes_vertically_first(95, 45, 84, 56, 12));
  EXPECT_FALSE(ovr::image::pillow_resizes_vertically_first(45, 95, 56, 84, 13));
  const auto img = ovr::image::decode_image_file(std::string(OVR_TEST_FIXTURES) + "/image_modes/images/rgb_resize_45x95.png");
  EXPECT_NE(ovr::image::resize_bicubic(img, 84, 56, 12).rgb, ovr::image::resize_bicubic(img, 84, 56, 13).rgb);
}

TEST(DecodeImage, FormatComesFromMagicBytesNotExtension) {
  const uint8_t px[3] = {1, 2, 3};
  const std::string png = write_png("really_png.jpg", PNG_FORMAT_RGB, 1, 1, px);
  const auto img = ovr::image::decode_image_file(png);
  EXPECT_EQ(img.rgb, std::vector<uint8_t>({1, 2, 3}));
}

TEST(DecodeImage, JpegRoundTrip) {
  const int w = 48, h = 40;
  std::vector<uint8_t> rgb(w * h * 3), grey(w * h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      rgb[(y * w + x) * 3 + 0] = static_cast<uint8_t>(x * 5);  // smooth ramps survive JPEG well
      rgb[(y * w + x) * 3 + 1] = static_cast<uint8_t>(y * 6);
      rgb[(y * w + x) * 3 + 2] = 90;
      grey[y * w + x] = static_cast<uint8_t>(x * 2 + y * 3);
    }
  const std::string path = temp_path("ramp.png");  // the wrong extension on purpose
  write_bytes(path, encode_jpeg(rgb, w, h, 3));
  const auto img = ovr::image::decode_image_file(path);
  ASSERT_EQ(img.height, h);
  ASSERT_EQ(img.width, w);
  int worst = 0;
  for (size_t i = 0; i < rgb.size(); ++i) worst = std::max(worst, std::abs(int(img.rgb[i]) - int(rgb[i])));
  EXPECT_LE(worst, 12);  // lossy, with 4:2:0 chroma subsampling

  const std::string g = encode_jpeg(grey, w, h, 1);
  const auto gi = ovr::image::decode_image(g.data(), g.size(), "grey.jpg");
  for (int i = 0; i < w * h; ++i) {
    ASSERT_EQ(gi.rgb[i * 3], gi.rgb[i * 3 + 1]);
    ASSERT_EQ(gi.rgb[i * 3], gi.rgb[i * 3 + 2]);
    ASSERT_LE(std::abs(int(gi.rgb[i * 3]) - int(grey[i])), 4);
  }
  std::remove(path.c_str());
}

TEST(DecodeImage, MissingTruncatedAndCorruptFilesAreErrorsNamingTheFile) {
  const std::string missing = temp_path("does_not_exist.png");
  expect_error([&] { ovr::image::decode_image_file(missing); }, {missing});

  const std::string png = read_bytes(kFixtures + "/images/checker_noise_84x56.png");
  const std::string cut = temp_path("truncated.png");
  for (size_t keep : {size_t(8), size_t(40), png.size() / 2, png.size() - 12}) {
    write_bytes(cut, png.substr(0, keep));
    expect_error([&] { ovr::image::decode_image_file(cut); }, {cut, "PNG"});
  }
  std::string bad = png;
  for (size_t i = bad.size() / 2; i < bad.size() / 2 + 64; ++i) bad[i] = static_cast<char>(bad[i] ^ 0x5A);
  const std::string corrupt = temp_path("corrupt.png");
  write_bytes(corrupt, bad);
  expect_error([&] { ovr::image::decode_image_file(corrupt); }, {corrupt, "PNG"});

  std::vector<uint8_t> rgb(64 * 64 * 3);
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<uint8_t>(i * 31);
  const std::string jpeg = encode_jpeg(rgb, 64, 64, 3);
  const std::string jcut = temp_path("truncated.jpg");
  for (size_t keep : {size_t(3), size_t(100), jpeg.size() / 2, jpeg.size() - 2}) {
    write_bytes(jcut, jpeg.substr(0, keep));
    expect_error([&] { ovr::image::decode_image_file(jcut); }, {jcut, "JPEG"});
  }

  const std::string text = temp_path("notes.png");
  write_bytes(text, "hello, not an image");
  expect_error([&] { ovr::image::decode_image_file(text); }, {text, "not a PNG or JPEG"});
  write_bytes(text, "");
  expect_error([&] { ovr::image::decode_image_file(text); }, {text, "empty"});
  for (const auto& p : {cut, corrupt, jcut, text}) std::remove(p.c_str());
}
