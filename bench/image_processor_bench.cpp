// Images/s of decode + Qwen2.5-VL image processing (image/image_processor.h) on one thread, for a
// mix of 20 PNGs between 300x200 and 1600x1200 that the bench writes itself (a smooth gradient
// with noise, so that PNG compression and resizing see realistic data).
//
//     image_processor_bench [DIR] [REPEATS]      (DIR: where the PNGs go, default /tmp)
//
// The baseline is bench/image_processor_bench_hf.py on the same files (printed command line):
// transformers' Qwen2VLImageProcessor with PIL decoding, run in the same session.
#include <png.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "image/image_processor.h"

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "/tmp";
  const int repeats = argc > 2 ? std::max(1, std::atoi(argv[2])) : 3;
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int> wd(300, 1600), hd(200, 1200), noise(-12, 12);
  std::vector<std::string> files;
  int64_t tokens = 0;
  for (int i = 0; i < 20; ++i) {
    const int w = wd(rng), h = hd(rng);
    std::vector<uint8_t> px(static_cast<size_t>(w) * h * 3);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        for (int c = 0; c < 3; ++c)
          px[(static_cast<size_t>(y) * w + x) * 3 + c] =
              static_cast<uint8_t>(std::clamp((x * 255 / w + y * 255 / h * c) / (c + 1) + noise(rng), 0, 255));
    png_image img{};
    img.version = PNG_IMAGE_VERSION;
    img.format = PNG_FORMAT_RGB;
    img.width = w;
    img.height = h;
    files.push_back(dir + "/ovr_image_bench_" + std::to_string(i) + ".png");
    if (!png_image_write_to_file(&img, files.back().c_str(), 0, px.data(), 0, nullptr)) {
      std::fprintf(stderr, "%s: %s\n", files.back().c_str(), img.message);
      return 1;
    }
  }
  ovr::image::ImageProcessorOptions o;
  o.max_pixels = 12845056;  // Qwen2.5-VL's preprocessor_config.json
  const ovr::image::ImageProcessor proc(o);
  double best = 1e30;
  for (int r = 0; r < repeats + 1; ++r) {  // the first pass warms the page cache
    const auto t0 = std::chrono::steady_clock::now();
    tokens = 0;
    for (const auto& f : files) tokens += proc.process_file(f).num_image_tokens();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r > 0) best = std::min(best, s);
  }
  std::printf("ovr images/s=%.1f (20 PNGs 300x200..1600x1200, decode+process, one thread, best of %d; %lld image tokens)\n",
              files.size() / best, repeats, static_cast<long long>(tokens));
  std::printf("baseline: python bench/image_processor_bench_hf.py %s/ovr_image_bench_*.png\n", dir.c_str());
  return 0;
}
