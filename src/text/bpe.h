// Byte-pair merging: the merge table of a BPE vocabulary and the loop that applies it to one
// pre-token. Works on token ids, not strings: the tokenizer turns a pre-token's bytes into the
// ids of its single-byte tokens and this merges neighbours by rank, as Hugging Face's BPE model
// does (lowest rank first; among equal ranks, leftmost first).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ovr::text {

class BpeMerges {
 public:
  // Adds the merge (left, right) -> merged with the next rank (the order of the file). A pair
  // listed twice keeps its last rank and result, as Hugging Face's merge map (a hash map built
  // in file order) does.
  void add(int32_t left, int32_t right, int32_t merged);
  size_t size() const { return count_; }

  // Merges `ids` in place until no adjacent pair has a merge. Short words use merge_small, long
  // ones merge_heap; both give the same result (the tests check it).
  void merge(std::vector<int32_t>& ids) const;
  // O(n^2) but allocation-free and fastest for the few bytes of a typical pre-token.
  void merge_small(std::vector<int32_t>& ids) const;
  // O(n log n) with a priority queue over a linked list of symbols, for long pre-tokens (a line
  // of CJK text or a long run of letters can be thousands of bytes).
  void merge_heap(std::vector<int32_t>& ids) const;

  // Words up to this many symbols take merge_small.
  static constexpr size_t kSmallWord = 48;

 private:
  struct Slot {
    uint64_t key;  // (left << 32) | right; kEmpty when unused
    int32_t rank;
    int32_t merged;
  };
  static constexpr uint64_t kEmpty = ~uint64_t(0);
  static constexpr int32_t kNoMerge = INT32_MAX;

  // Rank and result of the pair, or rank kNoMerge. Open addressing with linear probing: a flat
  // table is several times faster than std::unordered_map here, and this lookup is the hot loop.
  const Slot* find(int32_t left, int32_t right) const;
  size_t slot_of(uint64_t key) const;
  void grow();

  std::vector<Slot> slots_;
  size_t count_ = 0;
  int shift_ = 64;
};

}  // namespace ovr::text
