// Seed derivation: independent, named streams from one root seed.
#include "sim/seeds.h"

#include <cmath>

namespace dpnode::sim {
namespace {

constexpr uint64_t kGolden = kSplitMixGolden;

}  // namespace

uint64_t DeriveSeed(uint64_t root, std::string_view label, std::initializer_list<uint64_t> ids) {
  // FNV-1a of the label, then absorb root, label hash, count and ids; the
  // count keeps ("a", {1}) and ("a", {1, 0}) apart.
  uint64_t label_hash = 0xCBF29CE484222325ull;
  for (unsigned char c : label) {
    label_hash ^= c;
    label_hash *= 0x100000001B3ull;
  }
  uint64_t h = Mix64(root + kGolden);
  h = Mix64(h ^ label_hash) + kGolden;
  h = Mix64(h ^ ids.size()) + kGolden;
  for (uint64_t id : ids) h = Mix64(h ^ id) + kGolden;
  return Mix64(h);
}

}  // namespace dpnode::sim
