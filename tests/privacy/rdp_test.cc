// Tests of the RDP accountant (node/privacy/rdp.h): agreement with Opacus to
// 6 significant digits on recorded reference cases, published values from
// Opacus's and TensorFlow Privacy's own tests, an independent numerical
// integration of A_α, and the monotonicity/composition properties ε must have.
#include "node/privacy/rdp.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "node/privacy/accountant.h"

namespace dpnode::privacy {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr long double kPi = 3.141592653589793238462643383279502884L;

// "6 significant digits", the agreement the issue asks for.
constexpr double kOpacusRelTolerance = 1e-6;

double RelErr(double got, double want) {
  if (got == want) return 0;
  return std::fabs(got - want) / std::fabs(want);
}

nlohmann::json LoadOpacusReference() {
  const std::string path =
      std::string(DPNODE_SOURCE_DIR) + "/tests/privacy/reference/opacus_rdp.json";
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), "cannot open ", path);
  return nlohmann::json::parse(in);
}

double Epsilon(const History& history, double delta,
               const std::vector<double>& orders = DefaultRdpOrders()) {
  Result<RdpEpsilon> r = RdpEpsilonFor(history, delta, orders);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return r->epsilon;
}

// A_α − 1 = ∫ φ_σ(z) [((1 − q) + q e^{(2z − 1)/(2σ²)})^α − 1] dz by the
// trapezoid rule, which converges geometrically for this smooth, Gaussian-
// tailed integrand. Independent of the series in rdp.cc; the "− 1" form keeps
// tiny A_α − 1 accurate. Returns log A_α.
double LogAByQuadrature(double q, double sigma, double alpha) {
  using LD = long double;
  const LD s = sigma;
  // The integrand's mass sits between z = 0 and roughly z = α (the tilt of
  // the second mixture component); 40σ either side is far into the tails.
  // Steps of σ/64 resolve both Gaussian-shaped components; the trapezoid
  // error for such integrands falls like exp(−2π²σ²/h²), far below 1e-18.
  const LD lo = -40 * s;
  const LD hi = static_cast<LD>(alpha) + 40 * s;
  const int n = static_cast<int>(std::ceil((hi - lo) / (s / 64)));
  const LD h = (hi - lo) / n;
  const LD inv_norm = 1 / (s * std::sqrt(2 * kPi));
  LD sum = 0;
  for (int k = 0; k <= n; ++k) {
    const LD z = lo + h * k;
    const LD x = (2 * z - 1) / (2 * s * s);
    const LD ratio_m1 = static_cast<LD>(q) * std::expm1(x);  // μ/μ0 − 1
    const LD f = std::expm1(static_cast<LD>(alpha) * std::log1p(ratio_m1)) * inv_norm *
                 std::exp(-z * z / (2 * s * s));
    sum += (k == 0 || k == n) ? f / 2 : f;
  }
  return static_cast<double>(std::log1p(sum * h));
}

TEST_CASE("default orders are Opacus's DEFAULT_ALPHAS, bit for bit") {
  const nlohmann::json ref = LoadOpacusReference();
  const std::vector<double> want = ref.at("default_orders").get<std::vector<double>>();
  const std::vector<double>& got = DefaultRdpOrders();
  REQUIRE(got.size() == want.size());
  for (size_t k = 0; k < want.size(); ++k) CHECK(got[k] == want[k]);
}

TEST_CASE("epsilon and optimal order agree with Opacus on every reference case") {
  const nlohmann::json ref = LoadOpacusReference();
  const nlohmann::json& cases = ref.at("epsilon_cases");
  REQUIRE(cases.size() >= 90);
  double worst = 0;
  for (const nlohmann::json& c : cases) {
    History history;
    for (const nlohmann::json& b : c.at("history")) {
      history.push_back({b.at("sample_rate").get<double>(), b.at("noise_multiplier").get<double>(),
                         b.at("steps").get<int64_t>()});
    }
    const std::vector<double> orders = c.at("orders").is_null()
                                           ? DefaultRdpOrders()
                                           : c.at("orders").get<std::vector<double>>();
    const double want_eps = c.at("epsilon").get<double>();
    CAPTURE(c.at("name").get<std::string>());
    Result<RdpEpsilon> got = RdpEpsilonFor(history, c.at("delta").get<double>(), orders);
    REQUIRE_MESSAGE(got.ok(), got.status().ToString());
    const double err = RelErr(got->epsilon, want_eps);
    worst = std::max(worst, err);
    CHECK_MESSAGE(err <= kOpacusRelTolerance, "eps ", got->epsilon, " vs Opacus ", want_eps);
    CHECK(got->order == c.at("order").get<double>());
  }
  MESSAGE("largest relative difference from Opacus over ", cases.size(), " cases: ", worst);
}

