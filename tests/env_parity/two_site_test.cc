// One two-site scenario, written once, run on both Envs: the simulator
// (SimEnv, virtual time) and the real transport (AsioEnv, TCP on 127.0.0.1
// with the secure channel). Only what must hold on both is asserted: timing
// differs, so nothing here counts rounds or reads a clock.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "tests/env_parity/harness.h"

TYPE_TO_STRING_AS("SimEnv", dpnode::parity::SimHarness);
TYPE_TO_STRING_AS("AsioEnv", dpnode::parity::AsioLoopbackHarness);

namespace dpnode::parity {
namespace {

// Four values so the layout has a vector and a scalar. Every coordinate of
// the target lies above both starting points (see the lr > 0 check).
const std::vector<float> kStart0 = {-3.0f, 1.5f, 0.25f, 2.0f};
const std::vector<float> kStart1 = {-5.0f, -0.5f, 1.75f, -1.0f};
const std::vector<float> kTarget = {4.0f, 6.0f, 5.5f, 7.0f};
constexpr int64_t kSteps = 24;

// max_k |a_k − b_k| / (1 + |b_k|)
double MaxRelDiff(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (size_t k = 0; k < a.size(); ++k) {
    worst = std::max(worst, std::abs(a[k] - b[k]) / (1 + std::abs(b[k])));
  }
  return worst;
}

// site0 listens and knows no address; site1 pins site0 and dials it.
SiteSpec Spec(int index, double lr) {
  SiteSpec s;
  s.index = index;
  s.pins = {1 - index};
  if (index == 1) s.dials = {0};
  s.initial = index == 0 ? kStart0 : kStart1;
  s.target = kTarget;
  s.lr = lr;
  s.max_steps = kSteps;
  return s;
}

// What every site that trained to its step limit must show.
void CheckTrainedAndCharged(const SiteView& v) {
  CHECK(v.stop_reason.ok());  // the step limit stopped it, not the budget
  CHECK(v.metrics.steps == kSteps);
  CHECK(v.trainer_steps == kSteps);
  CHECK(v.trainer_starts == kSteps);
  // Charged before it ran: at each step's start the ledger already held it.
  CHECK(v.uncharged_starts == 0);
  CHECK(v.ledger_steps == v.metrics.steps_reserved);
  CHECK(v.ledger_steps >= v.metrics.steps);
  CHECK(v.ledger_steps == kSteps);  // blocks shrink to the step limit
  CHECK(v.ledger_epsilon > 0);
  CHECK(v.ledger_epsilon <= v.budget_epsilon);
  CHECK(v.metrics.epsilon_spent == doctest::Approx(v.ledger_epsilon));
}

// Two sites train with lr and mix by push-sum until both settle; then
// site0 stops and site1 must see its goodbye.
template <typename H>
void TrainMixAndPart(double lr) {
  H h;
  INFO("site logs:" << AllLogs(h));
  h.AddSite(Spec(0, lr));
  h.AddSite(Spec(1, lr));

  // Hello accepted both ways.
  REQUIRE(h.RunUntil([&] { return View(h, 0).session[1] && View(h, 1).session[0]; }, 5s));

  REQUIRE(h.RunUntil(
      [&] {
        return View(h, 0).phase == node::Phase::kDone && View(h, 1).phase == node::Phase::kDone;
      },
      8s));
  const SiteView v0 = View(h, 0), v1 = View(h, 1);
  for (const SiteView* v : {&v0, &v1}) {
    CheckTrainedAndCharged(*v);
    CHECK(v->metrics.hello_mismatches == 0);
    CHECK(v->metrics.shares_accepted > 0);
    CHECK(v->metrics.shares_rejected == 0);
    // Push-sum weights stay positive and below the total of 2. (Their sum
    // is not checked: shares may be in flight, and on Asio the two views
    // are not taken at one instant.)
    CHECK(v->weight > 0);
    CHECK(v->weight < 2);
  }

  // The two estimates agree.
  CHECK(MaxRelDiff(v0.estimate, v1.estimate) < 1e-3);
  std::vector<double> mean(kStart0.size());
  for (size_t k = 0; k < mean.size(); ++k) mean[k] = (double{kStart0[k]} + kStart1[k]) / 2;
  if (lr == 0) {
    // Steps change nothing: push-sum conserves mass, so the consensus is the
    // exact mean of the starting vectors.
    CHECK(MaxRelDiff(v0.estimate, mean) < 1e-4);
    CHECK(MaxRelDiff(v1.estimate, mean) < 1e-4);
  } else {
    // Not computable exactly (each step's mass depends on the weight the site
    // holds then), but bounded: steps and mixing are convex combinations, so
    // every coordinate stays between the lower start and the target; and
    // every step moves mass towards the target, so the consensus is well
    // past the mean of the starts.
    for (const SiteView* v : {&v0, &v1}) {
      for (size_t k = 0; k < mean.size(); ++k) {
        CAPTURE(k);
        const double lo = std::min(kStart0[k], kStart1[k]);
        CHECK(v->estimate[k] >= lo - 1e-4);
        CHECK(v->estimate[k] <= kTarget[k] + 1e-4);
        CHECK(kTarget[k] - v->estimate[k] < 0.5 * (kTarget[k] - mean[k]));
      }
    }
  }

  // One side leaves; the other hears the goodbye and drops the session.
  h.StopNode(0);
  REQUIRE(h.RunUntil(
      [&] {
        const SiteView v = View(h, 1);
        return v.metrics.goodbyes_received >= 1 && !v.session[0];
      },
      5s));
  CHECK(View(h, 0).metrics.goodbyes_sent >= 1);
  CHECK(LogCount(h, 1, "goodbye from site0 (shutdown)") >= 1);
}

TEST_CASE_TEMPLATE("two sites: hello, charged steps to the limit, push-sum agreement, goodbye", H,
                   SimHarness, AsioLoopbackHarness) {
  TrainMixAndPart<H>(0.2);
}

TEST_CASE_TEMPLATE("two sites whose steps change nothing average to the exact mean", H, SimHarness,
                   AsioLoopbackHarness) {
  TrainMixAndPart<H>(0.0);
}

TEST_CASE_TEMPLATE("a site whose key is not pinned is refused while pinned peers mix", H,
                   SimHarness, AsioLoopbackHarness) {
  H h;
  INFO("site logs:" << AllLogs(h));
  h.AddSite(Spec(0, 0.2));  // pins site1 only
  h.AddSite(Spec(1, 0.2));
  SiteSpec stranger = Spec(2, 0.0);
  stranger.pins = {0};
  stranger.dials = {0};
  stranger.initial = {9.0f, 9.0f, 9.0f, 9.0f};
  h.AddSite(stranger);

  // Refused at least twice (a redial is refused too): on Asio the handshake
  // fails the pin check, on Sim site0's Node closes the link unanswered.
  auto refusals = [&] {
    return LogCount(h, 2, "dialing site0 failed") + LogCount(h, 2, "link to site0 down");
  };
  REQUIRE(h.RunUntil(
      [&] { return View(h, 0).session[1] && View(h, 1).session[0] && refusals() >= 2; }, 5s));
  // Mixing between the pinned pair goes on regardless.
  REQUIRE(h.RunUntil([&] { return View(h, 0).metrics.shares_accepted > 0; }, 5s));

  const SiteView v0 = View(h, 0), v2 = View(h, 2);
  CHECK_FALSE(v0.session[2]);
  CHECK_FALSE(v2.session[0]);
  // site0 never sent it anything, not even a Hello or a goodbye.
  CHECK(v2.metrics.messages_received == 0);
  CHECK(v2.metrics.shares_accepted == 0);
  CHECK(v0.metrics.shares_rejected == 0);
  CHECK(v0.metrics.undecodable_messages == 0);
  // Its model is its own: lr = 0 steps and nobody to mix with.
  for (double x : v2.estimate) CHECK(x == 9.0);
}

}  // namespace
}  // namespace dpnode::parity
