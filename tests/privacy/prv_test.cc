// Tests of the PRV accountant (node/privacy/prv.h): agreement with Opacus's
// PRVAccountant on recorded cases (reference/opacus_prv.json, made by
// reference/make_opacus_prv_reference.py), Opacus's own unit-test value, the
// exact ε of the Gaussian mechanism (q = 1) as an independent check, and the
// properties ε must have.
#include "node/privacy/prv.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "node/privacy/accountant.h"
#include "node/privacy/rdp.h"

namespace dpnode::privacy {
namespace {

nlohmann::json LoadOpacusReference() {
  const std::string path =
      std::string(DPNODE_SOURCE_DIR) + "/tests/privacy/reference/opacus_prv.json";
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), "cannot open ", path);
  return nlohmann::json::parse(in);
}

History HistoryOf(const nlohmann::json& c) {
  History history;
  for (const auto& b : c.at("blocks")) {
    history.push_back({b.at("sample_rate").get<double>(), b.at("noise_multiplier").get<double>(),
                       b.at("steps").get<int64_t>()});
  }
  return history;
}

std::string Describe(const nlohmann::json& c) {
  return c.at("blocks").dump() + " delta=" + std::to_string(c.at("delta").get<double>()) +
         " eps_error=" + std::to_string(c.at("eps_error").get<double>());
}

PrvEpsilon MustPrv(const History& history, double delta, const PrvOptions& options = {}) {
  Result<PrvEpsilon> r = PrvEpsilonFor(history, delta, options);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return *r;
}

// Checks every recorded case with `blocks` block count in [min_blocks, max_blocks].
void CheckAgainstOpacus(size_t min_blocks, size_t max_blocks) {
  const nlohmann::json doc = LoadOpacusReference();
  int checked = 0;
  for (const auto& c : doc.at("cases")) {
    const History history = HistoryOf(c);
    if (history.size() < min_blocks || history.size() > max_blocks) continue;
    INFO(Describe(c));
    const double delta = c.at("delta").get<double>();
    const double eps_error = c.at("eps_error").get<double>();
    const double o_lower = c.at("eps_lower").get<double>();
    const double o_estimate = c.at("eps_estimate").get<double>();
    const double o_upper = c.at("eps_upper").get<double>();
    PrvOptions options;
    options.eps_error = eps_error;
    const PrvEpsilon ours = MustPrv(history, delta, options);
    INFO("ours [", ours.lower, ", ", ours.estimate, ", ", ours.upper, "] opacus [", o_lower, ", ",
         o_estimate, ", ", o_upper, "]");
    // Agreement within the error Opacus states: the two intervals, each
    // claimed to contain ε, overlap, and the point estimates differ by less
    // than eps_error.
    // Same domain/mesh rule (RDP tail bounds, eps/delta error budget): the
    // grid has Opacus's size, up to a rounding at a ceil() boundary.
    CHECK(std::llabs(ours.grid_size - c.at("grid_size").get<int64_t>()) <= 2);
    CHECK(ours.lower <= o_upper);
    CHECK(o_lower <= ours.upper);
    CHECK(std::fabs(ours.estimate - o_estimate) <= eps_error);
    CHECK(ours.lower <= ours.estimate);
    CHECK(ours.estimate <= ours.upper);
    // Opacus's interval is 2·eps_error plus the δ ± δ_err spread; ours must
    // be as tight.
    CHECK(ours.upper - ours.lower <= (o_upper - o_lower) + 0.1 * eps_error);
    CHECK(ours.upper - ours.lower <= 2.5 * eps_error);
    // Where Opacus's PRV bound beats its RDP bound, ours beats our RDP bound.
    if (o_upper <= c.at("rdp_epsilon").get<double>()) {
      Result<RdpEpsilon> rdp = RdpEpsilonFor(history, delta);
      REQUIRE(rdp.ok());
      CHECK(ours.upper <= rdp->epsilon);
    }
    ++checked;
  }
  CHECK(checked > 0);
}

TEST_CASE("prv: single-block histories agree with Opacus's PRVAccountant within eps_error") {
  CheckAgainstOpacus(1, 1);
}

TEST_CASE("prv: heterogeneous histories agree with Opacus's PRVAccountant within eps_error") {
  CheckAgainstOpacus(2, 100);
}

