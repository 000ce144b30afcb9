// Topologies: sizes, degrees, connectivity; edge lists; Metropolis-Hastings
// weights; the spectral gap against closed forms and dense Jacobi.
#include "sim/topology.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include "sim/seeds.h"

namespace dpnode::sim {
namespace {

constexpr double kPi = 3.14159265358979323846;

bool AllDegrees(const Graph& g, size_t d) {
  for (uint32_t v = 0; v < g.num_nodes(); ++v) {
    if (g.degree(v) != d) return false;
  }
  return true;
}

TEST_CASE("deterministic families: sizes, degrees, connectivity") {
  const Graph k = CompleteGraph(7);
  CHECK(k.num_edges() == 21);
  CHECK(AllDegrees(k, 6));
  CHECK(IsConnected(k));

  const Graph r = RingGraph(10);
  CHECK(r.num_edges() == 10);
  CHECK(AllDegrees(r, 2));
  CHECK(r.HasEdge(9, 0));
  CHECK_FALSE(r.HasEdge(0, 2));
  CHECK(IsConnected(r));

  const Graph s = StarGraph(6);
  CHECK(s.num_edges() == 5);
  CHECK(s.degree(0) == 5);
  CHECK(s.degree(3) == 1);

  const Graph t = TorusGraph(4, 5);
  CHECK(t.num_nodes() == 20);
  CHECK(t.num_edges() == 40);
  CHECK(AllDegrees(t, 4));
  CHECK(t.HasEdge(0, 4));   // row wrap: (0,0)-(0,4)
  CHECK(t.HasEdge(0, 15));  // column wrap: (0,0)-(3,0)
  CHECK(IsConnected(t));

  const Graph two = Graph::FromEdges(4, {{0, 1}, {1, 0}, {2, 2}, {2, 3}});
  CHECK(two.num_edges() == 2);  // duplicate merged, self-loop dropped
  CHECK(CountComponents(two) == 2);
  CHECK_FALSE(IsConnected(two));
}

TEST_CASE("Erdos-Renyi: edge count near p*n(n-1)/2, components bridged") {
  Xoshiro256 rng(11);
  const Graph g = ErdosRenyi(400, 0.05, rng);
  const double expected = 0.05 * 400 * 399 / 2;  // 3990, sd ~ 61
  CHECK(std::fabs(static_cast<double>(g.num_edges()) - expected) < 5 * std::sqrt(expected));
  CHECK(IsConnected(g));

  // Far below the threshold: many components, bridged by exactly count-1 edges.
  Xoshiro256 a(5), b(5);
  const Graph sparse = ErdosRenyi(300, 0.002, a);
  CHECK(IsConnected(sparse));
  // Reproduce the raw sample to count its components.
  std::vector<Edge> raw;
  {
    const double log_q = std::log1p(-0.002);
    int64_t v = 1, w = -1;
    while (v < 300) {
      w += 1 + static_cast<int64_t>(std::floor(std::log1p(-b.Uniform()) / log_q));
      while (w >= v && v < 300) {
        w -= v;
        ++v;
      }
      if (v < 300) raw.emplace_back(static_cast<uint32_t>(w), static_cast<uint32_t>(v));
    }
  }
  const Graph raw_g = Graph::FromEdges(300, raw);
  CHECK(CountComponents(raw_g) > 10);
  CHECK(sparse.num_edges() == raw_g.num_edges() + CountComponents(raw_g) - 1);

  Xoshiro256 c(1);
  CHECK(ErdosRenyi(20, 1.0, c).num_edges() == 190);
}

TEST_CASE("random k-regular: every degree k, simple, connected, seed-determined") {
  Xoshiro256 rng(3);
  Result<Graph> g = RandomRegular(1000, 4, rng);
  REQUIRE(g.ok());
  CHECK(g->num_edges() == 2000);
  CHECK(AllDegrees(*g, 4));
  CHECK(IsConnected(*g));
  Xoshiro256 again(3);
  CHECK(RandomRegular(1000, 4, again)->Edges() == g->Edges());
  Xoshiro256 other(4);
  CHECK(RandomRegular(1000, 4, other)->Edges() != g->Edges());
  Xoshiro256 bad(1);
  CHECK(RandomRegular(7, 3, bad).status().code() == StatusCode::kInvalidArgument);  // n*k odd
}

TEST_CASE("Watts-Strogatz keeps n*k/2 edges, beta = 0 is the ring lattice") {
  Xoshiro256 rng(8);
  Result<Graph> lattice = WattsStrogatz(50, 4, 0.0, rng);
  REQUIRE(lattice.ok());
  CHECK(AllDegrees(*lattice, 4));
  CHECK(lattice->HasEdge(0, 2));
  CHECK(lattice->HasEdge(0, 48));
  Result<Graph> rewired = WattsStrogatz(200, 6, 0.3, rng);
  REQUIRE(rewired.ok());
  CHECK(rewired->num_edges() == 600);
  CHECK(IsConnected(*rewired));
  size_t far = 0;  // rewired edges leave the lattice
  for (const Edge& e : rewired->Edges()) {
    const uint32_t d = std::min(e.second - e.first, 200 - (e.second - e.first));
    far += d > 3 ? 1 : 0;
  }
  CHECK(far > 100);  // ~ 0.3 * 600 = 180 expected
  CHECK(far < 260);
}

TEST_CASE("Barabasi-Albert: m(n - m - 1) + m(m+1)/2 edges, min degree m, connected, a hub") {
  Xoshiro256 rng(21);
  Result<Graph> g = BarabasiAlbert(2000, 3, rng);
  REQUIRE(g.ok());
  CHECK(g->num_edges() == 3 * (2000 - 4) + 6);
  const std::vector<size_t> d = g->Degrees();
  CHECK(*std::min_element(d.begin(), d.end()) == 3);
  CHECK(*std::max_element(d.begin(), d.end()) > 40);  // heavy tail (~ sqrt(n) * m)
  CHECK(IsConnected(*g));
}

TEST_CASE("edge lists: parse, comments, errors with the line") {
  Result<Graph> g = ParseEdgeList("# ring of 4\n0 1\n1 2 0.5\n\n% weighted\n2 3\n3 0\n");
  REQUIRE(g.ok());
  CHECK(g->num_nodes() == 4);
  CHECK(g->num_edges() == 4);
  CHECK(AllDegrees(*g, 2));
  Result<Graph> bad = ParseEdgeList("0 1\n1 x\n");
  CHECK(bad.status().code() == StatusCode::kInvalidArgument);
  CHECK(bad.status().message().find("line 2") != std::string::npos);
  CHECK(ParseEdgeList("# nothing\n").status().code() == StatusCode::kInvalidArgument);

  const std::string path = std::string(DPNODE_BINARY_DIR) + "/sim_topology_test_edges.txt";
  {
    std::ofstream out(path);
    out << "0 1\n1 2\n";
  }
  Result<Graph> file = LoadEdgeList(path);
  REQUIRE(file.ok());
  CHECK(file->num_edges() == 2);
  std::remove(path.c_str());
  CHECK(LoadEdgeList(path).status().code() == StatusCode::kIoError);
}

TEST_CASE("Metropolis-Hastings weights are symmetric and doubly stochastic") {
  Xoshiro256 rng(2);
  Result<Graph> g = BarabasiAlbert(60, 2, rng);
  REQUIRE(g.ok());
  const MixingMatrix w(*g);
  const std::vector<double> a = w.Dense();
  const size_t n = w.size();
  for (size_t i = 0; i < n; ++i) {
    double row = 0;
    for (size_t j = 0; j < n; ++j) {
      row += a[i * n + j];
      CHECK(a[i * n + j] == doctest::Approx(a[j * n + i]).epsilon(1e-15));
      CHECK(a[i * n + j] >= 0);
    }
    CHECK(row == doctest::Approx(1.0).epsilon(1e-12));
  }
  // Apply agrees with the dense product.
  std::vector<double> x(n), y(n);
  for (size_t i = 0; i < n; ++i) x[i] = std::sin(static_cast<double>(i));
  w.Apply(x.data(), y.data());
  for (size_t i = 0; i < n; ++i) {
    double s = 0;
    for (size_t j = 0; j < n; ++j) s += a[i * n + j] * x[j];
    CHECK(y[i] == doctest::Approx(s).epsilon(1e-12));
  }
}

TEST_CASE("spectral gap of the ring: eigenvalues 1/3 + 2/3 cos(2 pi k / n)") {
  for (size_t n : {5, 8, 20, 64}) {
    const Graph g = RingGraph(n);
    const MixingMatrix w(g);
    std::vector<double> closed;
    for (size_t k = 0; k < n; ++k) closed.push_back(1.0 / 3 + 2.0 / 3 * std::cos(2 * kPi * k / n));
    std::sort(closed.begin(), closed.end(), std::greater<double>());
    const std::vector<double> dense = SymmetricEigenvalues(w.Dense(), n);
    for (size_t k = 0; k < n; ++k) CHECK(dense[k] == doctest::Approx(closed[k]).epsilon(1e-10));
    const double slem = std::max(std::fabs(closed[1]), std::fabs(closed[n - 1]));
    const SpectralGap exact = SpectralGapDense(w);
    CHECK(exact.slem == doctest::Approx(slem).epsilon(1e-10));
    const SpectralGap lanczos = SpectralGapLanczos(w);
    CHECK(lanczos.converged);
    CHECK(lanczos.slem == doctest::Approx(slem).epsilon(1e-8));
    CHECK(lanczos.gap == doctest::Approx(1 - slem).epsilon(1e-6));
  }
}

TEST_CASE("spectral gap of the complete graph is 1 (W = J/n) and of the torus matches its closed form") {
  const MixingMatrix k(CompleteGraph(12));
  CHECK(SpectralGapDense(k).gap == doctest::Approx(1.0).epsilon(1e-12));
  CHECK(SpectralGapLanczos(k).gap == doctest::Approx(1.0).epsilon(1e-8));

  // Torus r x c, MH weights 1/5: 1/5 + 2/5 (cos(2 pi a / r) + cos(2 pi b / c)).
  const size_t r = 6, c = 9;
  const Graph t = TorusGraph(r, c);
  const MixingMatrix w(t);
  double lambda2 = -1, lambda_min = 2;
  for (size_t a = 0; a < r; ++a) {
    for (size_t b = 0; b < c; ++b) {
      if (a == 0 && b == 0) continue;
      const double l = 0.2 + 0.4 * (std::cos(2 * kPi * a / r) + std::cos(2 * kPi * b / c));
      lambda2 = std::max(lambda2, l);
      lambda_min = std::min(lambda_min, l);
    }
  }
  const SpectralGap lz = SpectralGapLanczos(w);
  CHECK(lz.lambda2 == doctest::Approx(lambda2).epsilon(1e-8));
  CHECK(lz.lambda_min == doctest::Approx(lambda_min).epsilon(1e-8));
}

TEST_CASE("Lanczos agrees with dense Jacobi on random graphs") {
  Xoshiro256 rng(17);
  std::vector<Graph> graphs;
  graphs.push_back(ErdosRenyi(120, 0.05, rng));
  graphs.push_back(*BarabasiAlbert(150, 2, rng));
  graphs.push_back(*WattsStrogatz(100, 4, 0.1, rng));
  graphs.push_back(*RandomRegular(90, 3, rng));
  graphs.push_back(StarGraph(30));
  for (const Graph& g : graphs) {
    const MixingMatrix w(g);
    const SpectralGap dense = SpectralGapDense(w);
    const SpectralGap lz = SpectralGapLanczos(w);
    CHECK(lz.converged);
    CHECK(lz.slem == doctest::Approx(dense.slem).epsilon(1e-7));
    CHECK(dense.gap > 0);
    CHECK(dense.gap < 1);
  }
  // Disconnected: gap 0.
  const MixingMatrix split(Graph::FromEdges(4, {{0, 1}, {2, 3}}));
  CHECK(SpectralGapDense(split).gap == doctest::Approx(0.0).epsilon(1e-12));
}

}  // namespace
}  // namespace dpnode::sim
