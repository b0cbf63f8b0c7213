// ovr_convert: Hugging Face model directory / safetensors <-> ovr HDF5 checkpoint.
#include "common/config.h"
#include "common/error.h"
#include "common/log.h"
#include "common/mpi_runtime.h"
#include "io/model_copy.h"
#include "io/tensor_store.h"

using namespace ovr;

static int convert_main(int argc, char** argv) {
  Config cfg("ovr_convert", "ovr_convert IN OUT [options]",
             "Converts a model between a Hugging Face directory (config.json + safetensors, sharded or not),\n"
             "a single .safetensors file and an ovr HDF5 checkpoint (.h5). Every tensor keeps its name, dtype,\n"
             "shape and bytes, so HF -> HDF5 -> HF is byte-identical. Under mpirun the ranks split the tensors.");
  cfg.options().add_options()
      ("inputs", po::value<std::vector<std::string>>()->multitoken(), "IN and OUT (positional)")
      ("format", po::value<std::string>()->default_value("auto"), "output format: auto (from OUT: .h5 -> hdf5, .safetensors -> one file, else hf), hdf5, safetensors, hf")
      ("max-shard-size", po::value<std::string>()->default_value("5GB"), "hf output: largest safetensors shard (e.g. 5GB, 500MB, 2GiB)")
      ("chunk-size", po::value<std::string>()->default_value("256MiB"), "bytes moved per read/write; bounds memory use")
      ("step", po::value<int64_t>()->default_value(0), "hdf5 output: the step recorded in the checkpoint")
      ("role", po::value<std::string>()->default_value("policy"), "hdf5 output: the role recorded in the checkpoint (policy, critic, average)")
      ("update-latest", po::bool_switch()->default_value(false), "hdf5 output: also point <dir>/latest at OUT")
      ("overwrite", po::bool_switch()->default_value(false), "replace an existing output directory");
  cfg.positional("inputs", 2);
  if (!cfg.parse(argc, argv)) return kExitOk;
  if (!cfg.has("inputs") || cfg.get<std::vector<std::string>>("inputs").size() != 2)
    throw ConfigError("expected two arguments, IN and OUT (see --help)");
  const auto paths = cfg.get<std::vector<std::string>>("inputs");
  const std::string fmt = cfg.get<std::string>("format");
  const io::StoreFormat out_format = fmt == "auto" ? io::detect_output_format(paths[1]) : io::parse_store_format(fmt);
  io::SinkOptions opt;
  opt.max_shard_size = parse_byte_size(cfg.get<std::string>("max-shard-size"), "--max-shard-size");
  const uint64_t chunk = parse_byte_size(cfg.get<std::string>("chunk-size"), "--chunk-size");
  opt.update_latest = cfg.get<bool>("update-latest");
  opt.overwrite = cfg.get<bool>("overwrite");
  opt.attrs.step = cfg.get<int64_t>("step");
  opt.attrs.role = cfg.get<std::string>("role");
  if (opt.attrs.step < 0) throw ConfigError("--step: must be >= 0");
  if (opt.attrs.role != "policy" && opt.attrs.role != "critic" && opt.attrs.role != "average")
    throw ConfigError("--role: expected policy, critic or average, got '" + opt.attrs.role + "'");
  opt.attrs.run_config = cfg.to_json().dump();

  auto src = io::open_model_source(paths[0]);
  opt.model_config = src->model_config();
  opt.metadata = src->metadata();
  if (opt.model_config.empty() && out_format == io::StoreFormat::HfDir)
    log::warn("%s has no config.json; the output directory will have none either", paths[0].c_str());
  log::info("converting %s (%zu tensors) -> %s [%s] on %d rank(s)", src->origin().c_str(), src->tensors().size(),
            paths[1].c_str(), io::store_format_name(out_format), world_size());
  auto sink = io::create_model_sink(paths[1], out_format, src->tensors(), opt, MPI_COMM_WORLD);
  const double t0 = log::elapsed_seconds();
  const auto stats = io::copy_tensors(*src, *sink, MPI_COMM_WORLD, chunk);
  const double dt = log::elapsed_seconds() - t0;
  log::info("wrote %s: %d tensors, %.1f MB on rank 0 in %.2f s (%.0f MB/s)", paths[1].c_str(), stats.tensors,
            stats.bytes_written / 1e6, dt, stats.bytes_written / 1e6 / std::max(dt, 1e-9));
  return kExitOk;
}

int main(int argc, char** argv) { return run_main("ovr_convert", argc, argv, convert_main); }
