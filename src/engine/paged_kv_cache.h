// A paged key/value cache: fixed-size blocks of tokens in one pool per layer, a block table per
// sequence, and reference counts so that the n samples of a prompt share the prompt's blocks
// (copy-on-write of a shared, partly filled last block). Memory follows the tokens held; the
// pool grows by doubling up to a token budget.
#pragma once
#include <ATen/core/Tensor.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace ovr::engine {

struct CachedSequence {
  std::vector<int32_t> blocks;
  int64_t length = 0;  // tokens whose keys/values are stored
};

class PagedKVCache {
 public:
  PagedKVCache(int64_t layers, int64_t kv_heads, int64_t head_dim, int64_t block_size, int64_t max_tokens,
               at::ScalarType dtype, at::Device device = at::kCPU);

  int64_t block_size() const { return block_size_; }
  int64_t max_blocks() const { return max_blocks_; }
  int64_t free_blocks() const;        // of max_blocks, counting blocks not yet allocated
  int64_t blocks_in_use() const { return int64_t(refcount_.size()) - int64_t(free_.size()); }
  int64_t allocated_bytes() const;    // memory actually held by the pool
  static int64_t blocks_for(int64_t tokens, int64_t block_size) { return (tokens + block_size - 1) / block_size; }
  // The fewest blocks a request can run in (the engine preempts instead of reserving worst cases):
  // its prompt and one new block per sample when they are forked, and one sample alone at its
  // longest (the others preempted meanwhile).
  static int64_t min_request_blocks(int64_t prompt_len, int64_t max_new, int64_t n, int64_t block_size) {
    return std::max(blocks_for(prompt_len, block_size) + n, blocks_for(prompt_len + max_new, block_size));
  }
  // New blocks prepare_append(seq, n) may take (a private copy of a shared last block included).
  int64_t blocks_needed(const CachedSequence& seq, int64_t n) const;

  // Makes room for tokens [seq.length, seq.length + n): new blocks as needed, and a private copy
  // of a shared last block before it is written. Throws if the budget is exhausted (callers
  // make room first: GenerationEngine preempts).
  void prepare_append(CachedSequence& seq, int64_t n);
  // Stores keys/values [kv_heads, n, head_dim] of tokens [start, start + n) of one layer.
  void write(const CachedSequence& seq, int64_t layer, int64_t start, const at::Tensor& k, const at::Tensor& v);
  // Stores one token per sequence: k, v [B, kv_heads, head_dim] at position seqs[b]->length.
  void write_one(const std::vector<CachedSequence*>& seqs, int64_t layer, const at::Tensor& k, const at::Tensor& v);
  // The first `max_len` cached positions of each sequence, [B, kv_heads, max_len, head_dim]
  // (positions past a sequence's length hold garbage and must be masked).
  void gather(const std::vector<CachedSequence*>& seqs, int64_t layer, int64_t max_len, at::Tensor* k, at::Tensor* v);

  CachedSequence fork(const CachedSequence& seq);  // shares every block
  void release(CachedSequence& seq);               // drops the sequence's references

 private:
  int32_t allocate_block();
  at::Tensor index(const std::vector<int64_t>& v) const;  // an index tensor on the pool's device
  void grow();

  int64_t layers_, kv_heads_, head_dim_, block_size_, max_blocks_;
  at::ScalarType dtype_;
  at::Device device_;
  std::vector<at::Tensor> k_pool_, v_pool_;  // per layer [capacity, kv_heads, block_size, head_dim]
  std::vector<int32_t> refcount_;            // per allocated block
  std::vector<int32_t> free_;
};

}  // namespace ovr::engine
