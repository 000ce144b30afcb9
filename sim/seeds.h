// Seeds for a simulation: one root seed, and from it an independent,
// deterministic stream per node and per directed link.
//
// A stream's seed is a pure function of (root, label, ids), never of how many
// other streams exist, so adding node 17 does not change any draw of nodes
// 0..16, and link (3, 5) draws the same numbers whatever else the run does.
// The derivation absorbs 64-bit words through the SplitMix64 finalizer (a
// bijection on 64 bits); it is not cryptographic and need not be: these
// streams are non-secret (partner choice, latency, loss), never DP noise.
#ifndef DPNODE_SIM_SEEDS_H_
#define DPNODE_SIM_SEEDS_H_

#include <cstdint>
#include <initializer_list>
#include <string_view>

#include "node/env.h"

namespace dpnode::sim {

// The SplitMix64 output function (Steele, Lea, Flood 2014): a bijective mix.
uint64_t Mix64(uint64_t x);

// Seed for the stream named `label` with integer coordinates `ids`.
uint64_t DeriveSeed(uint64_t root, std::string_view label, std::initializer_list<uint64_t> ids);

// xoshiro256** (Blackman, Vigna 2018): fast, 256-bit state, passes BigCrush.
// The state is filled from `seed` by SplitMix64, so any seed (even 0) works.
class Xoshiro256 final : public Rng {
 public:
  explicit Xoshiro256(uint64_t seed);
  uint64_t Next() override;
  // Standard normal via Box-Muller (two uniforms per draw; no cached spare,
  // so a draw's result does not depend on earlier calls' parity).
  double Normal();

 private:
  uint64_t s_[4];
};

// Names the streams of one run.
class SeedTree {
 public:
  explicit SeedTree(uint64_t root) : root_(root) {}
  uint64_t root() const { return root_; }
  // Node `i`'s Env::rng(). Incarnation k > 0 (after k restarts) gets a fresh,
  // equally deterministic stream.
  uint64_t Node(uint64_t i, uint64_t incarnation = 0) const {
    return incarnation == 0 ? DeriveSeed(root_, "node", {i})
                            : DeriveSeed(root_, "node-restart", {i, incarnation});
  }
  // The directed link a -> b (latency, loss draws).
  uint64_t Link(uint64_t a, uint64_t b) const { return DeriveSeed(root_, "link", {a, b}); }
  // Anything else the harness needs (topology, data split, ...).
  uint64_t Named(std::string_view label, std::initializer_list<uint64_t> ids = {}) const {
    return DeriveSeed(root_, label, ids);
  }

 private:
  uint64_t root_;
};

}  // namespace dpnode::sim

#endif  // DPNODE_SIM_SEEDS_H_
