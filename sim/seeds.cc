// Seed derivation and the xoshiro256** generator.
#include "sim/seeds.h"

#include <cmath>

namespace dpnode::sim {
namespace {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;
constexpr double kTwoPi = 6.283185307179586476925;

inline uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

uint64_t Mix64(uint64_t x) {
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

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

Xoshiro256::Xoshiro256(uint64_t seed) {
  uint64_t x = seed;
  for (uint64_t& w : s_) {
    x += kGolden;
    w = Mix64(x);
  }
}

uint64_t Xoshiro256::Next() {
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

double Xoshiro256::Normal() {
  // 1 - U is in (0, 1], so the log is finite.
  const double u1 = 1.0 - Uniform();
  const double u2 = Uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(kTwoPi * u2);
}

}  // namespace dpnode::sim
