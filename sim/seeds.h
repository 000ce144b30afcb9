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
#include "node/xoshiro.h"

namespace dpnode::sim {

using dpnode::Mix64;

// Seed for the stream named `label` with integer coordinates `ids`.
uint64_t DeriveSeed(uint64_t root, std::string_view label, std::initializer_list<uint64_t> ids);

// Every simulated node's Env::rng() (node/xoshiro.h).
using dpnode::Xoshiro256;

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
