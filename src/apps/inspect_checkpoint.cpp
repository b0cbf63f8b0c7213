// ovr_inspect checkpoint: tensors, dtypes, shapes, attributes and integrity of a checkpoint.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "apps/inspect_commands.h"
#include "common/config.h"
#include "common/error.h"
#include "common/mpi_runtime.h"
#include "io/hdf5_checkpoint.h"
#include "io/tensor_store.h"

namespace ovr::apps {

namespace {

// Reads a dataset's rows from first to last in chunks; the reader checks the CRC at the end.
uint64_t verify_dataset(io::CheckpointReader& r, const std::string& path, uint64_t chunk_bytes) {
  const io::TensorInfo info = r.info(path);
  const int64_t rows = io::dataset_rows(info);
  const uint64_t rb = std::max<uint64_t>(io::row_bytes(info), 1);
  const int64_t step = std::max<int64_t>(1, int64_t(chunk_bytes / rb));
  std::vector<char> buf;
  char none = 0;
  if (rows == 0) r.read_rows(path, 0, 0, &none);
  for (int64_t b = 0; b < rows; b += step) {
    const int64_t n = std::min(step, rows - b);
    buf.resize(uint64_t(n) * rb);
    r.read_rows(path, b, n, buf.data());
  }
  return info.nbytes();
}

nlohmann::json tensor_json(const io::TensorInfo& t) {
  return {{"name", t.name}, {"dtype", io::dtype_name(t.dtype)}, {"shape", t.shape}, {"bytes", t.nbytes()}};
}

}  // namespace

int inspect_checkpoint(int argc, char** argv) {
  Config cfg("ovr_inspect checkpoint", "ovr_inspect checkpoint PATH [--json] [--verify true|false]",
             "Lists the tensors (name, dtype, shape, bytes) and attributes of a checkpoint: an ovr HDF5 file or\n"
             "checkpoint directory (through `latest`), a .safetensors file, or a Hugging Face directory. For HDF5,\n"
             "--verify reads every dataset and checks its CRC-32; a corrupt file ends with exit status 1.");
  cfg.options().add_options()
      ("path", po::value<std::string>(), "the checkpoint (positional)")
      ("json", po::bool_switch()->default_value(false), "print one JSON document instead of text")
      ("verify", po::value<bool>()->default_value(true), "read every dataset and check its checksum (HDF5)")
      ("chunk-size", po::value<std::string>()->default_value("64MiB"), "bytes read at a time while verifying");
  cfg.positional("path", 1);
  if (!cfg.parse(argc, argv)) return kExitOk;
  if (!cfg.has("path")) throw ConfigError("no checkpoint path given (see --help)");
  const std::string path = cfg.get<std::string>("path");
  const bool as_json = cfg.get<bool>("json");
  const uint64_t chunk = parse_byte_size(cfg.get<std::string>("chunk-size"), "--chunk-size");

  nlohmann::json doc;
  const io::StoreFormat format = io::detect_input_format(path);
  doc["format"] = io::store_format_name(format);
  if (format == io::StoreFormat::Hdf5) {
    io::CheckpointReader r(path);
    const auto& a = r.attrs();
    doc["path"] = r.path();
    doc["attributes"] = {{"step", a.step}, {"role", a.role}, {"code_version", a.code_version},
                         {"model_config", nlohmann::json::parse(a.model_config, nullptr, false)},
                         {"run_config", nlohmann::json::parse(a.run_config, nullptr, false)}};
    for (const auto& [k, v] : a.extra) doc["attributes"][k] = v;
    uint64_t checked = 0;
    size_t datasets = 0;
    for (const char* group : {"/model", "/optim", "/state"}) {
      nlohmann::json list = nlohmann::json::array();
      for (const auto& t : r.list(group)) {
        list.push_back(tensor_json(t));
        if (cfg.get<bool>("verify")) checked += verify_dataset(r, std::string(group) + "/" + t.name, chunk);
        ++datasets;
      }
      if (!list.empty()) doc[group + 1] = list;
    }
    doc["integrity"] = cfg.get<bool>("verify")
                           ? "ok: " + std::to_string(datasets) + " datasets, " + std::to_string(checked) + " bytes, CRC-32 verified"
                           : std::string("not verified");
  } else {
    auto src = io::open_model_source(path);
    doc["path"] = src->origin();
    doc["attributes"] = {{"metadata", src->metadata()},
                         {"model_config", nlohmann::json::parse(src->model_config(), nullptr, false)}};
    nlohmann::json list = nlohmann::json::array();
    for (const auto& t : src->tensors()) list.push_back(tensor_json(t));
    doc["model"] = list;
    doc["integrity"] = "header validated (safetensors has no checksums)";
  }
  if (world_rank() != 0) return kExitOk;
  if (as_json) {
    std::printf("%s\n", doc.dump(2).c_str());
    return kExitOk;
  }
  std::printf("%s  [%s]\n", doc["path"].get<std::string>().c_str(), doc["format"].get<std::string>().c_str());
  for (const auto& [k, v] : doc["attributes"].items()) {
    std::string text = v.is_string() ? v.get<std::string>() : v.dump();
    if (text.size() > 200) text = text.substr(0, 197) + "...";
    std::printf("  %-18s %s\n", k.c_str(), text.c_str());
  }
  for (const char* group : {"model", "optim", "state"}) {
    if (!doc.contains(group)) continue;
    uint64_t total = 0;
    for (const auto& t : doc[group]) total += t["bytes"].get<uint64_t>();
    std::printf("/%s: %zu tensors, %.3f MB\n", group, doc[group].size(), total / 1e6);
    for (const auto& t : doc[group])
      std::printf("  %-60s %-5s %-20s\n", t["name"].get<std::string>().c_str(), t["dtype"].get<std::string>().c_str(),
                  t["shape"].dump().c_str());
  }
  std::printf("integrity: %s\n", doc["integrity"].get<std::string>().c_str());
  return kExitOk;
}

}  // namespace ovr::apps