TEST_CASE("prv: Opacus's own PRV unit test value") {
  // opacus/tests/accountants_test.py, test_prv_accountant: σ = 1.5,
  // q = 0.04, steps = int(90 // 0.04) = 2250, δ = 1e-5 gives
  // get_epsilon = 6.777395712150674. That value was recorded when the
  // accountant was added (commit c89a3bfd, 2022); Opacus changed the grid of
  // its mean integration in ad084da9 (2023), after which the same call
  // returns 6.779132 (reference/opacus_prv.json), so we hold our upper bound
  // to it within eps_error rather than to 7 places.
  const PrvEpsilon eps = MustPrv({{0.04, 1.5, 2250}}, 1e-5);
  CHECK(std::fabs(eps.upper - 6.777395712150674) <= 0.01);
}

// δ(ε) of T compositions of the Gaussian mechanism with sensitivity 1 and
// noise σ, i.e. one Gaussian with μ = √T/σ (Balle & Wang 2018, Thm. 8):
// δ(ε) = Φ(μ/2 − ε/μ) − e^ε Φ(−μ/2 − ε/μ).
double GaussianDelta(double mu, double eps) {
  auto phi = [](double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); };
  return phi(mu / 2 - eps / mu) - std::exp(eps) * phi(-mu / 2 - eps / mu);
}