// Each case carries Opacus's figure and an independent 40-digit quadrature of
// A_α (mpmath, see reference/README.md). Where the RDP is ~1e-11, Opacus's
// series loses digits to cancellation (log(expm1(x)) + y in its _log_sub);
// there we require to be closer to the exact value than Opacus is, instead of
// reproducing its rounding.
TEST_CASE("per-step RDP agrees with Opacus at integer, fractional and large orders") {
  const nlohmann::json ref = LoadOpacusReference();
  const nlohmann::json& cases = ref.at("rdp_cases");
  REQUIRE(cases.size() >= 50);
  double worst_vs_opacus = 0;
  double worst_vs_exact = 0;
  int opacus_imprecise = 0;
  for (const nlohmann::json& c : cases) {
    const double q = c.at("sample_rate").get<double>();
    const double sigma = c.at("noise_multiplier").get<double>();
    const double alpha = c.at("order").get<double>();
    const double opacus = c.at("rdp").get<double>();
    const double exact = c.at("rdp_mpmath").get<double>();
    CAPTURE(q);
    CAPTURE(sigma);
    CAPTURE(alpha);
    const double got = SubsampledGaussianRdp(q, sigma, alpha);
    const double vs_opacus = RelErr(got, opacus);
    const double vs_exact = RelErr(got, exact);
    worst_vs_exact = std::max(worst_vs_exact, vs_exact);
    CHECK_MESSAGE(vs_exact <= kOpacusRelTolerance, "rdp ", got, " vs exact ", exact);
    if (vs_opacus <= kOpacusRelTolerance) {
      worst_vs_opacus = std::max(worst_vs_opacus, vs_opacus);
    } else {
      ++opacus_imprecise;
      CHECK_MESSAGE(vs_exact < RelErr(opacus, exact), "rdp ", got, " vs Opacus ", opacus,
                    " and exact ", exact);
    }
  }
  const int agreeing = static_cast<int>(cases.size()) - opacus_imprecise;
  MESSAGE(agreeing, " of ", cases.size(),
          " cases agree with Opacus to <= ", worst_vs_opacus, "; in the other ", opacus_imprecise,
          " we are closer to the exact value than Opacus. Largest difference from exact: ",
          worst_vs_exact);
}

// opacus/tests/accountants_test.py, AccountingTest.test_rdp_accountant
// (pytorch/opacus @ 4d0ebc84): σ = 1.5, q = 0.04, int(90 / 0.04) steps,
// δ = 1e-5 → 7.32911117143 (assertAlmostEqual, 7 places).
TEST_CASE("published: Opacus's own RDP accountant unit test") {
  const double eps = Epsilon({{0.04, 1.5, static_cast<int64_t>(90 / 0.04)}}, 1e-5);
  CHECK(std::fabs(eps - 7.32911117143) < 5e-8);
}

// tensorflow/privacy, tensorflow_privacy/privacy/analysis/rdp_accountant_test.py
// (last version before its removal, commit c4fea756), test_compute_rdp_sequence:
// compute_rdp(q=0.01, σ=2.5, steps=50, orders) with rtol 1e-4.
TEST_CASE("published: TensorFlow Privacy compute_rdp sequence") {
  const std::vector<double> orders = {1.5, 2.5, 5, 50, 100};
  const std::vector<double> want = {6.5007e-04, 1.0854e-03, 2.1808e-03, 2.3846e-02, 1.6742e+02};
  for (size_t k = 0; k < orders.size(); ++k) {
    CAPTURE(orders[k]);
    const double rdp_50_steps = 50 * SubsampledGaussianRdp(0.01, 2.5, orders[k]);
    CHECK(RelErr(rdp_50_steps, want[k]) <= 1e-4);
  }
  // Same file: test_compute_rdp_scalar, compute_rdp(0.1, 2, 10, 5) ≈ 0.07737
  // to 5 places; test_compute_rdp_no_sampling, compute_rdp(1, 10, 1, 20) = 0.1.
  CHECK(std::fabs(10 * SubsampledGaussianRdp(0.1, 2, 5) - 0.07737) < 5e-6);
  CHECK(SubsampledGaussianRdp(1, 10, 20) == doctest::Approx(0.1).epsilon(1e-15));
}

