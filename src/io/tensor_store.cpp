#include "io/tensor_store.h"

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/root_then_share.h"
#include "common/mpi_runtime.h"
#include "io/fs.h"
#include "io/hf_model_dir.h"
#include "io/safetensors.h"

namespace ovr::io {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

const TensorInfo& find_info(const std::vector<TensorInfo>& tensors, std::map<std::string, size_t>& index,
                            const std::string& name, const std::string& origin) {
  if (index.empty())
    for (size_t i = 0; i < tensors.size(); ++i) index[tensors[i].name] = i;
  auto it = index.find(name);
  if (it == index.end()) throw Error(origin + ": no tensor '" + name + "'");
  return tensors[it->second];
}

// ---- HDF5 checkpoint ------------------------------------------------------------------------

class Hdf5Source : public ModelSource {
 public:
  explicit Hdf5Source(const std::string& path) : reader_(path, MPI_COMM_SELF), tensors_(reader_.list("/model")) {
    // A rollout file is an HDF5 file too: taken for a checkpoint it would be a model of no tensors.
    if (tensors_.empty())
      throw Error(reader_.path() + ": holds no model tensors (role '" + reader_.attrs().role + "': not a model checkpoint)");
  }
  const std::string& origin() const override { return reader_.path(); }
  const std::vector<TensorInfo>& tensors() const override { return tensors_; }
  void read_rows(const std::string& name, int64_t b, int64_t n, void* dst) override {
    reader_.read_rows("/model/" + name, b, n, dst);
  }
  std::string model_config() const override { return reader_.attrs().model_config; }
  bool stored_crc(const std::string& name, uint32_t* crc) const override {
    *crc = reader_.stored_crc("/model/" + name);
    return true;
  }
  std::map<std::string, std::string> metadata() const override {
    auto it = reader_.attrs().extra.find("safetensors_metadata");
    return it == reader_.attrs().extra.end() ? std::map<std::string, std::string>{}
                                             : metadata_from_json(it->second, reader_.path());
  }

 private:
  CheckpointReader reader_;
  std::vector<TensorInfo> tensors_;
};

class Hdf5Sink : public ModelSink {
 public:
  Hdf5Sink(const std::string& path, const std::vector<TensorInfo>& tensors, const SinkOptions& o, MPI_Comm comm)
      : writer_(path, comm, attrs_of(o)), update_latest_(o.update_latest) {
    for (const auto& t : tensors) writer_.define("/model/" + t.name, t.dtype, t.shape);
  }
  void write_rows(const std::string& name, int64_t b, int64_t n, const void* src) override {
    writer_.write_rows("/model/" + name, b, n, src);
  }
  void commit() override { writer_.commit(update_latest_); }

 private:
  static CheckpointAttrs attrs_of(const SinkOptions& o) {
    CheckpointAttrs a = o.attrs;
    if (!o.model_config.empty()) a.model_config = o.model_config;
    if (!o.metadata.empty()) a.extra["safetensors_metadata"] = metadata_to_json(o.metadata);
    return a;
  }
  CheckpointWriter writer_;
  bool update_latest_;
};

// ---- one safetensors file --------------------------------------------------------------------

class SafetensorsSource : public ModelSource {
 public:
  explicit SafetensorsSource(const std::string& path) : file_(path) {
    for (const auto& e : file_.header().entries) tensors_.push_back(e.info);
  }
  const std::string& origin() const override { return file_.path(); }
  const std::vector<TensorInfo>& tensors() const override { return tensors_; }
  void read_rows(const std::string& name, int64_t b, int64_t n, void* dst) override {
    const auto& info = find_info(tensors_, index_, name, file_.path());
    const uint64_t rb = row_bytes(info);
    if (b < 0 || n < 0 || b + n > dataset_rows(info)) throw Error(file_.path() + ": " + name + ": rows out of range");
    file_.read(name, dst, uint64_t(b) * rb, uint64_t(n) * rb);
  }
  std::string model_config() const override { return ""; }
  std::map<std::string, std::string> metadata() const override { return file_.header().metadata; }

