#include "io/hf_model_dir.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <set>

#include "common/error.h"
#include "common/root_then_share.h"
#include "common/mpi_runtime.h"
#include "io/fs.h"
#include "io/safetensors.h"

namespace ovr::io {

namespace {

constexpr const char* kIndexName = "model.safetensors.index.json";
constexpr const char* kSingleName = "model.safetensors";

std::string shard_name(int i, int n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "model-%05d-of-%05d.safetensors", i + 1, n);
  return buf;
}

class HfDirSource : public ModelSource {
 public:
  explicit HfDirSource(const std::string& dir) : dir_(dir) {
    const std::string config = join_path(dir, "config.json");
    if (path_exists(config)) config_ = read_text_file(config);
    const std::string index_path = join_path(dir, kIndexName);
    std::vector<std::string> shard_files;
    std::map<std::string, std::string> weight_map;
    if (path_exists(index_path)) {
      SafetensorsIndex index = read_safetensors_index(index_path);
      weight_map = index.weight_map;
      std::set<std::string> files;
      for (const auto& [name, file] : weight_map) files.insert(file);
      shard_files.assign(files.begin(), files.end());
    } else if (path_exists(join_path(dir, kSingleName))) {
      shard_files = {kSingleName};
    } else {
      throw Error(dir + ": not a Hugging Face model directory (neither " + std::string(kIndexName) + " nor " +
                  kSingleName + " found)");
    }
    for (const auto& f : shard_files) {
      auto file = std::make_unique<SafetensorsFile>(join_path(dir, f));
      for (const auto& e : file->header().entries) {
        if (!weight_map.empty()) {
          auto it = weight_map.find(e.info.name);
          if (it == weight_map.end() || it->second != f)
            throw Error(index_path + ": tensor '" + e.info.name + "' is in " + f + " but the index does not map it there");
        }
        if (owner_.count(e.info.name)) throw Error(dir + ": tensor '" + e.info.name + "' appears in two shards");
        owner_[e.info.name] = files_.size();
        tensors_.push_back(e.info);
      }
      files_.push_back(std::move(file));
    }
    for (const auto& [name, file] : weight_map)
      if (!owner_.count(name)) throw Error(index_path + ": tensor '" + name + "' is mapped to " + file + " but not stored there");
  }
  const std::string& origin() const override { return dir_; }
  const std::vector<TensorInfo>& tensors() const override { return tensors_; }
  void read_rows(const std::string& name, int64_t b, int64_t n, void* dst) override {
    auto it = owner_.find(name);
    if (it == owner_.end()) throw Error(dir_ + ": no tensor '" + name + "'");
    const SafetensorsFile& f = *files_[it->second];
    const TensorInfo& info = f.find(name)->info;
    if (b < 0 || n < 0 || b + n > dataset_rows(info)) throw Error(dir_ + ": " + name + ": rows out of range");
    f.read(name, dst, uint64_t(b) * row_bytes(info), uint64_t(n) * row_bytes(info));
  }
  std::string model_config() const override { return config_; }
  std::map<std::string, std::string> metadata() const override {
    return files_.empty() ? std::map<std::string, std::string>{} : files_[0]->header().metadata;
  }

