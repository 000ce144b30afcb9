// Topologies for simulated experiments, the Metropolis-Hastings mixing matrix
// over them, and its spectral gap.
//
// A Graph is undirected and simple (no self-loops, no parallel edges), stored
// as compressed adjacency lists with each list sorted, so it scales to 10^6
// vertices. Random generators take an Rng (use a SeedTree stream), so the
// same seed gives the same graph.
//
// Connectivity: gossip only converges on a connected graph, so generators
// that can produce a disconnected graph either resample (random k-regular,
// Watts-Strogatz: up to kMaxAttempts, then an error) or, for Erdos-Renyi,
// bridge the components: after sampling G(n, p), component c is joined to
// component c+1 (ordered by smallest vertex) by one edge between uniformly
// chosen members. That adds (components - 1) edges, which is negligible above
// the connectivity threshold p ~ ln(n)/n and keeps the run reproducible
// without an unbounded resampling loop.
//
// Spectral gap: W = Metropolis-Hastings weights, W_ij = 1/(1 + max(d_i, d_j))
// on edges, W_ii = 1 - sum_j W_ij. W is symmetric and doubly stochastic; the
// gap is 1 - SLEM, SLEM = max(|lambda_2|, |lambda_n|), and synchronous
// averaging x <- W x contracts the disagreement ||x - mean|| by at most SLEM
// per round. SpectralGapLanczos scales (O(edges) per iteration, O(n) memory):
// Lanczos on W restricted to the complement of the all-ones vector, with the
// Ritz extremes' residuals as the stopping test. SpectralGapDense (Jacobi on
// the dense matrix, O(n^3)) is exact for small n and checks it in tests.
#ifndef DPNODE_SIM_TOPOLOGY_H_
#define DPNODE_SIM_TOPOLOGY_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "node/env.h"

namespace dpnode::sim {

using Edge = std::pair<uint32_t, uint32_t>;

class Graph {
 public:
  Graph() = default;
  // Self-loops are dropped and duplicate edges merged; ids must be < n.
  static Graph FromEdges(size_t n, std::vector<Edge> edges);

  size_t num_nodes() const { return n_; }
  size_t num_edges() const { return adj_.size() / 2; }
  size_t degree(uint32_t v) const { return offsets_[v + 1] - offsets_[v]; }
  // Sorted neighbours of v, as [begin, end).
  const uint32_t* neighbors_begin(uint32_t v) const { return adj_.data() + offsets_[v]; }
  const uint32_t* neighbors_end(uint32_t v) const { return adj_.data() + offsets_[v + 1]; }
  std::vector<uint32_t> neighbors(uint32_t v) const { return {neighbors_begin(v), neighbors_end(v)}; }
  bool HasEdge(uint32_t u, uint32_t v) const;
  // Each edge once, as (u, v) with u < v, sorted.
  std::vector<Edge> Edges() const;
  std::vector<size_t> Degrees() const;

 private:
  size_t n_ = 0;
  std::vector<size_t> offsets_{0};
  std::vector<uint32_t> adj_;
};

size_t CountComponents(const Graph& g);
inline bool IsConnected(const Graph& g) { return g.num_nodes() > 0 && CountComponents(g) == 1; }

inline constexpr int kMaxAttempts = 100;

Graph CompleteGraph(size_t n);
Graph RingGraph(size_t n);
// Vertex 0 is the hub.
Graph StarGraph(size_t n);
// rows x cols grid with wrap-around; vertex r * cols + c.
Graph TorusGraph(size_t rows, size_t cols);
// G(n, p) in O(n + edges) (geometric skipping), then components bridged (see
// above). 0 <= p <= 1.
Graph ErdosRenyi(size_t n, double p, Rng& rng);
// Connected simple k-regular graph: random pairing of stubs, rejecting
// self-loops and parallel edges (Steger-Wormald style, near-uniform), and
// resampling if stuck or disconnected. Needs n * k even, 0 < k < n.
Result<Graph> RandomRegular(size_t n, size_t k, Rng& rng);
// Ring lattice with k/2 neighbours each side, each edge's far end rewired
// with probability beta to a uniform non-neighbour; resampled until
// connected. k even, 2 <= k < n, 0 <= beta <= 1.
Result<Graph> WattsStrogatz(size_t n, size_t k, double beta, Rng& rng);
// Preferential attachment: starts from a complete graph on m + 1 vertices;
// each new vertex joins m distinct vertices chosen with probability
// proportional to degree. Connected by construction. 1 <= m < n.
Result<Graph> BarabasiAlbert(size_t n, size_t m, Rng& rng);
// One edge per line, "u v" with 0-based ids (extra columns ignored); blank
// lines and lines starting with '#' or '%' skipped. n = largest id + 1.
Result<Graph> ParseEdgeList(std::string_view text);
Result<Graph> LoadEdgeList(const std::string& path);

// Metropolis-Hastings weights over a graph (kept by value: a copy costs
// about as much as the weights themselves).
class MixingMatrix {
 public:
  explicit MixingMatrix(Graph graph);
  const Graph& graph() const { return graph_; }
  size_t size() const { return graph_.num_nodes(); }
  double self_weight(uint32_t v) const { return self_[v]; }
  // Weight of v's k-th neighbour (in neighbors_begin(v) order).
  double edge_weight(uint32_t v, size_t k) const { return weight_[offset(v) + k]; }
  // y = W x (x and y of length size(), not aliased).
  void Apply(const double* x, double* y) const;
  // Row-major dense copy, for small n.
  std::vector<double> Dense() const;

 private:
  size_t offset(uint32_t v) const {
    return static_cast<size_t>(graph_.neighbors_begin(v) - graph_.neighbors_begin(0));
  }
  Graph graph_;
  std::vector<double> self_;
  std::vector<double> weight_;
};

struct SpectralGap {
  double gap = 0;         // 1 - slem
  double slem = 0;        // second largest eigenvalue modulus
  double lambda2 = 0;     // largest eigenvalue on the complement of 1
  double lambda_min = 0;  // smallest eigenvalue
  int iterations = 0;     // Lanczos steps (0 for dense)
  bool converged = true;
};

// Lanczos; `seed` picks the start vector. Converged when both Ritz extremes
// have residual below `tolerance` (then each is within `tolerance` of an
// eigenvalue of W).
SpectralGap SpectralGapLanczos(const MixingMatrix& w, uint64_t seed = 1, int max_iterations = 3000,
                               double tolerance = 1e-9);
// Exact (to rounding) via dense Jacobi; O(n^3), for n up to a few hundred.
SpectralGap SpectralGapDense(const MixingMatrix& w);
// Eigenvalues of a symmetric n x n row-major matrix, descending (cyclic Jacobi).
std::vector<double> SymmetricEigenvalues(std::vector<double> a, size_t n);

}  // namespace dpnode::sim

#endif  // DPNODE_SIM_TOPOLOGY_H_
