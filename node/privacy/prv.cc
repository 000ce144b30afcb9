// PRV accountant (Gopi, Lee, Wutschitz 2021), following Opacus's
// PRVAccountant (opacus/accountants/prv.py and analysis/prv/*.py) step by
// step so that our [lower, upper] interval agrees with Opacus's:
//
//  1. Domain: L = max(RDP ε of the whole history at δ_err/4, RDP ε of one step
//     of each block at δ_err/(8T), eps_error) + 3; mesh
//     dt = eps_error / sqrt(T·log(12/δ_err)/2); grid t_i = (i − K)·dt,
//     K = ceil(L/dt), N = 2K + 2 points (Opacus's Domain.create_aligned).
//  2. Each block's PRV, truncated to [t_0, t_{N−1}] and renormalised, is
//     discretised to bin masses CDF(t_i + dt/2) − CDF(t_i − dt/2); the grid is
//     then shifted so the discrete mean equals the continuous truncated mean.
//  3. Composition is circular convolution by FFT: Opacus self-composes each
//     block as irfft(rfft(pmf)^n); we do the same and multiply the blocks'
//     spectra before one inverse transform. Opacus instead convolves composed
//     blocks linearly and truncates; both only move the sub-δ_err mass that
//     falls outside the domain. Our FFT length is the next power of two ≥ N
//     (the pmf zero-padded), so less mass wraps around than in Opacus.
//  4. δ(ε) = Σ_{t_j ≥ ε} p_j (1 − e^{ε − t_j}) is inverted exactly between
//     grid points at δ − δ_err, δ and δ + δ_err; ±eps_error gives the bounds.
#include "node/privacy/prv.h"

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdio>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "node/privacy/rdp.h"

namespace dpnode::privacy {
namespace {

using Complex = std::complex<double>;

constexpr double kPi = 3.14159265358979323846;
constexpr double kSqrt2 = 1.41421356237309504880;
// The mesh shrinks like 1/√T, so 10^15 steps would need ~10^9 points even at
// eps_error = 1: no grid cap admits it.
constexpr int64_t kMaxTotalSteps = int64_t{1} << 50;

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

// Product without the NaN/Inf recovery path std::complex's operator* takes
// (a libgcc call per multiply); inputs here are always finite.
inline Complex Mul(Complex a, Complex b) {
  return {a.real() * b.real() - a.imag() * b.imag(), a.real() * b.imag() + a.imag() * b.real()};
}

// Radix-2 complex FFT of power-of-two length n without any bit-reversal
// pass: Forward takes natural order and leaves X_{rev(p)} at position p
// (rev reverses log2 n bits); Inverse takes that order back to natural order.
// Pointwise products do not care about the order, and skipping the
// permutation plus recursing depth-first keeps a 64 MB transform in cache
// for all but its first few levels.
//
// Level s splits each block b (of 2^s) of the polynomial ring modulo
// x^{n/2^s} − c_b into its two halves with ζ_b = zeta[b] =
// e^{−2πi·rev_{log2 n − 1}(b)/n}, the same table for every level.
class BitReversedFft {
 public:
  explicit BitReversedFft(size_t n) : n_(n), zeta_(std::max<size_t>(n / 2, 1)) {
    int bits = 0;
    while ((size_t{1} << (bits + 1)) < n) ++bits;  // log2(n) − 1
    for (size_t b = 0; b < zeta_.size(); ++b) {
      size_t r = 0;
      for (int i = 0; i < bits; ++i) r |= ((b >> i) & 1) << (bits - 1 - i);
      zeta_[b] = std::polar(1.0, -2 * kPi * static_cast<double>(r) / static_cast<double>(n));
    }
  }

  void Forward(Complex* a) const { ForwardBlock(a, n_, 0); }
  // Unscaled: returns n times the inverse transform.
  void Inverse(Complex* a) const { InverseBlock(a, n_, 0); }
  // zeta(b) for b < n/2; see RealFft for its second use.
  Complex zeta(size_t b) const { return zeta_[b]; }

