// ovr_init: a randomly initialised Qwen2.5-VL checkpoint from a config.json (for the tiny
// default, tests and benchmarks; real runs start from the published weights via ovr_convert).
#include <random>

#include "common/config.h"
#include "common/error.h"
#include "common/log.h"
#include "common/mpi_runtime.h"
#include "io/checksum.h"
#include "io/fs.h"
#include "io/model_copy.h"
#include "io/tensor_store.h"
#include "model/qwen2_5_vl_params.h"

using namespace ovr;

static int init_main(int argc, char** argv) {
  Config cfg("ovr_init", "ovr_init --model-config config.json --output OUT [options]",
             "Writes a Qwen2.5-VL checkpoint with Hugging Face parameter names and random weights initialised as\n"
             "Hugging Face does (normal(0, initializer_range) matrices, unit norms, zero biases). Each tensor's\n"
             "values depend only on --seed and its name, not on the number of ranks.");
  cfg.options().add_options()
      ("model-config", po::value<std::string>()->required(), "the model's config.json")
      ("output,o", po::value<std::string>()->required(), "output: .h5 (HDF5 checkpoint), .safetensors or a directory (Hugging Face layout)")
      ("seed", po::value<uint64_t>()->default_value(0), "random seed")
      ("dtype", po::value<std::string>()->default_value("F32"), "stored dtype: F32, BF16 or F16")
      ("format", po::value<std::string>()->default_value("auto"), "output format: auto (from --output), hdf5, safetensors, hf")
      ("chunk-size", po::value<std::string>()->default_value("64MiB"), "bytes generated at a time")
      ("overwrite", po::bool_switch()->default_value(false), "replace an existing output directory");
  if (!cfg.parse(argc, argv)) return kExitOk;
  io::DType dtype;
  if (!io::dtype_from_name(cfg.get<std::string>("dtype"), &dtype) || !io::dtype_is_float(dtype) || dtype == io::DType::F64)
    throw ConfigError("--dtype: expected F32, BF16 or F16, got '" + cfg.get<std::string>("dtype") + "'");
  const std::string config_path = cfg.get<std::string>("model-config"), out = cfg.get<std::string>("output");
  const std::string config_text = io::read_text_file(config_path);
  const auto config = nlohmann::json::parse(config_text, nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded()) throw Error(config_path + ": not valid JSON");
  const std::vector<model::ParamSpec> params = model::qwen2_5_vl_parameters(config, dtype, config_path);
  const double stddev = config.value("initializer_range", 0.02);
  std::vector<io::TensorInfo> tensors;
  for (const auto& p : params) tensors.push_back(p.info);

  io::SinkOptions opt;
  opt.model_config = config_text;
  opt.metadata = {{"format", "pt"}};
  opt.overwrite = cfg.get<bool>("overwrite");
  opt.attrs.role = "policy";
  opt.attrs.run_config = cfg.to_json().dump();
  const std::string fmt = cfg.get<std::string>("format");
  auto sink = io::create_model_sink(out, fmt == "auto" ? io::detect_output_format(out) : io::parse_store_format(fmt),
                                    tensors, opt, MPI_COMM_WORLD);
  const uint64_t chunk = parse_byte_size(cfg.get<std::string>("chunk-size"), "--chunk-size");
  const auto owner = io::assign_tensors(tensors, world_size());
  uint64_t params_total = 0;
  std::vector<float> values;
  std::vector<char> bytes;
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& t = params[i].info;
    params_total += uint64_t(t.numel());
    if (owner[i] != world_rank()) continue;
    // Seeded by (seed, CRC of the name): the same values on any compiler and any number of ranks.
    std::seed_seq seq{cfg.get<uint64_t>("seed"), uint64_t(io::crc32_update(0, t.name.data(), t.name.size()))};
    std::mt19937_64 rng(seq);
    std::normal_distribution<float> normal(0.0f, float(stddev));
    const int64_t rows = io::dataset_rows(t);
    const uint64_t rb = io::row_bytes(t), per_row = rb / io::dtype_size(t.dtype);
    const int64_t step = std::max<int64_t>(1, int64_t(chunk / std::max<uint64_t>(rb, 1)));
    for (int64_t b = 0; b < rows; b += step) {
      const int64_t n = std::min(step, rows - b);
      values.resize(uint64_t(n) * per_row);
      for (auto& v : values) v = params[i].init == model::Init::Normal ? normal(rng) : params[i].init == model::Init::Ones ? 1.0f : 0.0f;
      bytes.resize(values.size() * io::dtype_size(t.dtype));
      io::from_f32(t.dtype, values.data(), bytes.data(), values.size());
      sink->write_rows(t.name, b, n, bytes.data());
    }
  }
  sink->commit();
  log::info("wrote %s: %zu tensors, %.3f M parameters (%s)", out.c_str(), tensors.size(), params_total / 1e6,
            io::dtype_name(dtype));
  return kExitOk;
}

int main(int argc, char** argv) { return run_main("ovr_init", argc, argv, init_main); }
