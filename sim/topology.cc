// Graph generators, Metropolis-Hastings weights and the spectral gap.
#include "sim/topology.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <sstream>
#include <unordered_set>

#include "base/check.h"
#include "sim/seeds.h"

namespace dpnode::sim {
namespace {

uint64_t EdgeKey(uint32_t u, uint32_t v) {
  if (u > v) std::swap(u, v);
  return (static_cast<uint64_t>(u) << 32) | v;
}

// Component id per vertex, components numbered by their smallest vertex.
std::vector<uint32_t> Components(const Graph& g, size_t* count) {
  const size_t n = g.num_nodes();
  std::vector<uint32_t> comp(n, UINT32_MAX);
  std::vector<uint32_t> stack;
  uint32_t c = 0;
  for (uint32_t s = 0; s < n; ++s) {
    if (comp[s] != UINT32_MAX) continue;
    comp[s] = c;
    stack.push_back(s);
    while (!stack.empty()) {
      const uint32_t u = stack.back();
      stack.pop_back();
      for (const uint32_t* p = g.neighbors_begin(u); p != g.neighbors_end(u); ++p) {
        if (comp[*p] == UINT32_MAX) {
          comp[*p] = c;
          stack.push_back(*p);
        }
      }
    }
    ++c;
  }
  *count = c;
  return comp;
}

double Dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

void RemoveMean(std::vector<double>& x) {
  const double mean = std::accumulate(x.begin(), x.end(), 0.0) / static_cast<double>(x.size());
  for (double& v : x) v -= mean;
}

// Number of eigenvalues of the symmetric tridiagonal (alpha, beta) below x
// (Sturm sequence).
size_t CountBelow(const std::vector<double>& alpha, const std::vector<double>& beta, size_t m, double x) {
  size_t count = 0;
  double q = 1;
  for (size_t i = 0; i < m; ++i) {
    const double b2 = i == 0 ? 0.0 : beta[i - 1] * beta[i - 1];
    q = alpha[i] - x - (i == 0 ? 0.0 : b2 / q);
    if (q == 0) q = -1e-300;
    if (q < 0) ++count;
  }
  return count;
}

// The k-th smallest eigenvalue (0-based) of the leading m x m tridiagonal.
double TridiagonalEigenvalue(const std::vector<double>& alpha, const std::vector<double>& beta, size_t m,
                             size_t k) {
  double lo = alpha[0], hi = alpha[0];
  for (size_t i = 0; i < m; ++i) {
    const double r = (i > 0 ? std::fabs(beta[i - 1]) : 0.0) + (i + 1 < m ? std::fabs(beta[i]) : 0.0);
    lo = std::min(lo, alpha[i] - r);
    hi = std::max(hi, alpha[i] + r);
  }
  for (int it = 0; it < 200 && hi - lo > 1e-15 * std::max(1.0, std::fabs(hi)); ++it) {
    const double mid = 0.5 * (lo + hi);
    if (CountBelow(alpha, beta, m, mid) > k) {
      hi = mid;
    } else {
      lo = mid;
    }
  }
  return 0.5 * (lo + hi);
}

// |last component| of the unit eigenvector of the m x m tridiagonal for
// eigenvalue theta, by two steps of inverse iteration (Thomas algorithm).
double LastEigenvectorComponent(const std::vector<double>& alpha, const std::vector<double>& beta, size_t m,
                                double theta) {
  std::vector<double> x(m, 1.0), c(m), d(m);
  const double shift = theta + 1e-13 * std::max(1.0, std::fabs(theta));
  for (int round = 0; round < 2; ++round) {
    // Solve (T - shift I) y = x.
    double denom = alpha[0] - shift;
    if (denom == 0) denom = 1e-300;
    c[0] = m > 1 ? beta[0] / denom : 0.0;
    d[0] = x[0] / denom;
    for (size_t i = 1; i < m; ++i) {
      denom = alpha[i] - shift - beta[i - 1] * c[i - 1];
      if (denom == 0) denom = 1e-300;
      c[i] = i + 1 < m ? beta[i] / denom : 0.0;
      d[i] = (x[i] - beta[i - 1] * d[i - 1]) / denom;
    }
    x[m - 1] = d[m - 1];
    for (size_t i = m - 1; i-- > 0;) x[i] = d[i] - c[i] * x[i + 1];
    double norm = 0;
    for (double v : x) norm += v * v;
    norm = std::sqrt(norm);
    if (!(norm > 0) || !std::isfinite(norm)) return 1.0;
    for (double& v : x) v /= norm;
  }
  return std::fabs(x[m - 1]);
}

SpectralGap FromExtremes(double lambda2, double lambda_min) {
  SpectralGap r;
  r.lambda2 = lambda2;
  r.lambda_min = lambda_min;
  r.slem = std::max(std::fabs(lambda2), std::fabs(lambda_min));
  r.gap = 1.0 - r.slem;
  return r;
}

}  // namespace

// ---- Graph.

Graph Graph::FromEdges(size_t n, std::vector<Edge> edges) {
  Graph g;
  g.n_ = n;
  std::vector<Edge> directed;
  directed.reserve(2 * edges.size());
  for (const Edge& e : edges) {
    DPNODE_CHECK(e.first < n && e.second < n, "edge (%u, %u) with n = %zu", e.first, e.second, n);
    if (e.first == e.second) continue;
    directed.emplace_back(e.first, e.second);
    directed.emplace_back(e.second, e.first);
  }
  edges.clear();
  edges.shrink_to_fit();
  std::sort(directed.begin(), directed.end());
  directed.erase(std::unique(directed.begin(), directed.end()), directed.end());
  g.offsets_.assign(n + 1, 0);
  for (const Edge& e : directed) ++g.offsets_[e.first + 1];
  for (size_t v = 0; v < n; ++v) g.offsets_[v + 1] += g.offsets_[v];
  g.adj_.resize(directed.size());
  for (size_t i = 0; i < directed.size(); ++i) g.adj_[i] = directed[i].second;
  return g;
}

bool Graph::HasEdge(uint32_t u, uint32_t v) const {
  if (u >= n_ || v >= n_) return false;
  return std::binary_search(neighbors_begin(u), neighbors_end(u), v);
}

std::vector<Edge> Graph::Edges() const {
  std::vector<Edge> out;
  out.reserve(num_edges());
  for (uint32_t u = 0; u < n_; ++u) {
    for (const uint32_t* p = neighbors_begin(u); p != neighbors_end(u); ++p) {
      if (u < *p) out.emplace_back(u, *p);
    }
  }
  return out;
}

std::vector<size_t> Graph::Degrees() const {
  std::vector<size_t> d(n_);
  for (uint32_t v = 0; v < n_; ++v) d[v] = degree(v);
  return d;
}

size_t CountComponents(const Graph& g) {
  size_t count = 0;
  (void)Components(g, &count);
  return count;
}

// ---- Deterministic families.

Graph CompleteGraph(size_t n) {
  std::vector<Edge> e;
  e.reserve(n * (n - (n > 0 ? 1 : 0)) / 2);
  for (uint32_t u = 0; u < n; ++u) {
    for (uint32_t v = u + 1; v < n; ++v) e.emplace_back(u, v);
  }
  return Graph::FromEdges(n, std::move(e));
}

Graph RingGraph(size_t n) {
  std::vector<Edge> e;
  for (uint32_t u = 0; n > 1 && u < n; ++u) e.emplace_back(u, static_cast<uint32_t>((u + 1) % n));
  return Graph::FromEdges(n, std::move(e));
}

Graph StarGraph(size_t n) {
  std::vector<Edge> e;
  for (uint32_t v = 1; v < n; ++v) e.emplace_back(0, v);
  return Graph::FromEdges(n, std::move(e));
}

Graph TorusGraph(size_t rows, size_t cols) {
  std::vector<Edge> e;
  const size_t n = rows * cols;
  for (size_t r = 0; r < rows; ++r) {
    for (size_t c = 0; c < cols; ++c) {
      const auto u = static_cast<uint32_t>(r * cols + c);
      e.emplace_back(u, static_cast<uint32_t>(r * cols + (c + 1) % cols));
      e.emplace_back(u, static_cast<uint32_t>(((r + 1) % rows) * cols + c));
    }
  }
  return Graph::FromEdges(n, std::move(e));
}

// ---- Random families.

Graph ErdosRenyi(size_t n, double p, Rng& rng) {
  DPNODE_CHECK(p >= 0 && p <= 1, "p = %g", p);
  std::vector<Edge> e;
  if (p >= 1) return CompleteGraph(n);
  if (p > 0) {
    // Batagelj & Brandes (2005): skip a geometric number of candidate pairs.
    const double log_q = std::log1p(-p);
    int64_t v = 1, w = -1;
    const auto nn = static_cast<int64_t>(n);
    while (v < nn) {
      const double r = rng.Uniform();
      w += 1 + static_cast<int64_t>(std::floor(std::log1p(-r) / log_q));
      while (w >= v && v < nn) {
        w -= v;
        ++v;
      }
      if (v < nn) e.emplace_back(static_cast<uint32_t>(w), static_cast<uint32_t>(v));
    }
  }
  Graph g = Graph::FromEdges(n, e);
  size_t count = 0;
  const std::vector<uint32_t> comp = Components(g, &count);
  if (count <= 1) return g;
  std::vector<std::vector<uint32_t>> members(count);
  for (uint32_t v = 0; v < n; ++v) members[comp[v]].push_back(v);
  for (size_t c = 0; c + 1 < count; ++c) {
    const uint32_t a = members[c][rng.Below(members[c].size())];
    const uint32_t b = members[c + 1][rng.Below(members[c + 1].size())];
    e.emplace_back(a, b);
  }
  return Graph::FromEdges(n, std::move(e));
}

Result<Graph> RandomRegular(size_t n, size_t k, Rng& rng) {
  if (k == 0 || k >= n || (n * k) % 2 != 0) {
    return Status::InvalidArgument("random regular graph needs 0 < k < n and n*k even (n=" + std::to_string(n) +
                                   ", k=" + std::to_string(k) + ")");
  }
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    std::vector<uint32_t> stubs;
    stubs.reserve(n * k);
    for (uint32_t v = 0; v < n; ++v) stubs.insert(stubs.end(), k, v);
    std::vector<std::vector<uint32_t>> adj(n);
    std::vector<Edge> edges;
    edges.reserve(n * k / 2);
    size_t failures = 0;
    bool stuck = false;
    while (!stubs.empty()) {
      const size_t i = rng.Below(stubs.size());
      size_t j = rng.Below(stubs.size() - 1);
      if (j >= i) ++j;
      const uint32_t u = stubs[i], v = stubs[j];
      const bool ok = u != v && std::find(adj[u].begin(), adj[u].end(), v) == adj[u].end();
      if (!ok) {
        if (++failures > 1000) {
          stuck = true;
          break;
        }
        continue;
      }
      failures = 0;
      adj[u].push_back(v);
      adj[v].push_back(u);
      edges.emplace_back(u, v);
      // Remove the larger index first so the smaller stays valid.
      for (size_t idx : {std::max(i, j), std::min(i, j)}) {
        stubs[idx] = stubs.back();
        stubs.pop_back();
      }
    }
    if (stuck) continue;
    Graph g = Graph::FromEdges(n, std::move(edges));
    if (IsConnected(g)) return g;
  }
  return Status::Internal("no connected " + std::to_string(k) + "-regular graph on " + std::to_string(n) +
                          " vertices after " + std::to_string(kMaxAttempts) + " attempts");
}