 private:
  // Blocks of up to 2^12 points (64 KB) finish their levels in cache.
  static constexpr size_t kLeaf = size_t{1} << 12;

  void ForwardBlock(Complex* a, size_t len, size_t b) const {
    if (len > kLeaf) {
      Butterflies(a, len / 2, zeta_[b]);
      ForwardBlock(a, len / 2, 2 * b);
      ForwardBlock(a + len / 2, len / 2, 2 * b + 1);
      return;
    }
    for (size_t sub = len; sub >= 2; sub /= 2) {
      const size_t count = len / sub;
      for (size_t c = 0; c < count; ++c) Butterflies(a + c * sub, sub / 2, zeta_[b * count + c]);
    }
  }

  void InverseBlock(Complex* a, size_t len, size_t b) const {
    if (len > kLeaf) {
      InverseBlock(a, len / 2, 2 * b);
      InverseBlock(a + len / 2, len / 2, 2 * b + 1);
      InverseButterflies(a, len / 2, std::conj(zeta_[b]));
      return;
    }
    for (size_t sub = 2; sub <= len; sub *= 2) {
      const size_t count = len / sub;
      for (size_t c = 0; c < count; ++c) {
        InverseButterflies(a + c * sub, sub / 2, std::conj(zeta_[b * count + c]));
      }
    }
  }

  // (u, v) → (u + ζv, u − ζv) across the two halves.
  static void Butterflies(Complex* a, size_t half, Complex z) {
    for (size_t j = 0; j < half; ++j) {
      const Complex u = a[j];
      const Complex v = Mul(a[j + half], z);
      a[j] = u + v;
      a[j + half] = u - v;
    }
  }
  // (u', v') → (u' + v', conj(ζ)(u' − v')), twice the inverse of the above.
  static void InverseButterflies(Complex* a, size_t half, Complex zc) {
    for (size_t j = 0; j < half; ++j) {
      const Complex u = a[j];
      const Complex v = a[j + half];
      a[j] = u + v;
      a[j + half] = Mul(u - v, zc);
    }
  }

  size_t n_;
  std::vector<Complex> zeta_;
};

// Real FFT of length P = 2n via one complex FFT of length n, with the
// spectrum in the bit-reversed order of BitReversedFft: position p holds
// X_{rev(p)}, and position 0 packs the two real values (X_0, X_n).
//
// Untangling the half-length transform pairs X_k with X_{n−k}; in
// bit-reversed order that partner of position p ∈ [2^m, 2^{m+1}) is
// 3·2^m − 1 − p, and the twiddle W^k = e^{−iπk/n} is zeta(p) (p < n/2) or
// zeta(p − n/2)·e^{−iπ/n}, so every access is sequential.
class RealFft {
 public:
  explicit RealFft(size_t real_size)
      : n_(real_size / 2), fft_(n_), w1_(std::polar(1.0, -kPi / static_cast<double>(n_))) {}

  // buf holds x_0..x_{P−1} as (x_{2k} + i·x_{2k+1}) on entry.
  void Forward(std::vector<Complex>& buf) const {
    fft_.Forward(buf.data());
    const Complex z0 = buf[0];
    buf[0] = {z0.real() + z0.imag(), z0.real() - z0.imag()};
    ForEachPair([&](size_t p, size_t q, Complex w) {
      const Complex zk = buf[p];
      const Complex zm = buf[q];
      // X_k = E_k + W^k O_k with E_k = (Z_k + conj Z_{n−k})/2,
      // O_k = (Z_k − conj Z_{n−k})/(2i); X_{n−k} = conj E_k − conj(W^k O_k).
      const Complex ek = 0.5 * (zk + std::conj(zm));
      const Complex ok = Complex(0, -0.5) * (zk - std::conj(zm));
      const Complex wo = Mul(w, ok);
      buf[p] = ek + wo;
      if (q != p) buf[q] = std::conj(ek - wo);
    });
  }