 private:
  std::string dir_, config_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> owner_;
  std::vector<TensorInfo> tensors_;
};

void remove_tree(const std::string& path) {
  if (!is_directory(path)) {
    ::unlink(path.c_str());
    return;
  }
  if (DIR* d = ::opendir(path.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") remove_tree(join_path(path, n));
    }
    ::closedir(d);
  }
  ::rmdir(path.c_str());
}

// Written under "<dir>.tmp"; commit renames it to <dir>, so a crash never leaves a directory
// that looks complete but is not.
class HfDirSink : public ModelSink {
 public:
  HfDirSink(const std::string& dir, const std::vector<TensorInfo>& tensors, const SinkOptions& o, MPI_Comm comm)
      : dir_(dir), tmp_(dir + ".tmp"), comm_(comm), options_(o), tensors_(tensors) {
    MPI_Comm_rank(comm, &rank_);
    if (path_exists(dir) && !o.overwrite)
      throw Error(dir + ": already exists (pass --overwrite to replace it)");
    shard_of_ = plan_shards(tensors, o.max_shard_size);
    const int nshards = shard_of_.empty() ? 1 : *std::max_element(shard_of_.begin(), shard_of_.end()) + 1;
    shards_.resize(size_t(nshards));
    for (size_t i = 0; i < tensors.size(); ++i) {
      shards_[size_t(shard_of_[i])].tensors.push_back(tensors[i]);
      where_[tensors[i].name] = size_t(shard_of_[i]);
    }
    for (int s = 0; s < nshards; ++s) shards_[size_t(s)].file = nshards == 1 ? kSingleName : shard_name(s, nshards);
    if (rank_ == 0) {
      remove_tree(tmp_);
      make_dirs(tmp_);
      for (const auto& sh : shards_) SafetensorsWriter(join_path(tmp_, sh.file), sh.tensors, o.metadata, true).close();
    }
    OVR_MPI_CHECK(MPI_Barrier(comm));
  }
  ~HfDirSink() override {
    for (auto& sh : shards_) sh.writer.reset();
    if (!committed_ && rank_ == 0) remove_tree(tmp_);
  }
  void write_rows(const std::string& name, int64_t b, int64_t n, const void* src) override {
    auto it = where_.find(name);
    if (it == where_.end()) throw Error(dir_ + ": no tensor '" + name + "' in the output plan");
    Shard& sh = shards_[it->second];
    if (!error_.empty()) return;  // recorded, not thrown: every rank must reach commit() (see there)
    try {
      if (!sh.writer) sh.writer = std::make_unique<SafetensorsWriter>(join_path(tmp_, sh.file), sh.tensors, options_.metadata, false);
      const TensorInfo& info = *std::find_if(sh.tensors.begin(), sh.tensors.end(), [&](const TensorInfo& t) { return t.name == name; });
      sh.writer->write(name, src, uint64_t(b) * row_bytes(info), uint64_t(n) * row_bytes(info));
    } catch (const Error& e) {
      error_ = e.what();
    }
  }
  void commit() override {
    try {
      for (auto& sh : shards_)
        if (sh.writer && error_.empty()) sh.writer->close();
    } catch (const Error& e) {
      error_ = e.what();
    }
    // Every rank agrees before anything is renamed; a failure leaves nothing but rank 0's cleanup.
    const std::string failed = first_error(comm_, error_);
    if (!failed.empty()) throw Error(failed + "; nothing committed");
    on_root_then_share(comm_, [&] {
      if (!options_.model_config.empty()) write_file_atomic(join_path(tmp_, "config.json"), options_.model_config);
      if (shards_.size() > 1) {
        SafetensorsIndex index;
        for (const auto& t : tensors_) index.total_size += t.nbytes();
        for (const auto& [name, s] : where_) index.weight_map[name] = shards_[s].file;
        write_safetensors_index(join_path(tmp_, kIndexName), index);
      }
      for (const auto& sh : shards_) fsync_file(join_path(tmp_, sh.file));
      if (path_exists(dir_)) {  // --overwrite: the old directory goes only once the new one is complete
        const std::string old = dir_ + ".old";
        remove_tree(old);
        rename_durable(dir_, old);
        rename_durable(tmp_, dir_);
        remove_tree(old);
      } else {
        rename_durable(tmp_, dir_);
      }
    });
    committed_ = true;
  }

 private:
  struct Shard {
    std::string file;
    std::vector<TensorInfo> tensors;
    std::unique_ptr<SafetensorsWriter> writer;
  };
  std::string dir_, tmp_;
  MPI_Comm comm_;
  int rank_ = 0;
  SinkOptions options_;
  std::vector<TensorInfo> tensors_;
  std::string error_;  // this rank's first failed write
  std::vector<int> shard_of_;
  std::vector<Shard> shards_;
  std::map<std::string, size_t> where_;
  bool committed_ = false;
};

}  // namespace

std::vector<int> plan_shards(const std::vector<TensorInfo>& tensors, uint64_t max_bytes) {
  std::vector<int> shard(tensors.size());
  int current = 0;
  uint64_t filled = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const uint64_t n = tensors[i].nbytes();
    if (filled > 0 && filled + n > max_bytes) ++current, filled = 0;
    shard[i] = current;
    filled += n;
  }
  return shard;
}

std::unique_ptr<ModelSource> open_hf_model_dir(const std::string& dir) { return std::make_unique<HfDirSource>(dir); }

std::unique_ptr<ModelSink> create_hf_model_dir(const std::string& dir, const std::vector<TensorInfo>& tensors,
                                               const SinkOptions& options, MPI_Comm comm) {
  return std::make_unique<HfDirSink>(dir, tensors, options, comm);
}

}  // namespace ovr::io
