#include "image/image_processor.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "io/fs.h"

namespace ovr::image {

// ---- options -----------------------------------------------------------------------------------

namespace {

int64_t positive_int(const nlohmann::json& j, const char* key, int64_t fallback, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_number_integer() || j[key].get<int64_t>() <= 0)
    throw Error(where + ": \"" + key + "\" must be a positive integer, not " + j[key].dump());
  return j[key].get<int64_t>();
}

std::array<float, 3> three_floats(const nlohmann::json& j, const char* key, std::array<float, 3> fallback,
                                  const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  const auto& v = j[key];
  if (v.is_number()) return {v.get<float>(), v.get<float>(), v.get<float>()};  // HF accepts one value
  if (!v.is_array() || v.size() != 3 || !v[0].is_number() || !v[1].is_number() || !v[2].is_number())
    throw Error(where + ": \"" + key + "\" must be 3 numbers (R, G, B), not " + v.dump());
  // HF builds a float32 array from the Python floats: the same rounding as get<float>().
  return {v[0].get<float>(), v[1].get<float>(), v[2].get<float>()};
}

bool flag(const nlohmann::json& j, const char* key, bool fallback, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_boolean()) throw Error(where + ": \"" + key + "\" must be true or false, not " + j[key].dump());
  return j[key].get<bool>();
}

}  // namespace

ImageProcessorOptions ImageProcessorOptions::from_json_file(const std::string& path) {
  const std::string file = io::is_directory(path) ? io::join_path(path, "preprocessor_config.json") : path;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(io::read_text_file(file));
  } catch (const nlohmann::json::exception& e) {
    throw Error(file + ": not valid JSON (" + e.what() + ")");
  }
  if (!j.is_object()) throw Error(file + ": expected a JSON object");
  ImageProcessorOptions o;
  if (j.contains("image_processor_type") && j["image_processor_type"].is_string()) {
    const auto type = j["image_processor_type"].get<std::string>();
    if (type.rfind("Qwen2VLImageProcessor", 0) != 0)
      throw Error(file + ": image_processor_type is \"" + type + "\", not Qwen2VLImageProcessor");
  }
  // Pixel limits: size {shortest_edge, longest_edge}, overridden by min_pixels/max_pixels (HF's
  // backward-compatible keys, which Qwen2.5-VL's official file carries next to `size`).
  if (j.contains("size") && j["size"].is_object()) {
    o.min_pixels = positive_int(j["size"], "shortest_edge", o.min_pixels, file + ": size");
    o.max_pixels = positive_int(j["size"], "longest_edge", o.max_pixels, file + ": size");
  }
  o.min_pixels = positive_int(j, "min_pixels", o.min_pixels, file);
  o.max_pixels = positive_int(j, "max_pixels", o.max_pixels, file);
  o.patch_size = positive_int(j, "patch_size", o.patch_size, file);
  o.temporal_patch_size = positive_int(j, "temporal_patch_size", o.temporal_patch_size, file);
  o.merge_size = positive_int(j, "merge_size", o.merge_size, file);
  o.image_mean = three_floats(j, "image_mean", o.image_mean, file);
  o.image_std = three_floats(j, "image_std", o.image_std, file);
  if (j.contains("rescale_factor")) {
    if (!j["rescale_factor"].is_number()) throw Error(file + ": \"rescale_factor\" must be a number");
    o.rescale_factor = j["rescale_factor"].get<double>();
  }
  if (j.contains("ovr_pillow")) {  // ours (Hugging Face ignores it): which Pillow's resize to match
    if (!j["ovr_pillow"].is_number_integer() || (j["ovr_pillow"] != 12 && j["ovr_pillow"] != 13))
      throw Error(file + ": \"ovr_pillow\" must be 12 or 13");
    o.pillow = j["ovr_pillow"].get<int>();
  }
  o.do_resize = flag(j, "do_resize", o.do_resize, file);
  o.do_rescale = flag(j, "do_rescale", o.do_rescale, file);
  o.do_normalize = flag(j, "do_normalize", o.do_normalize, file);
  if (!flag(j, "do_convert_rgb", true, file)) throw Error(file + ": do_convert_rgb false is not supported");
  if (j.contains("resample") && j["resample"] != 3)
    throw Error(file + ": resample " + j["resample"].dump() + " is not supported (only 3, bicubic)");
  if (o.min_pixels > o.max_pixels)
    throw Error(file + ": min_pixels " + std::to_string(o.min_pixels) + " is over max_pixels " +
                std::to_string(o.max_pixels));
  return o;
}

