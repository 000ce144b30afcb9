// Rényi-DP accountant for the Poisson-subsampled Gaussian: per-step RDP by
// the series of Mironov, Talwar, Zhang 2019 (§3.3) in log space, composition
// by summation, and Opacus's RDP → (ε, δ) conversion.
//
// Everything here is evaluated in log space because A_α = E[(μ/μ0)^α] spans
// hundreds of orders of magnitude for small σ and large α. The series and
// their stopping rule follow Opacus (opacus/accountants/analysis/rdp.py) so
// that our figures agree with it, not merely approximate the same quantity;
// only the log-space subtraction is more careful than Opacus's (see LogSub).
#include "node/privacy/rdp.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>

namespace dpnode::privacy {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Opacus stops a fractional-order series at the first index whose two terms
// both fall below e^-30; A_α ≥ 1, so what is left is ~1e-13 relative.
constexpr double kSeriesCutoffLog = -30;
// Guard against an endless loop for pathological inputs: the terms decay at
// least like i^-(α+1), which meets the cutoff long before this for α > 1.
constexpr int64_t kMaxSeriesTerms = 2'000'000;

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// log(e^a + e^b).
double LogAdd(double a, double b) {
  const double hi = std::max(a, b);
  const double lo = std::min(a, b);
  if (lo == -kInf) return hi;
  return hi + std::log1p(std::exp(lo - hi));
}

// log(e^a − e^b) for a ≥ b; NaN when a < b (the difference is negative).
// log(1 − e^d) is split at d = −ln 2 (Mächler's log1mexp): log1p keeps the
// result exact when e^d is tiny, where Opacus's log(expm1(a − b)) + b loses
// up to ~1e-15 absolute — visible when A_α − 1 is itself ~1e-12.
double LogSub(double a, double b) {
  if (a < b) return kNaN;
  if (b == -kInf) return a;
  if (a == b) return -kInf;
  const double d = b - a;
  constexpr double kMinusLn2 = -0.69314718055994530942;
  return a + (d > kMinusLn2 ? std::log(-std::expm1(d)) : std::log1p(-std::exp(d)));
}

// log Φ(x), Φ the standard normal CDF, accurate to a few ulp everywhere,
// including the far left tail where Φ(x) underflows (same role as
// scipy.special.log_ndtr).
double LogNdtr(double x) {
  constexpr double kSqrtHalf = 0.70710678118654752440;
  if (x > -1) return std::log1p(-0.5 * std::erfc(x * kSqrtHalf));
  if (x > -20) return std::log(0.5 * std::erfc(-x * kSqrtHalf));
  // Φ(x) = φ(x)/|x| · (1 − 1/x² + 3/x⁴ − 15/x⁶ + …); at |x| ≥ 20 the terms
  // shrink by ≥ 1/400 per step long before the series starts to diverge.
  constexpr double kHalfLog2Pi = 0.91893853320467274178;
  const double inv_x2 = 1 / (x * x);
  double term = 1;
  double sum = 1;
  for (int k = 1; k < 40; ++k) {
    term *= -(2 * k - 1) * inv_x2;
    sum += term;
    if (std::fabs(term) < 1e-17) break;
  }
  return -0.5 * x * x - std::log(-x) - kHalfLog2Pi + std::log(sum);
}

// |binom(α, i)| for i = 0, 1, 2, … as a running product of (α − i + 1)/i,
// kept as mantissa × e^scale so that it neither overflows (large integer α)
// nor loses relative accuracy: each step costs two roundings, so index i is
// good to ~2i ulp, better than differences of lgamma values near 10³.
class BinomialSequence {
 public:
  explicit BinomialSequence(double alpha) : alpha_(alpha) {}

  // log|binom(α, i)| and its sign for the current i.
  double LogAbs() const { return log_scale_ + std::log(std::fabs(mantissa_)); }
  bool Positive() const { return mantissa_ > 0; }

  void Next() {
    ++i_;
    mantissa_ *= (alpha_ - static_cast<double>(i_ - 1));
    mantissa_ /= static_cast<double>(i_);
    const double magnitude = std::fabs(mantissa_);
    if (magnitude > 1e150 || (magnitude < 1e-150 && magnitude > 0)) {
      log_scale_ += std::log(magnitude);
      mantissa_ = mantissa_ > 0 ? 1 : -1;
    }
  }