  // Inverse of Forward, including the 1/P scaling; buf then holds the reals
  // packed as on entry to Forward.
  void Inverse(std::vector<Complex>& buf) const {
    const Complex x0 = buf[0];
    buf[0] = {0.5 * (x0.real() + x0.imag()), 0.5 * (x0.real() - x0.imag())};
    ForEachPair([&](size_t p, size_t q, Complex w) {
      const Complex xk = buf[p];
      const Complex xm = buf[q];
      const Complex ek = 0.5 * (xk + std::conj(xm));
      const Complex ok = Mul(std::conj(w), 0.5 * (xk - std::conj(xm)));
      // Z_k = E_k + i O_k; Z_{n−k} = conj E_k + i conj O_k.
      buf[p] = ek + Complex(0, 1) * ok;
      if (q != p) buf[q] = std::conj(ek) + Complex(0, 1) * std::conj(ok);
    });
    fft_.Inverse(buf.data());
    const double scale = 1.0 / static_cast<double>(n_);
    for (Complex& c : buf) c *= scale;
  }

 private:
  // Calls f(p, partner, W^{rev(p)}) once per pair of positions ≠ 0.
  template <typename F>
  void ForEachPair(F&& f) const {
    for (size_t lo = 1; lo < n_; lo *= 2) {
      const size_t count = lo == 1 ? 1 : lo / 2;
      for (size_t p = lo; p < lo + count; ++p) f(p, 3 * lo - 1 - p, W(p));
    }
  }
  Complex W(size_t p) const { return p < n_ / 2 ? fft_.zeta(p) : Mul(fft_.zeta(p - n_ / 2), w1_); }

  size_t n_;
  BitReversedFft fft_;
  Complex w1_;
};

// z^n for a spectrum value; values whose power underflows become exact zeros.
Complex Power(Complex z, int64_t n, double abs2_floor) {
  const double r2 = std::norm(z);
  if (r2 <= abs2_floor) return {0, 0};
  if (n <= 64) {
    Complex result(1, 0);
    for (int64_t e = n; e > 0; e >>= 1) {
      if (e & 1) result = Mul(result, z);
      z = Mul(z, z);
    }
    return result;
  }
  const double nd = static_cast<double>(n);
  return std::polar(std::exp(0.5 * nd * std::log(r2)), nd * std::arg(z));
}

// The privacy loss Y = log(μ(o)/μ0(o)), o ~ μ, of one Poisson-subsampled
// Gaussian step, μ = (1−q)N(0,σ²) + qN(1,σ²), μ0 = N(0,σ²) (Gopi et al.,
// Prop. B1/B4). Y > log(1−q); with z = log((e^t + q − 1)/q), Y ≤ t ⇔
// o ≤ σ²z + 1/2.
class SubsampledGaussianPrv {
 public:
  SubsampledGaussianPrv(double q, double sigma)
      : q_(q), sigma_(sigma), log1mq_(q < 1 ? std::log1p(-q) : -std::numeric_limits<double>::infinity()) {}

  // CDF at t, represented by whichever of F(t), 1 − F(t) is the accurate one:
  // the right tail decides δ, so it must not be computed as 1 − F.
  struct Tail {
    double value = 0;
    bool upper = false;  // value is 1 − F(t) rather than F(t)
    double Cdf() const { return upper ? 1 - value : value; }
  };

  Tail Eval(double t) const {
    if (!(t > log1mq_)) return {0, false};
    const double z = ZOfT(t);
    const double s2 = sigma_ * sigma_;
    const double a = (z * s2 - 0.5) / (kSqrt2 * sigma_);
    const double b = (z * s2 + 0.5) / (kSqrt2 * sigma_);
    if (a >= 0) return {0.5 * q_ * std::erfc(a) + 0.5 * (1 - q_) * std::erfc(b), true};
    return {0.5 * q_ * std::erfc(-a) + 0.5 * (1 - q_) * std::erfc(-b), false};
  }

  // F(t) < 2.4e-31 below NegligibleBelow() and 1 − F(t) < 2.4e-31 above
  // NegligibleAbove(): there the relevant Gaussian argument exceeds 8.2 and
  // erfc(8.2)/2 < 2.4e-31.
  double NegligibleBelow() const { return TOfZ((-8.2 * kSqrt2 * sigma_ - 0.5) / (sigma_ * sigma_)); }
  double NegligibleAbove() const { return TOfZ((8.2 * kSqrt2 * sigma_ + 0.5) / (sigma_ * sigma_)); }

