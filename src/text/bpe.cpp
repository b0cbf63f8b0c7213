#include "text/bpe.h"

#include <algorithm>
#include <queue>

namespace ovr::text {

namespace {
uint64_t pair_key(int32_t left, int32_t right) { return (uint64_t(uint32_t(left)) << 32) | uint32_t(right); }
}  // namespace

size_t BpeMerges::slot_of(uint64_t key) const {
  // Fibonacci hashing: the top bits of key * 2^64/phi spread consecutive ids well.
  return size_t((key * 0x9E3779B97F4A7C15ull) >> shift_);
}

void BpeMerges::grow() {
  std::vector<Slot> old;
  old.swap(slots_);
  const size_t capacity = old.empty() ? 1024 : old.size() * 2;
  shift_ = 64 - __builtin_ctzll(capacity);
  slots_.assign(capacity, Slot{kEmpty, 0, 0});
  for (const Slot& s : old) {
    if (s.key == kEmpty) continue;
    size_t i = slot_of(s.key);
    while (slots_[i].key != kEmpty) i = (i + 1) & (capacity - 1);
    slots_[i] = s;
  }
}

void BpeMerges::add(int32_t left, int32_t right, int32_t merged) {
  if ((count_ + 1) * 2 > slots_.size()) grow();  // load factor <= 1/2 keeps probes short
  const uint64_t key = pair_key(left, right);
  const int32_t rank = int32_t(count_);
  size_t i = slot_of(key);
  while (slots_[i].key != kEmpty && slots_[i].key != key) i = (i + 1) & (slots_.size() - 1);
  if (slots_[i].key == kEmpty) slots_[i].key = key;
  slots_[i].rank = rank;
  slots_[i].merged = merged;
  ++count_;  // ranks count every line, duplicates included, as the file's line order does
}

const BpeMerges::Slot* BpeMerges::find(int32_t left, int32_t right) const {
  if (slots_.empty()) return nullptr;
  const uint64_t key = pair_key(left, right);
  for (size_t i = slot_of(key);; i = (i + 1) & (slots_.size() - 1)) {
    const Slot& s = slots_[i];
    if (s.key == key) return &s;
    if (s.key == kEmpty) return nullptr;
  }
}

void BpeMerges::merge(std::vector<int32_t>& ids) const {
  if (ids.size() <= kSmallWord) merge_small(ids);
  else merge_heap(ids);
}

void BpeMerges::merge_small(std::vector<int32_t>& ids) const {
  size_t n = ids.size();
  if (n < 2) return;
  // ranks[i] / merged[i]: the merge of the pair (ids[i], ids[i+1]), kept in step with ids.
  int32_t ranks_buf[kSmallWord], merged_buf[kSmallWord];
  std::vector<int32_t> ranks_vec, merged_vec;
  int32_t* ranks = ranks_buf;
  int32_t* merged = merged_buf;
  if (n > kSmallWord) {
    ranks_vec.resize(n);
    merged_vec.resize(n);
    ranks = ranks_vec.data();
    merged = merged_vec.data();
  }
  auto fill = [&](size_t i) {
    const Slot* s = find(ids[i], ids[i + 1]);
    ranks[i] = s ? s->rank : kNoMerge;
    merged[i] = s ? s->merged : -1;
  };
  for (size_t i = 0; i + 1 < n; ++i) fill(i);
  int32_t* v = ids.data();
  while (n > 1) {
    size_t best = 0;
    for (size_t i = 1; i + 1 < n; ++i)
      if (ranks[i] < ranks[best]) best = i;  // strict: the leftmost of equal ranks wins
    if (ranks[best] == kNoMerge) break;
    v[best] = merged[best];
    // Drop symbol best+1 and pair entry best+1 (pair `best` is recomputed below).
    std::copy(v + best + 2, v + n, v + best + 1);
    if (best + 2 < n - 1) {
      std::copy(ranks + best + 2, ranks + n - 1, ranks + best + 1);
      std::copy(merged + best + 2, merged + n - 1, merged + best + 1);
    }
    --n;
    if (best + 1 < n) fill(best);
    if (best > 0) fill(best - 1);
  }
  ids.resize(n);
}

void BpeMerges::merge_heap(std::vector<int32_t>& ids) const {
  const int32_t n = int32_t(ids.size());
  if (n < 2) return;
  struct Symbol {
    int32_t id, prev, next;
    bool alive;
  };
  struct Candidate {
    int32_t rank, pos, merged;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::vector<Symbol> sym(n);
  for (int32_t i = 0; i < n; ++i) sym[i] = {ids[i], i - 1, i + 1 < n ? i + 1 : -1, true};
  std::vector<Candidate> storage;
  storage.reserve(size_t(n) * 2);
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap(std::greater<Candidate>(),
                                                                                      std::move(storage));
  auto push = [&](int32_t pos) {
    if (const Slot* s = find(sym[pos].id, sym[sym[pos].next].id)) heap.push({s->rank, pos, s->merged});
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    Symbol& left = sym[c.pos];
    // A candidate is stale when its left symbol was absorbed or either symbol has changed since
    // it was queued; the current pair at `pos` then has a different result (or none).
    if (!left.alive || left.next < 0) continue;
    Symbol& right = sym[left.next];
    const Slot* now = find(left.id, right.id);
    if (!now || now->merged != c.merged || now->rank != c.rank) continue;
    left.id = c.merged;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) sym[right.next].prev = c.pos;
    if (left.prev >= 0) push(left.prev);
    if (left.next >= 0) push(c.pos);
  }
  size_t out = 0;
  for (int32_t i = 0; i >= 0; i = sym[i].next) ids[out++] = sym[i].id;
  ids.resize(out);
}

}  // namespace ovr::text