double GaussianEpsilon(double mu, double delta) {
  double lo = 0, hi = 1;
  while (GaussianDelta(mu, hi) > delta) hi *= 2;
  for (int i = 0; i < 200; ++i) {
    const double mid = 0.5 * (lo + hi);
    (GaussianDelta(mu, mid) > delta ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

TEST_CASE("prv: without subsampling (q = 1) the interval contains the exact Gaussian ε") {
  struct Case {
    double sigma;
    int64_t steps;
    double delta;
  };
  for (const Case& c : {Case{1.0, 1, 1e-5}, Case{2.0, 10, 1e-6}, Case{1.0, 100, 1e-5},
                        Case{4.0, 1000, 1e-8}, Case{0.7, 3, 1e-3}}) {
    const double exact = GaussianEpsilon(std::sqrt(static_cast<double>(c.steps)) / c.sigma, c.delta);
    const PrvEpsilon eps = MustPrv({{1.0, c.sigma, c.steps}}, c.delta);
    INFO("sigma=", c.sigma, " T=", c.steps, " delta=", c.delta, " exact=", exact, " prv [",
         eps.lower, ", ", eps.estimate, ", ", eps.upper, "]");
    CHECK(eps.lower <= exact);
    CHECK(exact <= eps.upper);
    CHECK(std::fabs(eps.estimate - exact) <= 0.01);
  }
}

TEST_CASE("prv: ε grows with steps and sample rate and falls with noise") {
  const double delta = 1e-5;
  double previous = -1;
  for (int64_t steps : {1, 10, 100, 1000, 10000}) {
    const PrvEpsilon eps = MustPrv({{0.01, 1.0, steps}}, delta);
    INFO("steps=", steps, " upper=", eps.upper);
    CHECK(eps.estimate > previous);
    CHECK(eps.lower <= eps.estimate);
    CHECK(eps.estimate <= eps.upper);
    previous = eps.estimate;
  }
  previous = -1;
  for (double q : {0.001, 0.005, 0.01, 0.05, 0.2, 1.0}) {
    const PrvEpsilon eps = MustPrv({{q, 1.0, 100}}, delta);
    INFO("q=", q, " upper=", eps.upper);
    CHECK(eps.estimate > previous);
    previous = eps.estimate;
  }
  previous = 1e300;
  for (double sigma : {0.6, 0.8, 1.0, 1.5, 3.0, 10.0}) {
    const PrvEpsilon eps = MustPrv({{0.02, sigma, 1000}}, delta);
    INFO("sigma=", sigma, " upper=", eps.upper);
    CHECK(eps.estimate < previous);
    previous = eps.estimate;
  }
  // Smaller δ costs more ε.
  CHECK(MustPrv({{0.02, 1.0, 1000}}, 1e-8).estimate > MustPrv({{0.02, 1.0, 1000}}, 1e-4).estimate);
}

TEST_CASE("prv: the error options set the width of the interval") {
  const History history = {{0.02, 1.0, 2000}};
  PrvOptions coarse;
  coarse.eps_error = 0.1;
  const PrvEpsilon fine = MustPrv(history, 1e-5);
  const PrvEpsilon rough = MustPrv(history, 1e-5, coarse);
  CHECK(fine.upper - fine.lower <= 2.5 * 0.01);
  CHECK(rough.upper - rough.lower >= 2 * 0.1);
  CHECK(rough.upper - rough.lower <= 2.5 * 0.1);
  CHECK(std::fabs(rough.estimate - fine.estimate) <= 0.1);
  // A looser δ budget moves the bounds apart, not the estimate's meaning.
  PrvOptions loose_delta;
  loose_delta.delta_error = 1e-6;  // default would be δ/1000 = 1e-8
  const PrvEpsilon loose = MustPrv(history, 1e-5, loose_delta);
  CHECK(loose.upper - loose.lower > fine.upper - fine.lower);
  CHECK(loose.lower <= fine.estimate);
  CHECK(fine.estimate <= loose.upper);
}

TEST_CASE("prv: an empty history or zero-step blocks cost nothing") {
  const PrvEpsilon empty = MustPrv({}, 1e-5);
  CHECK(empty.lower == 0);
  CHECK(empty.estimate == 0);
  CHECK(empty.upper == 0);
  const PrvEpsilon zero = MustPrv({{0.1, 1.0, 0}, {0.5, 0.7, 0}}, 1e-5);
  CHECK(zero.upper == 0);
  // Zero-step blocks between real ones change nothing.
  const PrvEpsilon plain = MustPrv({{0.01, 1.0, 500}}, 1e-5);
  const PrvEpsilon padded = MustPrv({{0.2, 0.5, 0}, {0.01, 1.0, 300}, {0.01, 1.0, 200}}, 1e-5);
  CHECK(padded.upper == doctest::Approx(plain.upper).epsilon(1e-12));
}

TEST_CASE("prv: heterogeneous histories compose like their parts") {
  const StepBlock a{0.01, 1.0, 1000};
  const StepBlock b{0.05, 2.0, 500};
  const double delta = 1e-5;
  const PrvEpsilon ab = MustPrv({a, b}, delta);
  const PrvEpsilon ba = MustPrv({b, a}, delta);
  // The order of the steps does not matter to ε.
  CHECK(ab.estimate == doctest::Approx(ba.estimate).epsilon(1e-9));
  // Doing more never costs less than either part alone.
  CHECK(ab.estimate > MustPrv({a}, delta).estimate);
  CHECK(ab.estimate > MustPrv({b}, delta).estimate);
  // Two identical blocks apart are the same mechanism as one merged block.
  const StepBlock c{0.01, 1.0, 250};
  const PrvEpsilon split = MustPrv({c, b, c}, delta);
  const PrvEpsilon merged = MustPrv({{0.01, 1.0, 500}, b}, delta);
  CHECK(std::fabs(split.estimate - merged.estimate) <= 0.01);
}

TEST_CASE("prv: nonsense parameters and oversized grids are refused") {
  const History ok = {{0.01, 1.0, 100}};
  CHECK(PrvEpsilonFor(ok, 0).status().code() == StatusCode::kInvalidArgument);
  CHECK(PrvEpsilonFor(ok, 1).status().code() == StatusCode::kInvalidArgument);
  CHECK(PrvEpsilonFor(ok, std::nan("")).status().code() == StatusCode::kInvalidArgument);
  CHECK(PrvEpsilonFor({{0, 1.0, 10}}, 1e-5).status().code() == StatusCode::kInvalidArgument);
  CHECK(PrvEpsilonFor({{1.5, 1.0, 10}}, 1e-5).status().code() == StatusCode::kInvalidArgument);
  CHECK(PrvEpsilonFor({{0.1, -1.0, 10}}, 1e-5).status().code() == StatusCode::kInvalidArgument);
  CHECK(PrvEpsilonFor({{0.1, 1.0, -1}}, 1e-5).status().code() == StatusCode::kInvalidArgument);
  PrvOptions bad;
  bad.eps_error = 0;
  CHECK(PrvEpsilonFor(ok, 1e-5, bad).status().code() == StatusCode::kInvalidArgument);
  bad = PrvOptions{};
  bad.delta_error = 1e-5;  // must be below δ
  CHECK(PrvEpsilonFor(ok, 1e-5, bad).status().code() == StatusCode::kInvalidArgument);
  // A fine mesh over many steps needs more points than the cap allows.
  PrvOptions small_cap;
  small_cap.max_grid_size = 1 << 16;
  const Result<PrvEpsilon> big = PrvEpsilonFor({{0.01, 1.0, 100000}}, 1e-5, small_cap);
  CHECK(big.status().code() == StatusCode::kOutOfRange);
  PrvOptions tiny_error;
  tiny_error.eps_error = 1e-6;
  CHECK(PrvEpsilonFor({{0.01, 1.0, 100000}}, 1e-5, tiny_error).status().code() ==
        StatusCode::kOutOfRange);
  // Rounding in the tail sums would swamp such a δ (Opacus refuses too).
  CHECK(PrvEpsilonFor({{0.01, 1.0, 100}}, 1e-15).status().code() ==
        StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dpnode::privacy