  // P(x < Y ≤ y) from Eval(x), Eval(y), x ≤ y.
  static double Mass(const Tail& x, const Tail& y) {
    if (x.upper && y.upper) return x.value - y.value;
    if (!x.upper && !y.upper) return y.value - x.value;
    return y.Cdf() - x.Cdf();
  }

  // E[Y | t_min < Y ≤ t_max] given that conditional mass, integrating over o
  // (where the density is a plain Gaussian mixture) with composite
  // Gauss–Legendre. Opacus integrates the truncated CDF with scipy's quad;
  // the mean sets the grid shift that T steps multiply, so it must be right
  // to far better than eps_error/T.
  double TruncatedMean(double t_min, double t_max, double mass) const {
    const double s2 = sigma_ * sigma_;
    auto o_of = [&](double t) { return s2 * ZOfT(t) + 0.5; };
    // Beyond ±39σ of either component the density is below e^-760: zero.
    double lo = -39 * sigma_;
    double hi = 1 + 39 * sigma_;
    if (t_min > log1mq_) lo = std::max(lo, o_of(t_min));
    hi = std::min(hi, o_of(t_max));
    if (!(hi > lo)) return 0.5 * (t_min + t_max);
    auto integrand = [&](double o) {
      const double u0 = o / sigma_;
      const double u1 = (o - 1) / sigma_;
      const double density =
          ((1 - q_) * std::exp(-0.5 * u0 * u0) + q_ * std::exp(-0.5 * u1 * u1)) /
          (sigma_ * std::sqrt(2 * kPi));
      // Y can be −∞ where the density is exactly 0 (q = 1, far left).
      return density == 0 ? 0.0 : TOfZ((o - 0.5) / s2) * density;
    };
    // The integrand varies on scales σ (the Gaussians) and σ² (y in o).
    const double panel = std::min(sigma_, s2) / 8;
    const int64_t panels = std::max<int64_t>(1, static_cast<int64_t>(std::ceil((hi - lo) / panel)));
    const double width = (hi - lo) / static_cast<double>(panels);
    const std::vector<std::pair<double, double>> rule = MakeGaussLegendre();
    double sum = 0;
    for (int64_t p = 0; p < panels; ++p) {
      const double mid = lo + (static_cast<double>(p) + 0.5) * width;
      double panel_sum = 0;
      for (const auto& [x, w] : rule) panel_sum += w * integrand(mid + 0.5 * width * x);
      sum += 0.5 * width * panel_sum;
    }
    return sum / mass;
  }

 private:
  // 12-point Gauss–Legendre nodes and weights on [−1, 1], by Newton's method
  // on P_12 (computed, not tabulated, so there is no table to mistype).
  static std::vector<std::pair<double, double>> MakeGaussLegendre() {
    constexpr int kPoints = 12;
    std::vector<std::pair<double, double>> rule;
    for (int i = 1; i <= kPoints; ++i) {
      double x = std::cos(kPi * (i - 0.25) / (kPoints + 0.5));
      double dp = 0;
      for (int iter = 0; iter < 100; ++iter) {
        double p0 = 1, p1 = x;
        for (int k = 2; k <= kPoints; ++k) {
          const double p2 = ((2 * k - 1) * x * p1 - (k - 1) * p0) / k;
          p0 = p1;
          p1 = p2;
        }
        dp = kPoints * (x * p1 - p0) / (x * x - 1);
        const double dx = p1 / dp;
        x -= dx;
        if (std::abs(dx) < 1e-16) break;
      }
      rule.emplace_back(x, 2 / ((1 - x * x) * dp * dp));
    }
    return rule;
  }

