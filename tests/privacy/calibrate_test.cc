// Calibration answers are verified against the accountant: the σ returned is
// the smallest that fits (to its tolerance), the T returned the largest.
#include "node/privacy/calibrate.h"

#include <doctest/doctest.h>

#include <cmath>

namespace dpnode::privacy {
namespace {

double Eps(AccountantKind kind, double q, double sigma, int64_t steps, double delta) {
  Result<double> e = ComputeEpsilon(kind, {{q, sigma, steps}}, delta);
  REQUIRE_MESSAGE(e.ok(), e.status().ToString());
  return *e;
}

TEST_CASE("smallest noise multiplier fits the target and a slightly smaller one does not") {
  struct Case {
    double eps, delta, q;
    int64_t steps;
  } cases[] = {{1, 1e-5, 0.01, 1000}, {3, 1e-5, 0.004, 10000}, {8, 1e-6, 0.1, 500},
               {0.5, 1e-5, 0.001, 100000}, {10, 1e-3, 1.0, 1}, {2, 1e-5, 0.05, 2000}};
  for (const Case& c : cases) {
    CAPTURE(c.eps);
    CAPTURE(c.q);
    CAPTURE(c.steps);
    Result<NoiseCalibration> r = SmallestNoiseMultiplier(AccountantKind::kRdp, c.eps, c.delta, c.q, c.steps);
    REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    CHECK(r->epsilon <= c.eps);
    CHECK(r->epsilon == Eps(AccountantKind::kRdp, c.q, r->noise_multiplier, c.steps, c.delta));
    CHECK(Eps(AccountantKind::kRdp, c.q, r->noise_multiplier * (1 - 2e-6), c.steps, c.delta) > c.eps);
  }
}

TEST_CASE("largest steps fit the target and one more does not") {
  struct Case {
    double eps, delta, q, sigma;
  } cases[] = {{1, 1e-5, 0.01, 1.0}, {3, 1e-5, 0.004, 1.1}, {8, 1e-6, 0.1, 2.0}, {2, 1e-5, 0.05, 1.5}};
  for (const Case& c : cases) {
    CAPTURE(c.eps);
    CAPTURE(c.sigma);
    Result<StepsCalibration> r = LargestSteps(AccountantKind::kRdp, c.eps, c.delta, c.q, c.sigma);
    REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    CHECK_FALSE(r->capped);
    CHECK(r->steps >= 1);
    CHECK(r->epsilon <= c.eps);
    CHECK(r->epsilon == Eps(AccountantKind::kRdp, c.q, c.sigma, r->steps, c.delta));
    CHECK(Eps(AccountantKind::kRdp, c.q, c.sigma, r->steps + 1, c.delta) > c.eps);
  }
}

TEST_CASE("calibration round trip: steps for the calibrated sigma give back the planned steps") {
  for (int64_t steps : {10, 1000, 100000}) {
    CAPTURE(steps);
    Result<NoiseCalibration> n = SmallestNoiseMultiplier(AccountantKind::kRdp, 3, 1e-5, 0.01, steps);
    REQUIRE(n.ok());
    Result<StepsCalibration> t = LargestSteps(AccountantKind::kRdp, 3, 1e-5, 0.01, n->noise_multiplier);
    REQUIRE(t.ok());
    // σ is the smallest within 1e-6 relative, so the plan fits and barely more fits.
    CHECK(t->steps >= steps);
    CHECK(t->steps <= steps + std::max<int64_t>(1, steps / 1000));
  }
}

TEST_CASE("steps remaining after a prefix account for what was already spent") {
  const History prefix = {{0.02, 1.2, 1000}};
  Result<StepsCalibration> fresh = LargestSteps(AccountantKind::kRdp, 4, 1e-5, 0.01, 1.0);
  Result<StepsCalibration> after = LargestSteps(AccountantKind::kRdp, 4, 1e-5, 0.01, 1.0, prefix);
  REQUIRE(fresh.ok());
  REQUIRE(after.ok());
  CHECK(after->steps < fresh->steps);
  History h = prefix;
  h.push_back({0.01, 1.0, after->steps});
  CHECK(*ComputeEpsilon(AccountantKind::kRdp, h, 1e-5) <= 4);
  h.back().steps += 1;
  CHECK(*ComputeEpsilon(AccountantKind::kRdp, h, 1e-5) > 4);
}

TEST_CASE("PRV calibration needs no more noise and allows no fewer steps than RDP") {
  Result<NoiseCalibration> rdp = SmallestNoiseMultiplier(AccountantKind::kRdp, 3, 1e-5, 0.01, 2000);
  Result<NoiseCalibration> prv = SmallestNoiseMultiplier(AccountantKind::kPrv, 3, 1e-5, 0.01, 2000);
  REQUIRE_MESSAGE(prv.ok(), prv.status().ToString());
  REQUIRE(rdp.ok());
  CHECK(prv->noise_multiplier <= rdp->noise_multiplier);
  CHECK(prv->epsilon <= 3);
  CHECK(prv->noise_multiplier > 0.5 * rdp->noise_multiplier);

  Result<StepsCalibration> rdp_t = LargestSteps(AccountantKind::kRdp, 3, 1e-5, 0.01, 1.0);
  Result<StepsCalibration> prv_t = LargestSteps(AccountantKind::kPrv, 3, 1e-5, 0.01, 1.0);
  REQUIRE_MESSAGE(prv_t.ok(), prv_t.status().ToString());
  REQUIRE(rdp_t.ok());
  CHECK(prv_t->steps >= rdp_t->steps);
  CHECK(prv_t->epsilon <= 3);
}

TEST_CASE("unreachable and nonsense targets are refused, never NaN") {
  CHECK(SmallestNoiseMultiplier(AccountantKind::kRdp, 1e-9, 1e-5, 1.0, 1000000).status().code() ==
        StatusCode::kOutOfRange);
  CHECK(SmallestNoiseMultiplier(AccountantKind::kRdp, 0, 1e-5, 0.1, 10).status().code() ==
        StatusCode::kInvalidArgument);
  CHECK(SmallestNoiseMultiplier(AccountantKind::kRdp, NAN, 1e-5, 0.1, 10).status().code() ==
        StatusCode::kInvalidArgument);
  CHECK(SmallestNoiseMultiplier(AccountantKind::kRdp, 3, 1e-5, 0.1, 0).status().code() ==
        StatusCode::kInvalidArgument);
  CHECK(SmallestNoiseMultiplier(AccountantKind::kRdp, 3, 0, 0.1, 10).status().code() ==
        StatusCode::kInvalidArgument);
  CHECK(LargestSteps(AccountantKind::kRdp, 0.001, 1e-5, 1.0, 0.5).status().code() ==
        StatusCode::kBudgetExhausted);
  CHECK(LargestSteps(AccountantKind::kRdp, 3, 1e-5, 0.1, -1).status().code() ==
        StatusCode::kInvalidArgument);
}

TEST_CASE("a practically unbounded budget is reported as capped, not looped on") {
  Result<StepsCalibration> r = LargestSteps(AccountantKind::kRdp, 50, 1e-5, 1e-6, 50);
  REQUIRE(r.ok());
  CHECK(r->capped);
  CHECK(r->steps == kMaxSteps);
  CHECK(r->epsilon <= 50);
}

}  // namespace
}  // namespace dpnode::privacy
