// SimEnv: timers, posts and modelled compute on the virtual clock.
#include "sim/sim_env.h"

#include <cmath>
#include <exception>
#include <string>
#include <utility>

#include "base/check.h"

namespace dpnode::sim {

SimEnv::SimEnv(Scheduler& scheduler, NodeIndex node, uint64_t rng_seed,
               std::unique_ptr<Network> network, uint32_t incarnation)
    : scheduler_(scheduler),
      node_(node),
      incarnation_(incarnation),
      rng_(rng_seed),
      network_(std::move(network)),
      compute_idle_at_(scheduler.Now()) {}

SimEnv::~SimEnv() = default;

Timer SimEnv::RunAfter(Duration delay, std::function<void()> fn) {
  if (dead_) return Timer();
  if (delay < Duration::zero()) delay = Duration::zero();
  const EventId id = scheduler_.ScheduleAfter(delay, node_, std::move(fn));
  Scheduler* s = &scheduler_;
  return Timer([s, id] { s->Cancel(id); });
}

void SimEnv::Post(std::function<void()> fn) {
  if (dead_) return;
  scheduler_.ScheduleAfter(Duration::zero(), node_, std::move(fn));
}

Network& SimEnv::network() {
  DPNODE_CHECK(network_ != nullptr, "SimEnv of node %u has no network", node_);
  return *network_;
}

void SimEnv::SetSpeedFactor(double factor) {
  DPNODE_CHECK(factor > 0 && std::isfinite(factor), "speed factor %g", factor);
  speed_factor_ = factor;
}

void SimEnv::RunCompute(std::function<Status()> work, std::function<void(const Status&)> done) {
  if (dead_) return;
  Status status;
  try {
    status = work();
  } catch (const std::exception& e) {
    status = Status::Internal(std::string("compute threw: ") + e.what());
  } catch (...) {
    status = Status::Internal("compute threw a non-standard exception");
  }
  Duration base = Duration::zero();
  if (next_cost_) {
    base = *next_cost_;
    next_cost_.reset();
  } else if (compute_model_) {
    base = compute_model_();
  }
  if (base < Duration::zero()) base = Duration::zero();
  const auto cost = Duration(static_cast<int64_t>(std::llround(static_cast<double>(base.count()) * speed_factor_)));
  const TimePoint start = compute_idle_at_ > Now() ? compute_idle_at_ : Now();
  compute_idle_at_ = start + cost;
  ++computations_;
  scheduler_.Schedule(compute_idle_at_, node_,
                      [done = std::move(done), status = std::move(status)] { done(status); });
}

}  // namespace dpnode::sim
