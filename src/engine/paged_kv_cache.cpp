#include "engine/paged_kv_cache.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "common/error.h"

namespace ovr::engine {

PagedKVCache::PagedKVCache(int64_t layers, int64_t kv_heads, int64_t head_dim, int64_t block_size, int64_t max_tokens,
                           at::ScalarType dtype, at::Device device)
    : layers_(layers), kv_heads_(kv_heads), head_dim_(head_dim), block_size_(block_size),
      max_blocks_(blocks_for(max_tokens, block_size)), dtype_(dtype), device_(device) {
  if (block_size <= 0 || max_tokens <= 0) throw Error("kv cache: block size and token budget must be positive");
  k_pool_.resize(size_t(layers));
  v_pool_.resize(size_t(layers));
}

int64_t PagedKVCache::free_blocks() const { return max_blocks_ - blocks_in_use(); }

int64_t PagedKVCache::allocated_bytes() const {
  return k_pool_.empty() || !k_pool_[0].defined() ? 0 : 2 * layers_ * k_pool_[0].nbytes();
}

void PagedKVCache::grow() {
  const int64_t old = int64_t(refcount_.size());
  const int64_t cap = std::min(max_blocks_, std::max<int64_t>(16, old * 2));
  if (cap <= old) throw Error("kv cache: token budget exhausted (" + std::to_string(max_blocks_ * block_size_) + " tokens)");
  for (int64_t l = 0; l < layers_; ++l)
    for (auto* pool : {&k_pool_[size_t(l)], &v_pool_[size_t(l)]}) {
      // Zeros, not garbage: masked positions of a gathered batch must never hold NaN (0 * NaN = NaN).
      at::Tensor bigger = at::zeros({cap, kv_heads_, block_size_, head_dim_}, at::TensorOptions().dtype(dtype_).device(device_));
      if (pool->defined()) bigger.narrow(0, 0, old).copy_(*pool);
      *pool = bigger;
    }
  refcount_.resize(size_t(cap), 0);
  for (int64_t b = cap - 1; b >= old; --b) free_.push_back(int32_t(b));
}

at::Tensor PagedKVCache::index(const std::vector<int64_t>& v) const { return at::tensor(v).to(device_); }

int32_t PagedKVCache::allocate_block() {
  if (free_.empty()) grow();
  const int32_t b = free_.back();
  free_.pop_back();
  refcount_[size_t(b)] = 1;
  return b;
}

int64_t PagedKVCache::blocks_needed(const CachedSequence& seq, int64_t n) const {
  int64_t need = std::max<int64_t>(0, blocks_for(seq.length + n, block_size_) - int64_t(seq.blocks.size()));
  if (seq.length % block_size_ != 0 && !seq.blocks.empty() && refcount_[size_t(seq.blocks.back())] > 1) ++need;
  return need;
}

void PagedKVCache::prepare_append(CachedSequence& seq, int64_t n) {
  // A shared, partly filled last block is copied before this sequence writes into it.
  if (seq.length % block_size_ != 0 && !seq.blocks.empty() && refcount_[size_t(seq.blocks.back())] > 1) {
    const int32_t old = seq.blocks.back(), mine = allocate_block();
    for (int64_t l = 0; l < layers_; ++l) {
      k_pool_[size_t(l)][mine].copy_(k_pool_[size_t(l)][old]);
      v_pool_[size_t(l)][mine].copy_(v_pool_[size_t(l)][old]);
    }
    --refcount_[size_t(old)];
    seq.blocks.back() = mine;
  }
  while (int64_t(seq.blocks.size()) * block_size_ < seq.length + n) seq.blocks.push_back(allocate_block());
}

void PagedKVCache::write(const CachedSequence& seq, int64_t layer, int64_t start, const at::Tensor& k, const at::Tensor& v) {
  const int64_t n = k.size(1);
  std::vector<int64_t> blk(static_cast<size_t>(n)), off(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    blk[size_t(i)] = seq.blocks[size_t((start + i) / block_size_)];
    off[size_t(i)] = (start + i) % block_size_;
  }
  const at::Tensor bi = index(blk), oi = index(off);
  // pool[blk[i], :, off[i], :] = k[:, i, :]
  k_pool_[size_t(layer)].index_put_({bi, at::indexing::Slice(), oi}, k.transpose(0, 1).to(dtype_));
  v_pool_[size_t(layer)].index_put_({bi, at::indexing::Slice(), oi}, v.transpose(0, 1).to(dtype_));
}

void PagedKVCache::write_one(const std::vector<CachedSequence*>& seqs, int64_t layer, const at::Tensor& k,
                             const at::Tensor& v) {
  std::vector<int64_t> blk(seqs.size()), off(seqs.size());
  for (size_t b = 0; b < seqs.size(); ++b) {
    blk[b] = seqs[b]->blocks[size_t(seqs[b]->length / block_size_)];
    off[b] = seqs[b]->length % block_size_;
  }
  const at::Tensor bi = index(blk), oi = index(off);
  k_pool_[size_t(layer)].index_put_({bi, at::indexing::Slice(), oi}, k.to(dtype_));
  v_pool_[size_t(layer)].index_put_({bi, at::indexing::Slice(), oi}, v.to(dtype_));
}

void PagedKVCache::gather(const std::vector<CachedSequence*>& seqs, int64_t layer, int64_t max_len, at::Tensor* k,
                          at::Tensor* v) {
  const int64_t nb = blocks_for(max_len, block_size_), b = int64_t(seqs.size());
  std::vector<int64_t> ids(static_cast<size_t>(b * nb), 0);  // block 0 stands in for blocks a sequence lacks (masked)
  for (int64_t s = 0; s < b; ++s)
    for (int64_t j = 0; j < nb && j < int64_t(seqs[size_t(s)]->blocks.size()); ++j)
      ids[size_t(s * nb + j)] = seqs[size_t(s)]->blocks[size_t(j)];
  const at::Tensor idx = index(ids);
  auto dense = [&](const at::Tensor& pool) {
    return pool.index_select(0, idx)
        .view({b, nb, kv_heads_, block_size_, head_dim_})
        .permute({0, 2, 1, 3, 4})
        .reshape({b, kv_heads_, nb * block_size_, head_dim_})
        .narrow(2, 0, max_len);
  };
  *k = dense(k_pool_[size_t(layer)]);
  *v = dense(v_pool_[size_t(layer)]);
}

CachedSequence PagedKVCache::fork(const CachedSequence& seq) {
  for (int32_t b : seq.blocks) ++refcount_[size_t(b)];
  return seq;
}

void PagedKVCache::release(CachedSequence& seq) {
  for (int32_t b : seq.blocks)
    if (--refcount_[size_t(b)] == 0) free_.push_back(b);
  seq.blocks.clear();
  seq.length = 0;
}

}  // namespace ovr::engine
