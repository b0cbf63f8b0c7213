#include "io/model_copy.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "common/error.h"
#include "io/hdf5_checkpoint.h"

namespace ovr::io {

namespace {

int64_t rows_per_chunk(const TensorInfo& t, uint64_t chunk_bytes) {
  const uint64_t rb = std::max<uint64_t>(row_bytes(t), 1);
  return std::max<int64_t>(1, int64_t(chunk_bytes / rb));
}

// Calls fn(begin, count) over t's rows in chunks.
template <class Fn>
void for_each_chunk(const TensorInfo& t, uint64_t chunk_bytes, Fn fn) {
  const int64_t rows = dataset_rows(t), step = rows_per_chunk(t, chunk_bytes);
  if (rows == 0) fn(0, 0);
  for (int64_t b = 0; b < rows; b += step) fn(b, std::min(step, rows - b));
}

// acc[e] += w * x[e] for x of a floating dtype, converted element by element (no second buffer:
// peak memory per chunk is the input bytes plus the fp32 accumulator).
void accumulate(DType t, const void* x, float w, float* acc, size_t n) {
  switch (t) {
    case DType::F32: {
      auto* v = static_cast<const float*>(x);
      for (size_t e = 0; e < n; ++e) acc[e] += w * v[e];
      return;
    }
    case DType::BF16: {
      auto* v = static_cast<const uint16_t*>(x);
      for (size_t e = 0; e < n; ++e) acc[e] += w * bf16_to_f32(v[e]);
      return;
    }
    case DType::F16: {
      auto* v = static_cast<const uint16_t*>(x);
      for (size_t e = 0; e < n; ++e) acc[e] += w * f16_to_f32(v[e]);
      return;
    }
    default: throw Error(std::string("accumulate: unsupported dtype ") + dtype_name(t));
  }
}

}  // namespace

std::vector<int> assign_tensors(const std::vector<TensorInfo>& tensors, int nranks) {
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return tensors[a].nbytes() > tensors[b].nbytes(); });
  std::vector<uint64_t> load(size_t(nranks), 0);
  std::vector<int> owner(tensors.size(), 0);
  for (size_t i : order) {
    const int r = int(std::min_element(load.begin(), load.end()) - load.begin());
    owner[i] = r;
    load[size_t(r)] += tensors[i].nbytes() + 1;  // +1: spread empty tensors too
  }
  return owner;
}

StreamStats copy_tensors(ModelSource& src, ModelSink& sink, MPI_Comm comm, uint64_t chunk_bytes) {
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  const auto& tensors = src.tensors();
  const auto owner = assign_tensors(tensors, size);
  StreamStats stats;
  std::vector<char> buf;
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (owner[i] != rank) continue;
    const TensorInfo& t = tensors[i];
    for_each_chunk(t, chunk_bytes, [&](int64_t b, int64_t n) {
      const uint64_t bytes = uint64_t(n) * row_bytes(t);
      buf.resize(std::max<uint64_t>(bytes, 1));
      src.read_rows(t.name, b, n, buf.data());
      sink.write_rows(t.name, b, n, buf.data());
      stats.bytes_read += bytes, stats.bytes_written += bytes;
    });
    ++stats.tensors;
  }
  sink.commit();
  return stats;
}

void check_same_tensors(const std::vector<ModelSource*>& inputs) {
  if (inputs.empty()) throw Error("no inputs");
  const auto& ref = inputs[0]->tensors();
  std::map<std::string, const TensorInfo*> by_name;
  for (const auto& t : ref) by_name[t.name] = &t;
  for (size_t k = 1; k < inputs.size(); ++k) {
    const auto& other = inputs[k]->tensors();
    const std::string pair = inputs[k]->origin() + " vs " + inputs[0]->origin();
    std::map<std::string, const TensorInfo*> seen;
    for (const auto& t : other) {
      auto it = by_name.find(t.name);
      if (it == by_name.end()) throw Error(pair + ": tensor '" + t.name + "' is only in " + inputs[k]->origin());
      const TensorInfo& r = *it->second;
      if (t.dtype != r.dtype)
        throw Error(pair + ": tensor '" + t.name + "' has dtype " + dtype_name(t.dtype) + " vs " + dtype_name(r.dtype));
      if (t.shape != r.shape)
        throw Error(pair + ": tensor '" + t.name + "' has shape " + shape_string(t.shape) + " vs " + shape_string(r.shape));
      seen[t.name] = &t;
    }
    for (const auto& t : ref)
      if (!seen.count(t.name)) throw Error(pair + ": tensor '" + t.name + "' is missing from " + inputs[k]->origin());
  }
}

StreamStats average_tensors(const std::vector<ModelSource*>& inputs, const std::vector<double>& weights,
                            ModelSink& sink, MPI_Comm comm, uint64_t chunk_bytes) {
  if (weights.size() != inputs.size()) throw Error("average: one weight per input is needed");
  const double total = std::accumulate(weights.begin(), weights.end(), 0.0);
  if (!(total > 0)) throw Error("average: the weights must sum to a positive number");
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  const auto& tensors = inputs[0]->tensors();
  const auto owner = assign_tensors(tensors, size);
  StreamStats stats;
  std::vector<char> in, first;  // `in` also carries the result to the sink
  std::vector<float> acc32;
  std::vector<double> acc64;
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (owner[i] != rank) continue;
    const TensorInfo& t = tensors[i];
    const uint64_t rb = row_bytes(t);
    for_each_chunk(t, chunk_bytes, [&](int64_t b, int64_t n) {
      const uint64_t bytes = uint64_t(n) * rb, count = bytes / dtype_size(t.dtype);
      in.resize(std::max<uint64_t>(bytes, 1));
      if (!dtype_is_float(t.dtype)) {  // integer/bool tensors: identical in all inputs, copied
        first.resize(in.size());
        inputs[0]->read_rows(t.name, b, n, first.data());
        for (size_t k = 1; k < inputs.size(); ++k) {
          inputs[k]->read_rows(t.name, b, n, in.data());
          if (std::memcmp(in.data(), first.data(), bytes) != 0)
            throw Error("average: integer tensor '" + t.name + "' differs between " + inputs[0]->origin() + " and " +
                        inputs[k]->origin() + "; it cannot be averaged");
        }
      } else if (t.dtype == DType::F64) {
        acc64.assign(count, 0.0);
        for (size_t k = 0; k < inputs.size(); ++k) {
          inputs[k]->read_rows(t.name, b, n, in.data());
          const double w = weights[k] / total, *x = reinterpret_cast<const double*>(in.data());
          for (uint64_t e = 0; e < count; ++e) acc64[e] += w * x[e];
        }
        std::memcpy(in.data(), acc64.data(), bytes);
      } else {
        acc32.assign(count, 0.0f);
        for (size_t k = 0; k < inputs.size(); ++k) {
          inputs[k]->read_rows(t.name, b, n, in.data());
          accumulate(t.dtype, in.data(), float(weights[k] / total), acc32.data(), count);
        }
        from_f32(t.dtype, acc32.data(), in.data(), count);
      }
      sink.write_rows(t.name, b, n, in.data());
      stats.bytes_read += bytes * inputs.size(), stats.bytes_written += bytes;
    });
    ++stats.tensors;
  }
  sink.commit();
  return stats;
}

}  // namespace ovr::io
