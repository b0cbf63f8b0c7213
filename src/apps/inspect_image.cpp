// ovr_inspect image: what Qwen2.5-VL's image processor makes of images (sizes, grid, tokens).
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/inspect_commands.h"
#include "common/config.h"
#include "common/error.h"
#include "common/mpi_runtime.h"
#include "io/fs.h"
#include "image/image_processor.h"

namespace ovr::apps {

namespace {

std::string basename_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

void write_floats(const std::string& path, const std::vector<float>& values) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(values.data()), static_cast<std::streamsize>(values.size() * sizeof(float)));
  f.close();
  if (!f) throw Error(path + ": cannot write pixel values");
}

}  // namespace

int inspect_image(int argc, char** argv) {
  Config cfg("ovr_inspect image",
             "ovr_inspect image --processor-config PATH [--min-pixels N] [--max-pixels N] [--dump-pixel-values DIR] IMAGE...",
             "Runs Qwen2.5-VL's image processor (Hugging Face's Qwen2VLImageProcessor: smart_resize, Pillow's\n"
             "bicubic, CLIP normalisation, 14x14 patches) on PNG or JPEG files and prints one JSON line per image:\n"
             "{\"image\", \"height\", \"width\", \"resized_height\", \"resized_width\", \"grid_thw\", \"image_tokens\"}\n"
             "(image_tokens: the <|image_pad|> tokens the LLM sees, grid_h*grid_w/4). With --dump-pixel-values DIR,\n"
             "DIR/<file name>.f32 receives pixel_values as raw little-endian float32, shape\n"
             "(grid_t*grid_h*grid_w, 1176). An unreadable image or one under 28 px ends the run with status 1.");
  cfg.options().add_options()
      ("processor-config", po::value<std::string>()->required(),
       "preprocessor_config.json, or a Hugging Face model directory holding one")
      ("min-pixels", po::value<int64_t>(), "override the file's min_pixels")
      ("max-pixels", po::value<int64_t>(), "override the file's max_pixels (RL recipes lower it to bound memory)")
      ("dump-pixel-values", po::value<std::string>(), "directory for <image file name>.f32 (created if missing)")
      ("image", po::value<std::vector<std::string>>()->required(), "PNG or JPEG files (positional)");
  cfg.positional("image", -1);
  if (!cfg.parse(argc, argv)) return kExitOk;

  auto options = image::ImageProcessorOptions::from_json_file(cfg.get<std::string>("processor-config"));
  auto override_pixels = [&](const char* name, int64_t& field) {
    if (!cfg.has(name)) return;
    field = cfg.get<int64_t>(name);
    if (field <= 0) throw ConfigError(std::string("--") + name + " must be positive, not " + std::to_string(field));
  };
  override_pixels("min-pixels", options.min_pixels);
  override_pixels("max-pixels", options.max_pixels);
  if (options.min_pixels > options.max_pixels)
    throw ConfigError("min_pixels " + std::to_string(options.min_pixels) + " is over max_pixels " +
                      std::to_string(options.max_pixels));
  if (world_rank() != 0) return kExitOk;  // one process reports (the work is per image and small)

  const image::ImageProcessor processor(options);
  const std::string dump_dir = cfg.has("dump-pixel-values") ? cfg.get<std::string>("dump-pixel-values") : "";
  if (!dump_dir.empty()) io::make_dirs(dump_dir);
  for (const auto& path : cfg.get<std::vector<std::string>>("image")) {
    const image::Image image = image::decode_image_file(path);
    const image::ProcessedImage out = processor.process(image, path);
    nlohmann::ordered_json line = {{"image", path},
                           {"height", image.height},
                           {"width", image.width},
                           {"resized_height", out.resized_height},
                           {"resized_width", out.resized_width},
                           {"grid_thw", out.grid_thw},
                           {"image_tokens", out.num_image_tokens()}};
    if (!dump_dir.empty()) {
      const std::string file = io::join_path(dump_dir, basename_of(path) + ".f32");
      write_floats(file, out.pixel_values);
      line["pixel_values"] = file;
      line["pixel_values_shape"] = {out.rows, out.cols};
    }
    const std::string text = line.dump() + "\n";
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  }
  return kExitOk;
}

}  // namespace ovr::apps