// Same TensorFlow Privacy file, test_get_privacy_spent_check_target_delta:
// constant RDP 1.1 over orders 2..32 at δ = 1e-5 gives ε = 1.32783806176 at
// order 32; and the Gaussian mechanism with σ = 4.530877117 over orders
// 1.001, 1.002, ... (step 0.001) gives exactly (1, 1e-6)-DP.
TEST_CASE("published: TensorFlow Privacy RDP to (eps, delta) conversion") {
  std::vector<double> orders;
  for (int a = 2; a <= 32; ++a) orders.push_back(a);
  const std::vector<double> rdp(orders.size(), 1.1);
  Result<RdpEpsilon> pure = EpsilonFromRdp(orders, rdp, 1e-5);
  REQUIRE(pure.ok());
  CHECK(std::fabs(pure->epsilon - 1.32783806176) < 5e-8);
  CHECK(pure->order == 32);

  std::vector<double> fine_orders;
  for (int i = 1001; i < 100000; ++i) fine_orders.push_back(0.001 * i);
  const double eps = Epsilon({{1.0, 4.530877117, 1}}, 1e-6, fine_orders);
  CHECK(std::fabs(eps - 1) < 5e-8);
}

TEST_CASE("fractional- and integer-order series match numerical integration of A_alpha") {
  struct Case {
    double q, sigma, alpha;
  };
  // Includes orders on both sides of integers so both series are exercised.
  const Case cases[] = {{0.01, 1.0, 2.5},  {0.01, 1.0, 3.0},   {0.04, 1.5, 7.3}, {0.04, 1.5, 8.0},
                        {0.1, 0.8, 1.5},   {0.3, 2.0, 4.5},    {0.6, 1.1, 1.2},  {0.6, 1.1, 2.0},
                        {0.001, 0.5, 1.7}, {0.001, 0.5, 12.0}, {0.02, 4.0, 40.5}};
  for (const Case& c : cases) {
    CAPTURE(c.q);
    CAPTURE(c.sigma);
    CAPTURE(c.alpha);
    const double want = LogAByQuadrature(c.q, c.sigma, c.alpha) / (c.alpha - 1);
    CHECK(RelErr(SubsampledGaussianRdp(c.q, c.sigma, c.alpha), want) <= 1e-8);
  }
}

TEST_CASE("without subsampling the RDP is that of the Gaussian mechanism, alpha / (2 sigma^2)") {
  for (double sigma : {0.3, 1.0, 2.5, 17.0}) {
    for (double alpha : {1.1, 2.0, 3.5, 63.0, 256.1}) {
      CHECK(SubsampledGaussianRdp(1.0, sigma, alpha) ==
            doctest::Approx(alpha / (2 * sigma * sigma)).epsilon(1e-15));
    }
  }
  // And subsampling never costs more than not subsampling.
  for (double alpha : {1.5, 2.0, 10.9, 32.0}) {
    CHECK(SubsampledGaussianRdp(0.5, 1.0, alpha) < SubsampledGaussianRdp(1.0, 1.0, alpha));
  }
}