Result<Graph> WattsStrogatz(size_t n, size_t k, double beta, Rng& rng) {
  if (k < 2 || k % 2 != 0 || k >= n || !(beta >= 0 && beta <= 1)) {
    return Status::InvalidArgument("Watts-Strogatz needs even 2 <= k < n and 0 <= beta <= 1");
  }
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    std::unordered_set<uint64_t> present;
    std::vector<Edge> edges;
    for (uint32_t u = 0; u < n; ++u) {
      for (size_t j = 1; j <= k / 2; ++j) {
        const auto v = static_cast<uint32_t>((u + j) % n);
        edges.emplace_back(u, v);
        present.insert(EdgeKey(u, v));
      }
    }
    for (Edge& e : edges) {
      if (rng.Uniform() >= beta) continue;
      const uint32_t u = e.first;
      // A vertex adjacent to everyone cannot rewire.
      for (int tries = 0; tries < 64; ++tries) {
        const auto w = static_cast<uint32_t>(rng.Below(n));
        if (w == u || present.count(EdgeKey(u, w)) != 0) continue;
        present.erase(EdgeKey(u, e.second));
        present.insert(EdgeKey(u, w));
        e.second = w;
        break;
      }
    }
    Graph g = Graph::FromEdges(n, std::move(edges));
    if (IsConnected(g)) return g;
  }
  return Status::Internal("no connected Watts-Strogatz graph after " + std::to_string(kMaxAttempts) + " attempts");
}

