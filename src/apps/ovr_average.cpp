// ovr_average: the (weighted) mean of several checkpoints' model tensors, the paper's final model.
#include <nlohmann/json.hpp>
#include <cmath>
#include <sstream>

#include "common/config.h"
#include "common/error.h"
#include "common/log.h"
#include "common/mpi_runtime.h"
#include "io/model_copy.h"
#include "io/tensor_store.h"

using namespace ovr;

static std::vector<double> parse_weights(const std::string& text, size_t n_inputs) {
  std::vector<double> w;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');) {
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || !(v >= 0) || !std::isfinite(v))
      throw ConfigError("--weights: '" + item + "' is not a finite non-negative number");
    w.push_back(v);
  }
  if (w.size() != n_inputs)
    throw ConfigError("--weights: " + std::to_string(w.size()) + " weights for " + std::to_string(n_inputs) + " inputs");
  double total = 0;
  for (double x : w) total += x;
  if (!(total > 0)) throw ConfigError("--weights: the weights must not all be zero");
  // Normalised by their sum: a sum that overflows (1e308,1e308) would turn every weight into 0.
  if (!std::isfinite(total)) throw ConfigError("--weights: their sum overflows; scale them down");
  return w;
}

static int average_main(int argc, char** argv) {
  Config cfg("ovr_average", "ovr_average --output OUT IN1 IN2 ... [--weights w1,w2,...] [options]",
             "Writes the weighted mean of the model tensors of several checkpoints (sum_i w_i x_i / sum_i w_i;\n"
             "uniform by default), accumulated in fp32 and stored in the inputs' dtype. Inputs may be ovr HDF5\n"
             "checkpoints (files or checkpoint directories), safetensors files or Hugging Face directories; names,\n"
             "shapes and dtypes must agree. Optimizer state is NOT averaged (the output has none): resume\n"
             "training from one of the inputs, not from the average. Integer tensors must be equal in all inputs.\n"
             "Tensors are streamed in chunks, so memory stays small; under mpirun the ranks split the tensors.");
  cfg.options().add_options()
      ("output,o", po::value<std::string>()->required(), "output path: .h5 (HDF5 checkpoint), .safetensors (one file) or a directory (Hugging Face layout)")
      ("inputs", po::value<std::vector<std::string>>()->multitoken(), "input checkpoints (positional)")
      ("weights", po::value<std::string>(), "comma-separated non-negative weights, one per input (default: uniform)")
      ("format", po::value<std::string>()->default_value("auto"), "output format: auto (from --output), hdf5, safetensors, hf")
      ("max-shard-size", po::value<std::string>()->default_value("5GB"), "hf output: largest safetensors shard")
      ("chunk-size", po::value<std::string>()->default_value("64MiB"), "bytes of one tensor processed at a time; bounds memory use")
      ("step", po::value<int64_t>()->default_value(0), "hdf5 output: the step recorded in the checkpoint")
      ("overwrite", po::bool_switch()->default_value(false), "replace an existing output directory");
  cfg.positional("inputs", -1);
  if (!cfg.parse(argc, argv)) return kExitOk;
  if (!cfg.has("inputs")) throw ConfigError("no input checkpoints given (see --help)");
  const auto paths = cfg.get<std::vector<std::string>>("inputs");
  const auto weights = cfg.has("weights") ? parse_weights(cfg.get<std::string>("weights"), paths.size())
                                          : std::vector<double>(paths.size(), 1.0);
  const std::string out = cfg.get<std::string>("output");
  const std::string fmt = cfg.get<std::string>("format");
  const io::StoreFormat out_format = fmt == "auto" ? io::detect_output_format(out) : io::parse_store_format(fmt);
  const uint64_t chunk = parse_byte_size(cfg.get<std::string>("chunk-size"), "--chunk-size");
  if (paths.size() == 1) log::warn("only one input: the output is a copy of it");

  std::vector<std::unique_ptr<io::ModelSource>> owned;
  std::vector<io::ModelSource*> inputs;
  for (const auto& p : paths) {
    owned.push_back(io::open_model_source(p));
    inputs.push_back(owned.back().get());
  }
  io::check_same_tensors(inputs);
  for (size_t k = 1; k < inputs.size(); ++k)
    if (inputs[k]->model_config() != inputs[0]->model_config())
      log::warn("the model config of %s differs from that of %s; the output keeps the first", paths[k].c_str(), paths[0].c_str());

  io::SinkOptions opt;
  opt.model_config = inputs[0]->model_config();
  opt.metadata = inputs[0]->metadata();
  opt.max_shard_size = parse_byte_size(cfg.get<std::string>("max-shard-size"), "--max-shard-size");
  opt.overwrite = cfg.get<bool>("overwrite");
  opt.attrs.role = "average";
  opt.attrs.step = cfg.get<int64_t>("step");
  opt.attrs.run_config = cfg.to_json().dump();
  nlohmann::json sources = nlohmann::json::array();
  for (size_t k = 0; k < paths.size(); ++k) sources.push_back({{"path", inputs[k]->origin()}, {"weight", weights[k]}});
  opt.attrs.extra["averaged_from"] = sources.dump();

  log::info("averaging %zu checkpoints (%zu tensors) -> %s [%s] on %d rank(s)", paths.size(), inputs[0]->tensors().size(),
            out.c_str(), io::store_format_name(out_format), world_size());
  auto sink = io::create_model_sink(out, out_format, inputs[0]->tensors(), opt, MPI_COMM_WORLD);
  const double t0 = log::elapsed_seconds();
  const auto stats = io::average_tensors(inputs, weights, *sink, MPI_COMM_WORLD, chunk);
  const double dt = log::elapsed_seconds() - t0;
  log::info("wrote %s: rank 0 averaged %d tensors, read %.1f MB, wrote %.1f MB in %.2f s", out.c_str(), stats.tensors,
            stats.bytes_read / 1e6, stats.bytes_written / 1e6, dt);
  return kExitOk;
}

int main(int argc, char** argv) { return run_main("ovr_average", argc, argv, average_main); }
