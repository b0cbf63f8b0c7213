// Images/s through the image processor and the vision tower (decode, resize, normalise, patchify,
// patch embedding, window/full attention blocks, merger), image by image as rollouts see them.
// bench/vision_bench.sh runs it next to transformers on the same files, weights and threads.
//
//   vision_bench MODEL_DIR THREADS MAX_PIXELS IMAGE...
#include <torch/torch.h>

#include <chrono>
#include <cstdio>

#include "common/error.h"
#include "common/mpi_runtime.h"
#include "image/image_processor.h"
#include "model/qwen2_5_vl.h"

using namespace ovr;

int main(int argc, char** argv) {
  return run_main("vision_bench", argc, argv, [](int argc, char** argv) {
    if (argc < 5) throw ovr::Error("usage: vision_bench MODEL_DIR THREADS MAX_PIXELS IMAGE...");
    torch::set_num_threads(std::atoi(argv[2]));
    image::ImageProcessorOptions o;
    o.max_pixels = std::atoll(argv[3]);
    const image::ImageProcessor processor(o);
    model::Qwen2_5_VL m = model::load_qwen2_5_vl(argv[1]);
    if (!m.visual) throw ovr::Error(std::string(argv[1]) + ": no vision tower");
    torch::NoGradGuard no_grad;
    auto now = [] { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); };
    double best = 1e30, best_processor = 0;
    int64_t tokens = 0;
    for (int rep = 0; rep < 3; ++rep) {  // the first pass warms caches and allocators
      const double t0 = now();
      double processor_s = 0;
      tokens = 0;
      for (int i = 4; i < argc; ++i) {
        const double p0 = now();
        image::ProcessedImage p = processor.process_file(argv[i]);
        processor_s += now() - p0;
        at::Tensor pix = torch::from_blob(p.pixel_values.data(), {p.rows, p.cols}, at::kFloat);
        at::Tensor grid = torch::tensor(std::vector<int64_t>(p.grid_thw.begin(), p.grid_thw.end())).view({1, 3});
        tokens += m.visual->forward(pix, grid).size(0);
      }
      if (now() - t0 < best) best = now() - t0, best_processor = processor_s;
    }
    std::printf("{\"impl\": \"ovr\", \"images\": %d, \"llm_tokens\": %lld, \"images_per_s\": %.3f, \"processor_share\": %.2f}\n",
                argc - 4, (long long)tokens, (argc - 4) / best, best_processor / best);
    return 0;
  });
}