// ---- smart_resize ------------------------------------------------------------------------------

ResizedSize smart_resize(int64_t height, int64_t width, int64_t factor, int64_t min_pixels, int64_t max_pixels) {
  // The transformers release the fixtures record raises for a side under the factor (later ones
  // upscale instead); an image that small carries nothing the model could read anyway.
  if (height < factor || width < factor)
    throw Error("height:" + std::to_string(height) + " or width:" + std::to_string(width) +
                " must be larger than factor:" + std::to_string(factor));
  const double ratio = static_cast<double>(std::max(height, width)) / static_cast<double>(std::min(height, width));
  if (ratio > 200) throw Error("absolute aspect ratio must be smaller than 200, got " + std::to_string(ratio));
  // Python's round(): half to even, which std::nearbyint does in the default rounding mode. The
  // divisions are the same IEEE double operations Python performs (all operands exact in double).
  const auto f = static_cast<double>(factor);
  const auto h = static_cast<double>(height), w = static_cast<double>(width);
  int64_t h_bar = static_cast<int64_t>(std::nearbyint(h / f)) * factor;
  int64_t w_bar = static_cast<int64_t>(std::nearbyint(w / f)) * factor;
  if (h_bar * w_bar > max_pixels) {
    const double beta = std::sqrt(static_cast<double>(height * width) / static_cast<double>(max_pixels));
    // max(factor, ...): never a zero side when max_pixels is below factor^2 (as later HF releases).
    h_bar = std::max(factor, static_cast<int64_t>(std::floor(h / beta / f)) * factor);
    w_bar = std::max(factor, static_cast<int64_t>(std::floor(w / beta / f)) * factor);
  } else if (h_bar * w_bar < min_pixels) {
    const double beta = std::sqrt(static_cast<double>(min_pixels) / static_cast<double>(height * width));
    h_bar = static_cast<int64_t>(std::ceil(h * beta / f)) * factor;
    w_bar = static_cast<int64_t>(std::ceil(w * beta / f)) * factor;
  }
  return {h_bar, w_bar};
}

// ---- Pillow's bicubic resize -------------------------------------------------------------------

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // Pillow: 8 bits of result, 2 for overflow