 private:
  double alpha_;
  int64_t i_ = 0;
  double mantissa_ = 1;
  double log_scale_ = 0;
};

// log A_α for integer α ≥ 2:
//   A_α = Σ_{i=0..α} binom(α, i) q^i (1−q)^{α−i} exp((i² − i) / (2σ²)).
// All terms are positive; summed relative to the largest seen so far, with
// the leading term kept out of the sum so log1p keeps tiny A_α − 1 accurate.
double LogAIntegerOrder(double q, double sigma, int64_t alpha) {
  const double log_q = std::log(q);
  const double log_1mq = std::log1p(-q);
  const double inv_2s2 = 1 / (2 * sigma * sigma);
  BinomialSequence binom(static_cast<double>(alpha));
  double max_log = -kInf;  // largest term so far, in log space
  double rest = 0;         // Σ of the other terms / e^max_log
  for (int64_t i = 0; i <= alpha; ++i) {
    if (i > 0) binom.Next();
    const double di = static_cast<double>(i);
    const double t = binom.LogAbs() + di * log_q + (static_cast<double>(alpha) - di) * log_1mq +
                     (di * di - di) * inv_2s2;
    if (t > max_log) {
      rest = max_log == -kInf ? 0 : (rest + 1) * std::exp(max_log - t);
      max_log = t;
    } else {
      rest += std::exp(t - max_log);
    }
  }
  return max_log + std::log1p(rest);
}

// log A_α for fractional α, split at z0 where μ1/μ0 = (1−q)/q:
//   A_α = Σ_i binom(α, i) [ q^i (1−q)^{α−i} e^{(i²−i)/(2σ²)} Φ((z0 − i)/σ)
//                         + q^{α−i} (1−q)^i e^{(j²−j)/(2σ²)} Φ((j − z0)/σ) ],
// j = α − i. binom(α, i) changes sign for i > α, so the two partial sums are
// kept with signed log-space addition, exactly as Opacus accumulates them.
double LogAFractionalOrder(double q, double sigma, double alpha) {
  const double log_q = std::log(q);
  const double log_1mq = std::log1p(-q);
  const double inv_2s2 = 1 / (2 * sigma * sigma);
  const double z0 = sigma * sigma * std::log(1 / q - 1) + 0.5;
  BinomialSequence binom(alpha);
  double log_a0 = -kInf;
  double log_a1 = -kInf;
  for (int64_t i = 0; i < kMaxSeriesTerms; ++i) {
    if (i > 0) binom.Next();
    const double di = static_cast<double>(i);
    const double j = alpha - di;
    const double log_coef = binom.LogAbs();
    const double log_s0 = log_coef + di * log_q + j * log_1mq + (di * di - di) * inv_2s2 +
                          LogNdtr((z0 - di) / sigma);
    const double log_s1 = log_coef + j * log_q + di * log_1mq + (j * j - j) * inv_2s2 +
                          LogNdtr((j - z0) / sigma);
    if (binom.Positive()) {
      log_a0 = LogAdd(log_a0, log_s0);
      log_a1 = LogAdd(log_a1, log_s1);
    } else {
      log_a0 = LogSub(log_a0, log_s0);
      log_a1 = LogSub(log_a1, log_s1);
    }
    if (std::isnan(log_a0) || std::isnan(log_a1)) return kNaN;
    if (std::max(log_s0, log_s1) < kSeriesCutoffLog) return LogAdd(log_a0, log_a1);
  }
  return kNaN;  // did not converge: the caller skips this order
}

Status ValidateOrders(const std::vector<double>& orders) {
  if (orders.empty()) return Status::InvalidArgument("no RDP orders given");
  for (double alpha : orders) {
    if (!(alpha > 1) || !std::isfinite(alpha)) {
      return Status::InvalidArgument("RDP orders must be finite and > 1, got " + Num(alpha));
    }
  }
  return Status::Ok();
}

}  // namespace

const std::vector<double>& DefaultRdpOrders() {
  // Built the way Opacus builds DEFAULT_ALPHAS (1 + x/10.0): the optimal
  // order is compared for equality, so these must be the very same doubles
  // (rdp_test checks them bit for bit against Opacus's list).
  static const std::vector<double> kOrders = [] {
    std::vector<double> orders;
    for (int x = 1; x < 100; ++x) orders.push_back(1 + x / 10.0);
    for (int a = 12; a < 64; ++a) orders.push_back(a);
    return orders;
  }();
  return kOrders;
}

