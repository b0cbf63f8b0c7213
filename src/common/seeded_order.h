// Seeded randomness that must be identical on every platform, standard library and rank count:
// SplitMix64 (Steele, Lea & Flood 2014), a seed mixer for per-iteration streams, and the epoch
// shuffles that SFT rows and RL prompts are drawn in.
#pragma once
#include <cstdint>
#include <vector>

namespace ovr {

// One SplitMix64 step: advances *state and returns the next 64-bit output.
inline uint64_t splitmix64(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// A seed for stream b of seed a (e.g. the sampler of iteration b): one SplitMix64 step of a ^ b·φ.
inline uint64_t mix_seed(uint64_t a, uint64_t b) {
  uint64_t state = a ^ (b * 0x9E3779B97F4A7C15ull);
  return splitmix64(&state);
}

// A permutation of 0..n-1 from (seed, epoch): Fisher-Yates driven by SplitMix64.
std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch);

}  // namespace ovr