 private:
  SafetensorsFile file_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> index_;
};

// Rank 0 creates "<path>.tmp" with the header; every rank then writes its tensors into it;
// commit fsyncs and renames.
class SafetensorsFileSink : public ModelSink {
 public:
  SafetensorsFileSink(const std::string& path, const std::vector<TensorInfo>& tensors, const SinkOptions& o, MPI_Comm comm)
      : path_(path), tmp_(path + ".tmp"), comm_(comm) {
    MPI_Comm_rank(comm, &rank_);
    if (rank_ == 0) {
      make_dirs(parent_dir(path));
      SafetensorsWriter(tmp_, tensors, o.metadata, true).close();
    }
    OVR_MPI_CHECK(MPI_Barrier(comm));
    writer_ = std::make_unique<SafetensorsWriter>(tmp_, tensors, o.metadata, false);
    for (const auto& t : tensors) infos_[t.name] = t;
  }
  ~SafetensorsFileSink() override {
    writer_.reset();
    if (!committed_ && rank_ == 0) ::unlink(tmp_.c_str());
  }
  // A failed write (a full disk) is recorded, not thrown, so that every rank reaches commit(),
  // which makes them agree before anything is renamed.
  void write_rows(const std::string& name, int64_t b, int64_t n, const void* src) override {
    const auto& info = infos_.at(name);
    if (!error_.empty()) return;
    try {
      writer_->write(name, src, uint64_t(b) * row_bytes(info), uint64_t(n) * row_bytes(info));
    } catch (const Error& e) {
      error_ = e.what();
    }
  }
  void commit() override {
    try {
      if (error_.empty()) writer_->close();
    } catch (const Error& e) {
      error_ = e.what();
    }
    const std::string failed = first_error(comm_, error_);
    if (!failed.empty()) throw Error(failed + "; nothing committed");  // rank 0 removes the .tmp
    on_root_then_share(comm_, [&] { rename_durable(tmp_, path_); });
    committed_ = true;
  }

 private:
  std::string path_, tmp_;
  MPI_Comm comm_;
  int rank_ = 0;
  std::unique_ptr<SafetensorsWriter> writer_;
  std::map<std::string, TensorInfo> infos_;
  bool committed_ = false;
  std::string error_;  // this rank's first failed write
};

}  // namespace

const char* store_format_name(StoreFormat f) {
  switch (f) {
    case StoreFormat::Hdf5: return "hdf5";
    case StoreFormat::Safetensors: return "safetensors";
    case StoreFormat::HfDir: return "hf";
  }
  return "?";
}

StoreFormat parse_store_format(const std::string& name) {
  if (name == "hdf5" || name == "h5") return StoreFormat::Hdf5;
  if (name == "safetensors") return StoreFormat::Safetensors;
  if (name == "hf") return StoreFormat::HfDir;
  throw ConfigError("unknown format '" + name + "' (expected hdf5, safetensors or hf)");
}

StoreFormat detect_input_format(const std::string& path) {
  if (!path_exists(path)) throw Error(path + ": no such file or directory");
  if (is_directory(path))
    return path_exists(join_path(path, "latest")) ? StoreFormat::Hdf5 : StoreFormat::HfDir;
  if (ends_with(path, ".safetensors")) return StoreFormat::Safetensors;
  return StoreFormat::Hdf5;  // .h5, .hdf5 or anything else: HDF5 says clearly if it is not
}

StoreFormat detect_output_format(const std::string& path) {
  if (ends_with(path, ".h5") || ends_with(path, ".hdf5")) return StoreFormat::Hdf5;
  if (ends_with(path, ".safetensors")) return StoreFormat::Safetensors;
  return StoreFormat::HfDir;
}

std::unique_ptr<ModelSource> open_model_source(const std::string& path) {
  switch (detect_input_format(path)) {
    case StoreFormat::Hdf5: return std::make_unique<Hdf5Source>(path);
    case StoreFormat::Safetensors: return std::make_unique<SafetensorsSource>(path);
    case StoreFormat::HfDir: return open_hf_model_dir(path);
  }
  throw Error(path + ": unknown format");
}

std::unique_ptr<ModelSink> create_model_sink(const std::string& path, StoreFormat format,
                                             const std::vector<TensorInfo>& tensors, const SinkOptions& options,
                                             MPI_Comm comm) {
  switch (format) {
    case StoreFormat::Hdf5: return std::make_unique<Hdf5Sink>(path, tensors, options, comm);
    case StoreFormat::Safetensors: return std::make_unique<SafetensorsFileSink>(path, tensors, options, comm);
    case StoreFormat::HfDir: return create_hf_model_dir(path, tensors, options, comm);
  }
  throw Error(path + ": unknown format");
}

std::map<std::string, std::string> metadata_from_json(const std::string& text, const std::string& origin) {
  std::map<std::string, std::string> out;
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) throw Error(origin + ": safetensors metadata is not a JSON object");
  for (const auto& [k, v] : j.items()) {
    if (!v.is_string()) throw Error(origin + ": safetensors metadata value of '" + k + "' is not a string");
    out[k] = v.get<std::string>();
  }
  return out;
}

std::string metadata_to_json(const std::map<std::string, std::string>& metadata) {
  return nlohmann::json(metadata).dump();
}

}  // namespace ovr::io