double SubsampledGaussianRdp(double sample_rate, double noise_multiplier, double order) {
  if (sample_rate == 0) return 0;
  if (noise_multiplier == 0) return kInf;
  if (sample_rate == 1) return order / (2 * noise_multiplier * noise_multiplier);
  if (std::isinf(order)) return kInf;
  const double log_a = std::floor(order) == order
                           ? LogAIntegerOrder(sample_rate, noise_multiplier,
                                              static_cast<int64_t>(order))
                           : LogAFractionalOrder(sample_rate, noise_multiplier, order);
  return log_a / (order - 1);
}

Result<RdpEpsilon> EpsilonFromRdp(const std::vector<double>& orders,
                                  const std::vector<double>& rdp, double delta) {
  DPNODE_RETURN_IF_ERROR(ValidateDelta(delta));
  DPNODE_RETURN_IF_ERROR(ValidateOrders(orders));
  if (rdp.size() != orders.size()) {
    return Status::InvalidArgument("got " + std::to_string(rdp.size()) + " RDP values for " +
                                   std::to_string(orders.size()) + " orders");
  }
  const double log_delta = std::log(delta);
  RdpEpsilon best{kInf, kNaN};
  bool any = false;
  for (size_t k = 0; k < orders.size(); ++k) {
    const double alpha = orders[k];
    const double eps =
        rdp[k] - (log_delta + std::log(alpha)) / (alpha - 1) + std::log((alpha - 1) / alpha);
    if (std::isnan(eps)) continue;
    // Strict '<' keeps the first of equal minima, as numpy's nanargmin does.
    if (!any || eps < best.epsilon) {
      best = {eps, alpha};
      any = true;
    }
  }
  if (best.epsilon < 0) best.epsilon = 0;
  return best;
}

namespace {

// RdpEpsilonFor's body; `curve(q, σ)` gives the per-step RDP at every order.
template <typename CurveFn>
Result<RdpEpsilon> ComposeRdp(const History& history, double delta,
                              const std::vector<double>& orders, CurveFn&& curve) {
  DPNODE_RETURN_IF_ERROR(ValidateDelta(delta));
  DPNODE_RETURN_IF_ERROR(ValidateOrders(orders));
  // Identical (q, σ) anywhere in the history share one per-step evaluation:
  // schedules that alternate between a few settings cost a few evaluations.
  std::vector<std::pair<StepBlock, double>> distinct;  // block, total steps
  for (const StepBlock& block : history) {
    DPNODE_RETURN_IF_ERROR(ValidateStepBlock(block));
    if (block.steps == 0) continue;
    bool merged = false;
    for (auto& [seen, steps] : distinct) {
      if (seen.sample_rate == block.sample_rate &&
          seen.noise_multiplier == block.noise_multiplier) {
        steps += static_cast<double>(block.steps);
        merged = true;
        break;
      }
    }
    if (!merged) distinct.emplace_back(block, static_cast<double>(block.steps));
  }
  if (distinct.empty()) return RdpEpsilon{0, 0};

  std::vector<double> rdp(orders.size(), 0.0);
  for (const auto& [block, steps] : distinct) {
    const std::vector<double>& per_step = curve(block.sample_rate, block.noise_multiplier);
    for (size_t k = 0; k < orders.size(); ++k) rdp[k] += steps * per_step[k];
  }
  return EpsilonFromRdp(orders, rdp, delta);
}

void FillCurve(double q, double sigma, const std::vector<double>& orders,
               std::vector<double>& out) {
  out.resize(orders.size());
  for (size_t k = 0; k < orders.size(); ++k) out[k] = SubsampledGaussianRdp(q, sigma, orders[k]);
}

}  // namespace

Result<RdpEpsilon> RdpEpsilonFor(const History& history, double delta,
                                 const std::vector<double>& orders) {
  std::vector<double> buffer;
  return ComposeRdp(history, delta, orders,
                    [&](double q, double sigma) -> const std::vector<double>& {
                      FillCurve(q, sigma, orders, buffer);
                      return buffer;
                    });
}

Result<RdpEpsilon> RdpCurveCache::EpsilonFor(const History& history, double delta) {
  const std::vector<double>& orders = DefaultRdpOrders();
  return ComposeRdp(history, delta, orders,
                    [&](double q, double sigma) -> const std::vector<double>& {
                      for (const Curve& c : curves_) {
                        if (c.sample_rate == q && c.noise_multiplier == sigma) return c.rdp;
                      }
                      if (curves_.size() >= kMaxCurves) {
                        FillCurve(q, sigma, orders, scratch_);
                        return scratch_;
                      }
                      curves_.push_back(Curve{q, sigma, {}});
                      FillCurve(q, sigma, orders, curves_.back().rdp);
                      return curves_.back().rdp;
                    });
}

}  // namespace dpnode::privacy