  // z(t) = log((e^t + q − 1)/q) for t > log(1 − q), in whichever form keeps
  // its precision (and is exactly t for q = 1).
  double ZOfT(double t) const {
    return q_ == 1 ? t : std::log1p(std::expm1(t) / q_);
  }
  // Its inverse, t = log(1 − q + q·e^z): the privacy loss at o = σ²z + 1/2.
  double TOfZ(double z) const {
    if (z >= 0) return z + std::log(q_ + (1 - q_) * std::exp(-z));
    const double v = q_ * std::expm1(z);
    return v > -0.5 ? std::log1p(v) : std::log((1 - q_) + q_ * std::exp(z));
  }

  double q_;
  double sigma_;
  double log1mq_;
};

// The discretisation grid shared by all blocks: t_i = (i − K)·dt for
// 0 ≤ i < N = 2K + 2, zero-padded to fft_size points.
struct Grid {
  double dt = 0;
  int64_t k = 0;
  int64_t size = 0;      // N, Opacus's domain size
  int64_t fft_size = 0;  // power of two ≥ N
  double t_min() const { return -static_cast<double>(k) * dt; }
  double t_max() const { return static_cast<double>(size - 1 - k) * dt; }
};

Result<Grid> MakeGrid(const History& history, int64_t total_steps, double eps_error,
                      double delta_error, int64_t max_grid_size) {
  // Remark 5.6 of Gopi et al. as Opacus implements it: RDP tail bounds of the
  // whole composition and of single steps.
  Result<RdpEpsilon> whole = RdpEpsilonFor(history, delta_error / 4);
  if (!whole.ok()) return whole.status().WithContext("PRV domain");
  double l_max = whole->epsilon;
  for (const StepBlock& block : history) {
    Result<RdpEpsilon> one =
        RdpEpsilonFor({{block.sample_rate, block.noise_multiplier, 1}},
                      delta_error / (8 * static_cast<double>(total_steps)));
    if (!one.ok()) return one.status().WithContext("PRV domain");
    l_max = std::max(l_max, one->epsilon);
  }
  const double half_width = std::max(l_max, eps_error) + 3;
  const double dt =
      eps_error / std::sqrt(static_cast<double>(total_steps) * std::log(12 / delta_error) / 2);
  const double k = std::ceil(half_width / dt);
  if (!std::isfinite(k) || 2 * k + 2 > static_cast<double>(max_grid_size)) {
    return Status::OutOfRange("PRV needs a grid of " + Num(2 * k + 2) + " points (domain ±" +
                              Num(half_width) + ", mesh " + Num(dt) + "), above the cap of " +
                              Num(static_cast<double>(max_grid_size)) +
                              "; raise eps_error or use the RDP accountant");
  }
  Grid grid;
  grid.dt = dt;
  grid.k = static_cast<int64_t>(k);
  grid.size = 2 * grid.k + 2;
  grid.fft_size = 4;
  while (grid.fft_size < grid.size) grid.fft_size *= 2;
  if (grid.fft_size > max_grid_size) {
    return Status::OutOfRange("PRV needs an FFT of " + Num(static_cast<double>(grid.fft_size)) +
                              " points, above the cap of " +
                              Num(static_cast<double>(max_grid_size)) +
                              "; raise eps_error or use the RDP accountant");
  }
  return grid;
}

// Writes the truncated, discretised PRV of one step into buf (packed reals)
// and returns the mean-preserving shift of its grid.
Result<double> Discretise(const SubsampledGaussianPrv& prv, const Grid& grid,
                          std::vector<Complex>& buf) {
  double* pmf = reinterpret_cast<double*>(buf.data());
  const double t_min = grid.t_min();
  const double t_max = grid.t_max();
  using Tail = SubsampledGaussianPrv::Tail;
  const Tail at_min = prv.Eval(t_min);
  const Tail at_max = prv.Eval(t_max);
  const double mass = SubsampledGaussianPrv::Mass(at_min, at_max);
  if (!(mass > 0)) return Status::Internal("PRV truncated to the domain has no mass");
  // Bin i covers [t_i − dt/2, t_i + dt/2] clipped to [t_min, t_max]. Bins
  // beyond prv.Negligible{Below,Above}() hold < 1e-30 in all and stay 0,
  // which saves most of the erfc calls on wide grids.
  const auto bin_of = [&](double t, double if_nan) {
    double i = std::floor((t - t_min) / grid.dt);
    if (std::isnan(i)) i = if_nan;
    return static_cast<int64_t>(std::clamp(i, -4.0, static_cast<double>(grid.size) + 4));
  };
  const double n = static_cast<double>(grid.size);
  const int64_t first = std::max<int64_t>(0, bin_of(prv.NegligibleBelow(), 0) - 2);
  const int64_t last = std::min<int64_t>(grid.size - 1, bin_of(prv.NegligibleAbove(), n) + 2);
  std::fill(pmf, pmf + grid.fft_size, 0.0);
  const auto edge = [&](int64_t i) { return t_min + (static_cast<double>(i) - 0.5) * grid.dt; };
  Tail left = first == 0 ? at_min : prv.Eval(edge(first));
  double discrete_mean = 0;
  for (int64_t i = first; i <= last; ++i) {
    const Tail right = i + 1 < grid.size ? prv.Eval(edge(i + 1)) : at_max;
    const double p = SubsampledGaussianPrv::Mass(left, right) / mass;
    pmf[i] = p;
    discrete_mean += (t_min + static_cast<double>(i) * grid.dt) * p;
    left = right;
  }
  const double shift = prv.TruncatedMean(t_min, t_max, mass) - discrete_mean;
  if (!(std::abs(shift) < grid.dt / 2)) {
    return Status::Internal("PRV discrete mean differs from the continuous mean by " +
                            Num(shift) + ", more than half the mesh " + Num(grid.dt));
  }
  return shift;
}

// ε at which δ(ε) = target on the composed pmf, for each target (Opacus's
// DiscretePRV.compute_epsilon). p(j) is the mass at t_min + j·dt.
template <typename Pmf>
Status InvertDelta(const Pmf& p, int64_t size, double t_min, double dt,
                   const double (&targets)[3], double (&eps)[3]) {
  // Scanning down from the top: d1 = Σ_{l≥j} p_l, d2 = Σ_{l≥j} p_l e^{t_j − t_l}
  // (kept relative to t_j, so nothing overflows), δ(t_j) = d1 − d2.
  // For each target take the smallest i with δ(t_l) ≤ target for all l ≥ i;
  // there δ(ε) = d1_i − e^{ε − t_i}·d2_i exactly for ε ∈ (t_{i−1}, t_i].
  const long double decay = std::exp(-static_cast<long double>(dt));
  long double d1 = 0, d2 = 0;
  long double prev_d1 = 0, prev_d2 = 0;
  bool found[3] = {false, false, false};
  int remaining = 3;
  for (int64_t j = size - 1; j >= 0 && remaining > 0; --j) {
    const long double pj = p(j);
    d1 += pj;
    d2 = pj + decay * d2;
    const long double delta_j = d1 - d2;
    for (int s = 0; s < 3; ++s) {
      if (found[s] || !(delta_j > targets[s])) continue;
      found[s] = true;
      --remaining;
      const long double ratio = (prev_d1 - targets[s]) / prev_d2;
      if (j + 1 >= size || !(ratio > 0)) return Status::Internal("PRV: cannot compute epsilon");
      eps[s] = t_min + static_cast<double>(j + 1) * dt + static_cast<double>(std::log(ratio));
    }
    prev_d1 = d1;
    prev_d2 = d2;
  }
  if (remaining > 0) {
    return Status::Internal("PRV: cannot compute epsilon (δ is reached below the domain)");
  }
  return Status::Ok();
}

}  // namespace

Result<PrvEpsilon> PrvEpsilonFor(const History& history, double delta, const PrvOptions& options) {
  DPNODE_RETURN_IF_ERROR(ValidateDelta(delta));
  for (const StepBlock& block : history) DPNODE_RETURN_IF_ERROR(ValidateStepBlock(block));
  if (!(options.eps_error > 0) || !std::isfinite(options.eps_error)) {
    return Status::InvalidArgument("PRV eps_error must be positive and finite, got " +
                                   Num(options.eps_error));
  }
  // Opacus's get_epsilon: delta_error defaults to δ/1000.
  const double delta_error = options.delta_error == 0 ? delta / 1000 : options.delta_error;
  if (!(delta_error > 0) || !(delta_error < delta)) {
    return Status::InvalidArgument("PRV delta_error must be in (0, δ), got " + Num(delta_error));
  }
  const History blocks = Compact(history);
  if (blocks.empty()) return PrvEpsilon{};
  int64_t total_steps = 0;
  for (const StepBlock& block : blocks) {
    // Far beyond any grid we could allocate; refused here to keep the sum exact.
    if (block.steps > kMaxTotalSteps - total_steps) {
      return Status::OutOfRange("PRV: more than " + Num(static_cast<double>(kMaxTotalSteps)) +
                                " steps in total");
    }
    total_steps += block.steps;
  }

  Result<Grid> made = MakeGrid(blocks, total_steps, options.eps_error, delta_error,
                               options.max_grid_size);
  if (!made.ok()) return made.status();
  const Grid& grid = *made;
  // Opacus refuses when rounding in the tail sums would swamp δ − δ_err.
  if (std::numeric_limits<long double>::epsilon() * static_cast<long double>(grid.fft_size) >
      delta - delta_error) {
    return Status::InvalidArgument("PRV: δ = " + Num(delta) +
                                   " is too small for floating point on a grid of " +
                                   Num(static_cast<double>(grid.fft_size)) + " points");
  }

  const RealFft fft(static_cast<size_t>(grid.fft_size));
  const size_t half = static_cast<size_t>(grid.fft_size / 2);
  std::vector<Complex> spectrum;  // product over blocks, once there are two
  std::vector<Complex> buf(half);
  double total_shift = 0;
  for (const StepBlock& block : blocks) {
    const SubsampledGaussianPrv prv(block.sample_rate, block.noise_multiplier);
    Result<double> shift = Discretise(prv, grid, buf);
    if (!shift.ok()) return shift.status();
    total_shift += static_cast<double>(block.steps) * *shift;
    fft.Forward(buf);
    // |z|^n below e^-1400 contributes nothing representable.
    const double floor = std::exp(-1400.0 / static_cast<double>(block.steps));
    // buf[0] packs the real values X_0 and X_{P/2}; raise them separately.
    const double x0 = std::pow(buf[0].real(), static_cast<double>(block.steps));
    const double xn = std::pow(buf[0].imag(), static_cast<double>(block.steps));
    for (size_t k = 1; k < half; ++k) buf[k] = Power(buf[k], block.steps, floor);
    buf[0] = {x0, xn};
    if (&block == &blocks.front()) {
      if (blocks.size() > 1) spectrum = buf;
    } else {
      spectrum[0] = {spectrum[0].real() * buf[0].real(), spectrum[0].imag() * buf[0].imag()};
      for (size_t k = 1; k < half; ++k) spectrum[k] = Mul(spectrum[k], buf[k]);
    }
  }
  if (blocks.size() > 1) {
    buf.swap(spectrum);
    spectrum = {};
  }
  fft.Inverse(buf);
  const double* circular = reinterpret_cast<const double*>(buf.data());

  // Circular index of composed grid point j: the T draws' indices sum to
  // j + (T − 1)·K (mod P).
  const int64_t p_size = grid.fft_size;
  // Both factors are reduced below P ≤ 2^31 first, so the product fits.
  const int64_t roll = ((total_steps - 1) % p_size) * (grid.k % p_size) % p_size;
  auto pmf = [&](int64_t j) { return circular[(j + roll) & (p_size - 1)]; };
  const double targets[3] = {delta - delta_error, delta, delta + delta_error};
  double eps[3] = {0, 0, 0};
  DPNODE_RETURN_IF_ERROR(
      InvertDelta(pmf, p_size, grid.t_min() + total_shift, grid.dt, targets, eps));
  PrvEpsilon result;
  result.upper = eps[0] + options.eps_error;
  result.estimate = eps[1];
  result.lower = eps[2] - options.eps_error;
  result.grid_size = grid.size;
  return result;
}

}  // namespace dpnode::privacy
