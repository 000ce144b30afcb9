// Seed derivation and the xoshiro256** stream.
#include "sim/seeds.h"

#include <doctest/doctest.h>

#include <cmath>
#include <set>
#include <vector>

namespace dpnode::sim {
namespace {

TEST_CASE("derived seeds differ by root, label, ids and id count") {
  std::set<uint64_t> seen;
  for (uint64_t root : {0ull, 1ull, 2ull}) {
    seen.insert(DeriveSeed(root, "node", {0}));
    seen.insert(DeriveSeed(root, "node", {1}));
    seen.insert(DeriveSeed(root, "link", {0, 1}));
    seen.insert(DeriveSeed(root, "link", {1, 0}));
    seen.insert(DeriveSeed(root, "node", {0, 0}));
    seen.insert(DeriveSeed(root, "nodf", {0}));
    seen.insert(DeriveSeed(root, "node", {}));
  }
  CHECK(seen.size() == 21);
  CHECK(DeriveSeed(5, "node", {3}) == DeriveSeed(5, "node", {3}));
}

TEST_CASE("SeedTree streams: per node, per incarnation, per directed link") {
  const SeedTree t(99);
  CHECK(t.Node(3) == DeriveSeed(99, "node", {3}));
  CHECK(t.Node(3, 1) != t.Node(3, 0));
  CHECK(t.Node(3, 1) != t.Node(3, 2));
  CHECK(t.Link(1, 2) != t.Link(2, 1));
  CHECK(SeedTree(100).Node(3) != t.Node(3));
}

TEST_CASE("xoshiro256**: reproducible, seed-sensitive, uniform") {
  Xoshiro256 a(7), b(7), c(8);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    const uint64_t x = a.Next();
    CHECK(x == b.Next());
    differs = differs || x != c.Next();
  }
  CHECK(differs);

  // Mean and variance of Uniform() over 200k draws: 5-sigma bounds.
  Xoshiro256 r(1);
  constexpr int kN = 200000;
  double sum = 0, sum2 = 0;
  int out_of_range = 0;
  for (int i = 0; i < kN; ++i) {
    const double u = r.Uniform();
    out_of_range += (u < 0.0 || u >= 1.0) ? 1 : 0;
    sum += u;
    sum2 += u * u;
  }
  CHECK(out_of_range == 0);
  const double mean = sum / kN;
  CHECK(std::fabs(mean - 0.5) < 5 * std::sqrt(1.0 / 12 / kN));
  CHECK(std::fabs(sum2 / kN - mean * mean - 1.0 / 12) < 0.002);

  // Below(10): chi-square over 10 bins, 9 dof; 99.99th percentile ~ 33.7.
  std::vector<int> bins(10, 0);
  for (int i = 0; i < kN; ++i) ++bins[r.Below(10)];
  double chi2 = 0;
  for (int count : bins) chi2 += (count - kN / 10.0) * (count - kN / 10.0) / (kN / 10.0);
  CHECK(chi2 < 33.7);

  // Normal(): mean 0, variance 1.
  double ns = 0, ns2 = 0;
  for (int i = 0; i < kN; ++i) {
    const double z = r.Normal();
    ns += z;
    ns2 += z * z;
  }
  CHECK(std::fabs(ns / kN) < 5 / std::sqrt(double{kN}));
  CHECK(std::fabs(ns2 / kN - 1) < 0.02);
}

TEST_CASE("seed 0 gives a working stream") {
  Xoshiro256 z(0);
  std::set<uint64_t> v;
  for (int i = 0; i < 10; ++i) v.insert(z.Next());
  CHECK(v.size() == 10);
}

}  // namespace
}  // namespace dpnode::sim