Result<Graph> BarabasiAlbert(size_t n, size_t m, Rng& rng) {
  if (m < 1 || m >= n) return Status::InvalidArgument("Barabasi-Albert needs 1 <= m < n");
  std::vector<Edge> edges;
  std::vector<uint32_t> repeated;  // each vertex once per unit of degree
  for (uint32_t u = 0; u <= m; ++u) {
    for (uint32_t v = u + 1; v <= m; ++v) {
      edges.emplace_back(u, v);
      repeated.push_back(u);
      repeated.push_back(v);
    }
  }
  std::vector<uint32_t> chosen;
  for (auto v = static_cast<uint32_t>(m + 1); v < n; ++v) {
    chosen.clear();
    while (chosen.size() < m) {
      const uint32_t t = repeated[rng.Below(repeated.size())];
      if (std::find(chosen.begin(), chosen.end(), t) == chosen.end()) chosen.push_back(t);
    }
    for (uint32_t t : chosen) {
      edges.emplace_back(t, v);
      repeated.push_back(t);
      repeated.push_back(v);
    }
  }
  return Graph::FromEdges(n, std::move(edges));
}

Result<Graph> ParseEdgeList(std::string_view text) {
  std::vector<Edge> edges;
  uint64_t max_id = 0;
  bool any = false;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string line(text.substr(pos, end - pos));
    pos = end + 1;
    ++line_no;
    const size_t first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#' || line[first] == '%') continue;
    std::istringstream in(line);
    long long u = -1, v = -1;
    if (!(in >> u >> v) || u < 0 || v < 0 || u >= 0xFFFFFFFFll || v >= 0xFFFFFFFFll) {
      return Status::InvalidArgument("edge list line " + std::to_string(line_no) +
                                     ": expected two non-negative vertex ids, got '" + line + "'");
    }
    edges.emplace_back(static_cast<uint32_t>(u), static_cast<uint32_t>(v));
    max_id = std::max<uint64_t>(max_id, static_cast<uint64_t>(std::max(u, v)));
    any = true;
  }
  if (!any) return Status::InvalidArgument("edge list has no edges");
  return Graph::FromEdges(max_id + 1, std::move(edges));
}