double bicubic_kernel(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// Per output pixel: the first input pixel, the count, and ksize fixed-point weights (Pillow's
// precompute_coeffs + normalize_coeffs_8bpc, same operations in the same order).
struct Coeffs {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<int32_t> k;
};

Coeffs bicubic_coeffs(int in_size, int out_size) {
  const double scale = static_cast<double>(static_cast<float>(in_size) - 0.0f) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = 2.0 * filterscale;
  Coeffs c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.first.resize(out_size);
  c.count.resize(out_size);
  c.k.assign(static_cast<size_t>(out_size) * c.ksize, 0);
  std::vector<double> w(c.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = 0.0 + (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    const int xmin = std::max(0, static_cast<int>(center - support + 0.5));
    const int xmax = std::min(in_size, static_cast<int>(center + support + 0.5)) - xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      w[x] = bicubic_kernel((x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    for (int x = 0; x < xmax; ++x) {
      const double v = ww != 0.0 ? w[x] / ww : w[x];
      c.k[static_cast<size_t>(xx) * c.ksize + x] =
          static_cast<int32_t>(v < 0 ? -0.5 + v * (1 << kPrecisionBits) : 0.5 + v * (1 << kPrecisionBits));
    }
    c.first[xx] = xmin;
    c.count[xx] = xmax;
  }
  return c;
}

inline uint8_t clip8(int32_t v) {
  v >>= kPrecisionBits;  // arithmetic shift: floor, as Pillow's lookup index
  return static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

}  // namespace

namespace {

// One horizontal pass: rows [row0, row0 + rows) of `in`, each resampled to width hc.first.size().
Image horizontal_pass(const Image& in, const Coeffs& hc, int64_t row0, int64_t rows) {
  const int64_t width = static_cast<int64_t>(hc.first.size());
  Image out;
  out.height = rows;
  out.width = width;
  out.rgb.resize(static_cast<size_t>(rows * width * 3));
  for (int64_t y = 0; y < rows; ++y) {
    const uint8_t* src = in.rgb.data() + (y + row0) * in.width * 3;
    uint8_t* dst = out.rgb.data() + y * width * 3;
    for (int64_t xx = 0; xx < width; ++xx) {
      const int32_t* k = hc.k.data() + xx * hc.ksize;
      const uint8_t* p = src + static_cast<int64_t>(hc.first[xx]) * 3;
      int32_t s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
      for (int x = 0; x < hc.count[xx]; ++x) {
        s0 += p[3 * x + 0] * k[x];
        s1 += p[3 * x + 1] * k[x];
        s2 += p[3 * x + 2] * k[x];
      }
      dst[3 * xx + 0] = clip8(s0);
      dst[3 * xx + 1] = clip8(s1);
      dst[3 * xx + 2] = clip8(s2);
    }
  }
  return out;
}

// One vertical pass to height vc.first.size(); `in` holds the input rows from row0 on.
Image vertical_pass(const Image& in, const Coeffs& vc, int64_t row0) {
  const int64_t height = static_cast<int64_t>(vc.first.size()), n = in.width * 3;
  Image out;
  out.height = height;
  out.width = in.width;
  out.rgb.resize(static_cast<size_t>(height * n));
  std::vector<int32_t> acc(static_cast<size_t>(n));
  for (int64_t yy = 0; yy < height; ++yy) {
    const int32_t* k = vc.k.data() + yy * vc.ksize;
    std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
    for (int y = 0; y < vc.count[yy]; ++y) {
      const uint8_t* src = in.rgb.data() + (vc.first[yy] + y - row0) * n;
      const int32_t ky = k[y];
      for (int64_t i = 0; i < n; ++i) acc[i] += src[i] * ky;
    }
    uint8_t* o = out.rgb.data() + yy * n;
    for (int64_t i = 0; i < n; ++i) o[i] = clip8(acc[i]);
  }
  return out;
}

}  // namespace

bool pillow_resizes_vertically_first(int64_t in_height, int64_t in_width, int64_t height, int64_t width, int pillow) {
  return pillow >= 13 && in_height - height > 2 * std::max<int64_t>(in_width - width, 0);
}

Image resize_bicubic(const Image& image, int64_t height, int64_t width, int pillow) {
  if (height <= 0 || width <= 0 || height > (1 << 24) || width > (1 << 24))
    throw Error("resize to " + std::to_string(width) + "x" + std::to_string(height) + ": bad size");
  if (pillow != 12 && pillow != 13) throw Error("resize: Pillow reference " + std::to_string(pillow) + " is not 12 or 13");
  if (image.height == height && image.width == width) return image;
  const Coeffs hc = bicubic_coeffs(static_cast<int>(image.width), static_cast<int>(width));
  const Coeffs vc = bicubic_coeffs(static_cast<int>(image.height), static_cast<int>(height));
  const bool need_h = width != image.width, need_v = height != image.height;
  if (!need_v) return horizontal_pass(image, hc, 0, image.height);
  if (!need_h) return vertical_pass(image, vc, 0);
  if (pillow_resizes_vertically_first(image.height, image.width, height, width, pillow))
    return horizontal_pass(vertical_pass(image, vc, 0), hc, 0, height);
  // Horizontal first, over the input rows the vertical pass will read only.
  const int64_t row0 = vc.first[0], row_end = vc.first[height - 1] + vc.count[height - 1];
  return vertical_pass(horizontal_pass(image, hc, row0, row_end - row0), vc, row0);
}

// ---- the processor -----------------------------------------------------------------------------

ImageProcessor::ImageProcessor(ImageProcessorOptions options) : options_(options) {
  const auto& o = options_;
  if (o.patch_size <= 0 || o.temporal_patch_size <= 0 || o.merge_size <= 0)
    throw Error("image processor: patch_size, temporal_patch_size and merge_size must be positive");
  for (int c = 0; c < 3; ++c) {
    if (o.do_normalize && o.image_std[c] == 0.0f) throw Error("image processor: image_std holds a zero");
    for (int v = 0; v < 256; ++v) {
      // HF: rescale in float64 then cast to float32; normalise in float32 ((x - mean) / std).
      float x = o.do_rescale ? static_cast<float>(static_cast<double>(v) * o.rescale_factor) : static_cast<float>(v);
      if (o.do_normalize) x = (x - o.image_mean[c]) / o.image_std[c];
      lut_[c][v] = x;
    }
  }
}

ResizedSize ImageProcessor::target_size(int64_t height, int64_t width) const {
  const auto& o = options_;
  if (!o.do_resize) return {height, width};
  return smart_resize(height, width, o.factor(), o.min_pixels, o.max_pixels);
}

ProcessedImage ImageProcessor::process(const Image& image, const std::string& name) const {
  const auto& o = options_;
  ResizedSize size{};
  try {
    size = target_size(image.height, image.width);
  } catch (const Error& e) {
    throw Error(name + ": image of " + std::to_string(image.width) + "x" + std::to_string(image.height) +
                " pixels cannot be processed: " + e.what());
  }
  if (size.height % o.factor() != 0 || size.width % o.factor() != 0)
    throw Error(name + ": without resize, the image's sides (" + std::to_string(size.width) + "x" +
                std::to_string(size.height) + ") must be multiples of " + std::to_string(o.factor()));
  const Image resized = resize_bicubic(image, size.height, size.width, options_.pillow);

  const int64_t p = o.patch_size, m = o.merge_size, t = o.temporal_patch_size;
  const int64_t grid_h = size.height / p, grid_w = size.width / p;
  ProcessedImage r;
  r.resized_height = size.height;
  r.resized_width = size.width;
  r.grid_thw = {1, grid_h, grid_w};
  r.merge_size = m;
  r.rows = grid_h * grid_w;
  r.cols = 3 * t * p * p;
  r.pixel_values.resize(static_cast<size_t>(r.rows * r.cols));
  float* out = r.pixel_values.data();
  const int64_t W = size.width;
  for (int64_t bh = 0; bh < grid_h / m; ++bh)
    for (int64_t bw = 0; bw < grid_w / m; ++bw)
      for (int64_t mh = 0; mh < m; ++mh)
        for (int64_t mw = 0; mw < m; ++mw) {
          const int64_t y0 = (bh * m + mh) * p, x0 = (bw * m + mw) * p;
          for (int c = 0; c < 3; ++c) {
            float* frame0 = out;
            for (int64_t y = 0; y < p; ++y) {
              const uint8_t* px = resized.rgb.data() + ((y0 + y) * W + x0) * 3 + c;
              for (int64_t x = 0; x < p; ++x) *out++ = lut_[c][px[3 * x]];
            }
            // The still image is its own next frame(s): copy the first frame's patch.
            for (int64_t f = 1; f < t; ++f, out += p * p) std::copy(frame0, frame0 + p * p, out);
          }
        }
  return r;
}

}  // namespace ovr::image