TEST_CASE("epsilon grows with steps and sample rate and shrinks with noise") {
  double previous = 0;
  for (int64_t t : {1, 10, 100, 1000, 10000, 100000, 1000000}) {
    const double eps = Epsilon({{0.01, 1.0, t}}, 1e-5);
    CHECK(eps > previous);
    previous = eps;
  }
  previous = 0;
  for (double q : {1e-4, 1e-3, 0.01, 0.05, 0.2, 0.6, 1.0}) {
    const double eps = Epsilon({{q, 1.2, 1000}}, 1e-6);
    CHECK(eps > previous);
    previous = eps;
  }
  previous = kInf;
  for (double sigma : {0.3, 0.5, 0.8, 1.0, 1.5, 2.5, 5.0, 10.0, 20.0}) {
    const double eps = Epsilon({{0.02, sigma, 5000}}, 1e-5);
    CHECK(eps < previous);
    previous = eps;
  }
  // A smaller δ is a stronger claim, so it costs more ε.
  CHECK(Epsilon({{0.01, 1.0, 1000}}, 1e-9) > Epsilon({{0.01, 1.0, 1000}}, 1e-5));
}

TEST_CASE("composition: blocks add RDP per order, before the conversion") {
  const StepBlock a{0.01, 1.1, 3000};
  const StepBlock b{0.05, 2.0, 700};
  const std::vector<double>& orders = DefaultRdpOrders();
  std::vector<double> summed(orders.size());
  for (size_t k = 0; k < orders.size(); ++k) {
    summed[k] = 3000 * SubsampledGaussianRdp(a.sample_rate, a.noise_multiplier, orders[k]) +
                700 * SubsampledGaussianRdp(b.sample_rate, b.noise_multiplier, orders[k]);
  }
  Result<RdpEpsilon> by_sum = EpsilonFromRdp(orders, summed, 1e-5);
  Result<RdpEpsilon> composed = RdpEpsilonFor({a, b}, 1e-5);
  REQUIRE(by_sum.ok());
  REQUIRE(composed.ok());
  CHECK(composed->epsilon == doctest::Approx(by_sum->epsilon).epsilon(1e-12));
  CHECK(composed->order == by_sum->order);
  // Order of blocks and splitting a block do not matter.
  CHECK(Epsilon({b, a}, 1e-5) == doctest::Approx(composed->epsilon).epsilon(1e-12));
  CHECK(Epsilon({{0.01, 1.1, 1000}, b, {0.01, 1.1, 2000}}, 1e-5) ==
        doctest::Approx(composed->epsilon).epsilon(1e-12));
  // Composition costs more than either part alone, less than converting each
  // part separately and adding the ε's (RDP composes more tightly).
  CHECK(composed->epsilon > Epsilon({a}, 1e-5));
  CHECK(composed->epsilon > Epsilon({b}, 1e-5));
  CHECK(composed->epsilon < Epsilon({a}, 1e-5) + Epsilon({b}, 1e-5));
}

TEST_CASE("degenerate histories and invalid input") {
  Result<RdpEpsilon> empty = RdpEpsilonFor({}, 1e-5);
  REQUIRE(empty.ok());
  CHECK(empty->epsilon == 0);
  Result<RdpEpsilon> zero_steps = RdpEpsilonFor({{0.01, 1.0, 0}, {0.5, 0.5, 0}}, 1e-5);
  REQUIRE(zero_steps.ok());
  CHECK(zero_steps->epsilon == 0);
  // A zero-step block contributes nothing to a real history.
  CHECK(Epsilon({{0.01, 1.0, 100}, {0.9, 0.1, 0}}, 1e-5) == Epsilon({{0.01, 1.0, 100}}, 1e-5));

  // Noise so small that the RDP overflows at every order: no guarantee at all,
  // reported as ε = +inf rather than as an error.
  Result<RdpEpsilon> no_privacy = RdpEpsilonFor({{1.0, 1e-160, 1}}, 1e-5);
  REQUIRE(no_privacy.ok());
  CHECK(no_privacy->epsilon == kInf);

  const auto invalid = [](const Result<RdpEpsilon>& r) {
    return !r.ok() && r.status().code() == StatusCode::kInvalidArgument;
  };
  CHECK(invalid(RdpEpsilonFor({{0.01, 1.0, 10}}, 0)));
  CHECK(invalid(RdpEpsilonFor({{0.01, 1.0, 10}}, 1)));
  CHECK(invalid(RdpEpsilonFor({{0.01, 1.0, 10}}, std::nan(""))));
  CHECK(invalid(RdpEpsilonFor({{0, 1.0, 10}}, 1e-5)));
  CHECK(invalid(RdpEpsilonFor({{1.5, 1.0, 10}}, 1e-5)));
  CHECK(invalid(RdpEpsilonFor({{0.01, 0, 10}}, 1e-5)));
  CHECK(invalid(RdpEpsilonFor({{0.01, kInf, 10}}, 1e-5)));
  CHECK(invalid(RdpEpsilonFor({{0.01, 1.0, -1}}, 1e-5)));
  CHECK(invalid(RdpEpsilonFor({{0.01, 1.0, 10}}, 1e-5, {})));
  CHECK(invalid(RdpEpsilonFor({{0.01, 1.0, 10}}, 1e-5, {2.0, 1.0})));
  CHECK(invalid(RdpEpsilonFor({{0.01, 1.0, 10}}, 1e-5, {2.0, kInf})));
  CHECK(invalid(EpsilonFromRdp({2.0, 3.0}, {0.1}, 1e-5)));
}