Result<Graph> LoadEdgeList(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError("cannot open edge list " + path);
  std::stringstream buf;
  buf << in.rdbuf();
  Result<Graph> g = ParseEdgeList(buf.str());
  if (!g.ok()) return g.status().WithContext(path);
  return g;
}

// ---- Mixing matrix and spectral gap.

MixingMatrix::MixingMatrix(Graph graph) : graph_(std::move(graph)) {
  const Graph& g = graph_;
  const size_t n = g.num_nodes();
  self_.assign(n, 1.0);
  weight_.resize(2 * g.num_edges());
  for (uint32_t u = 0; u < n; ++u) {
    size_t k = offset(u);
    for (const uint32_t* p = g.neighbors_begin(u); p != g.neighbors_end(u); ++p, ++k) {
      const double w = 1.0 / (1.0 + static_cast<double>(std::max(g.degree(u), g.degree(*p))));
      weight_[k] = w;
      self_[u] -= w;
    }
  }
}

void MixingMatrix::Apply(const double* x, double* y) const {
  const size_t n = graph_.num_nodes();
  for (uint32_t u = 0; u < n; ++u) {
    double s = self_[u] * x[u];
    const double* w = weight_.data() + offset(u);
    for (const uint32_t* p = graph_.neighbors_begin(u); p != graph_.neighbors_end(u); ++p, ++w) s += *w * x[*p];
    y[u] = s;
  }
}

std::vector<double> MixingMatrix::Dense() const {
  const size_t n = size();
  std::vector<double> a(n * n, 0.0);
  for (uint32_t u = 0; u < n; ++u) {
    a[u * n + u] = self_[u];
    size_t k = 0;
    for (const uint32_t* p = graph_.neighbors_begin(u); p != graph_.neighbors_end(u); ++p, ++k) {
      a[u * n + *p] = edge_weight(u, k);
    }
  }
  return a;
}

