// The project's one non-secret PRNG: xoshiro256** (Blackman, Vigna 2018),
// fast, 256-bit state, passes BigCrush, with its state filled from a 64-bit
// seed by SplitMix64 (so any seed, even 0, works). AsioEnv and every
// simulated node hand it out as Env::rng(). Never used for DP noise: that
// comes from the learner's CSPRNG.
#ifndef DPNODE_NODE_XOSHIRO_H_
#define DPNODE_NODE_XOSHIRO_H_

#include <cmath>
#include <cstdint>

#include "node/env.h"

namespace dpnode {

// The SplitMix64 output function (Steele, Lea, Flood 2014): a bijective mix.
inline uint64_t Mix64(uint64_t x) {
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

inline constexpr uint64_t kSplitMixGolden = 0x9E3779B97F4A7C15ull;

class Xoshiro256 final : public Rng {
 public:
  explicit Xoshiro256(uint64_t seed) {
    for (uint64_t& w : s_) {
      seed += kSplitMixGolden;
      w = Mix64(seed);
    }
  }

  uint64_t Next() override {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

  // Standard normal via Box-Muller (two uniforms per draw; no cached spare,
  // so a draw's result does not depend on earlier calls' parity).
  double Normal() {
    const double u1 = 1.0 - Uniform();  // in (0, 1]: the log is finite
    const double u2 = Uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586476925 * u2);
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace dpnode

#endif  // DPNODE_NODE_XOSHIRO_H_