TEST_CASE("the conversion ignores NaN orders and never reports a negative epsilon") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Result<RdpEpsilon> r = EpsilonFromRdp({2.0, 3.0, 4.0}, {nan, 0.5, nan}, 1e-5);
  REQUIRE(r.ok());
  CHECK(r->order == 3.0);
  CHECK(r->epsilon == doctest::Approx(0.5 - (std::log(1e-5) + std::log(3.0)) / 2 +
                                      std::log(2.0 / 3.0)));
  Result<RdpEpsilon> all_nan = EpsilonFromRdp({2.0, 3.0}, {nan, nan}, 1e-5);
  REQUIRE(all_nan.ok());
  CHECK(all_nan->epsilon == kInf);
  // At δ = 0.5 the formula goes below zero for tiny RDP; ε = 0 is the claim.
  Result<RdpEpsilon> large_delta = EpsilonFromRdp({63.0}, {1e-9}, 0.5);
  REQUIRE(large_delta.ok());
  CHECK(large_delta->epsilon == 0);
}

TEST_CASE("the curve cache gives RdpEpsilonFor's answer bit for bit and keeps one curve per pair") {
  RdpCurveCache cache;
  // A ledger's pattern: a history growing by blocks of one (q, σ), then a
  // second setting, with the large σ where the series are long.
  History history;
  const StepBlock blocks[] = {{0.4, 4.6, 10}, {0.4, 4.6, 10}, {0.01, 1.1, 7}, {0.4, 4.6, 3}};
  for (const StepBlock& b : blocks) {
    history.push_back(b);
    Result<RdpEpsilon> want = RdpEpsilonFor(history, 1e-5);
    Result<RdpEpsilon> got = cache.EpsilonFor(history, 1e-5);
    REQUIRE(want.ok());
    REQUIRE(got.ok());
    CHECK(got->epsilon == want->epsilon);
    CHECK(got->order == want->order);
    Result<double> via_accountant = ComputeEpsilon(AccountantKind::kRdp, history, 1e-5, &cache);
    REQUIRE(via_accountant.ok());
    CHECK(*via_accountant == *ComputeEpsilon(AccountantKind::kRdp, history, 1e-5));
  }
  CHECK(cache.curves() == 2);
  // Beyond kMaxCurves pairs the answers stay exact; only the memory is capped.
  for (size_t i = 0; i < RdpCurveCache::kMaxCurves + 5; ++i) {
    const History h = {{0.01 + 0.001 * static_cast<double>(i), 1.0, 100}};
    Result<RdpEpsilon> want = RdpEpsilonFor(h, 1e-5);
    Result<RdpEpsilon> got = cache.EpsilonFor(h, 1e-5);
    REQUIRE(want.ok());
    REQUIRE(got.ok());
    CHECK(got->epsilon == want->epsilon);
  }
  CHECK(cache.curves() == RdpCurveCache::kMaxCurves);
  CHECK(!cache.EpsilonFor({{0.01, 1.0, 10}}, 0).ok());
  CHECK(!cache.EpsilonFor({{0.01, -1.0, 10}}, 1e-5).ok());
}

}  // namespace
}  // namespace dpnode::privacy