std::vector<double> SymmetricEigenvalues(std::vector<double> a, size_t n) {
  DPNODE_CHECK(a.size() == n * n, "matrix size");
  auto at = [&a, n](size_t i, size_t j) -> double& { return a[i * n + j]; };
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0, total = 0;
    for (size_t i = 0; i < n; ++i) {
      for (size_t j = 0; j < n; ++j) {
        total += at(i, j) * at(i, j);
        if (i != j) off += at(i, j) * at(i, j);
      }
    }
    if (off <= 1e-30 * std::max(total, 1e-300)) break;
    for (size_t p = 0; p + 1 < n; ++p) {
      for (size_t q = p + 1; q < n; ++q) {
        const double apq = at(p, q);
        if (apq == 0) continue;
        // Rotation that zeroes a_pq (Golub & Van Loan, symmetric Schur).
        const double tau = (at(q, q) - at(p, p)) / (2 * apq);
        const double t = (tau >= 0 ? 1.0 : -1.0) / (std::fabs(tau) + std::sqrt(1 + tau * tau));
        const double c = 1 / std::sqrt(1 + t * t);
        const double s = t * c;
        for (size_t k = 0; k < n; ++k) {
          const double akp = at(k, p), akq = at(k, q);
          at(k, p) = c * akp - s * akq;
          at(k, q) = s * akp + c * akq;
        }
        for (size_t k = 0; k < n; ++k) {
          const double apk = at(p, k), aqk = at(q, k);
          at(p, k) = c * apk - s * aqk;
          at(q, k) = s * apk + c * aqk;
        }
      }
    }
  }
  std::vector<double> ev(n);
  for (size_t i = 0; i < n; ++i) ev[i] = at(i, i);
  std::sort(ev.begin(), ev.end(), std::greater<double>());
  return ev;
}

SpectralGap SpectralGapDense(const MixingMatrix& w) {
  const size_t n = w.size();
  if (n < 2) return FromExtremes(0, 0);
  std::vector<double> ev = SymmetricEigenvalues(w.Dense(), n);
  // ev[0] is the eigenvalue 1 of the all-ones vector (the largest, since W
  // is stochastic); on a disconnected graph ev[1] is 1 as well.
  return FromExtremes(ev[1], ev[n - 1]);
}

SpectralGap SpectralGapLanczos(const MixingMatrix& w, uint64_t seed, int max_iterations, double tolerance) {
  const size_t n = w.size();
  if (n < 2) return FromExtremes(0, 0);
  const size_t max_steps = std::min<size_t>(static_cast<size_t>(std::max(1, max_iterations)), n - 1);
  Xoshiro256 rng(seed);
  std::vector<double> q(n), q_prev(n, 0.0), z(n);
  for (double& v : q) v = rng.Uniform() - 0.5;
  RemoveMean(q);
  double norm = std::sqrt(Dot(q, q));
  for (double& v : q) v /= norm;
  std::vector<double> alpha, beta;
  SpectralGap result;
  result.converged = false;
  for (size_t j = 0; j < max_steps; ++j) {
    w.Apply(q.data(), z.data());
    const double a = Dot(z, q);
    alpha.push_back(a);
    const double b_prev = j > 0 ? beta[j - 1] : 0.0;
    for (size_t i = 0; i < n; ++i) z[i] -= a * q[i] + b_prev * q_prev[i];
    // Rounding lets the eigenvalue-1 direction creep back; keep it out.
    RemoveMean(z);
    const double b = std::sqrt(Dot(z, z));
    beta.push_back(b);
    const size_t m = j + 1;
    const bool last = m == max_steps || b < 1e-13;
    if (last || m % 10 == 0) {
      const double top = TridiagonalEigenvalue(alpha, beta, m, m - 1);
      const double bottom = TridiagonalEigenvalue(alpha, beta, m, 0);
      const double r_top = b * LastEigenvectorComponent(alpha, beta, m, top);
      const double r_bottom = b * LastEigenvectorComponent(alpha, beta, m, bottom);
      SpectralGap r = FromExtremes(top, bottom);
      r.iterations = static_cast<int>(m);
      r.converged = (r_top < tolerance && r_bottom < tolerance) || b < 1e-13 || m == n - 1;
      result = r;
      if (r.converged || last) break;
    }
    q_prev.swap(q);
    for (size_t i = 0; i < n; ++i) q[i] = z[i] / b;
  }
  return result;
}

}  // namespace dpnode::sim
