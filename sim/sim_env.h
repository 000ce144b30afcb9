// SimEnv: one simulated node's Env over the shared virtual-time Scheduler.
//
// Now() is the scheduler's virtual time, constant while one callback runs.
// RunAfter/Post schedule events tagged with this node, so a crash discards
// them. rng() is the node's own xoshiro256** stream (SeedTree::Node), so its
// draws do not depend on any other node. RunCompute runs `work` inline at
// once (it must not touch node state, so running it early is unobservable)
// and delivers `done` after a modelled duration: the compute model's base cost
// (or a one-shot hint) times the node's speed factor, queued FIFO behind the
// node's earlier computations as on AsioEnv's single worker thread. Wall time
// is never measured: outputs are byte-identical across runs and machines.
//
// Lifetimes: the Scheduler outlives the SimEnv; the SimEnv outlives the node
// built on it. World creates one SimEnv per node incarnation.
#ifndef DPNODE_SIM_SIM_ENV_H_
#define DPNODE_SIM_SIM_ENV_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "node/env.h"
#include "sim/scheduler.h"
#include "sim/seeds.h"

namespace dpnode::sim {

class SimEnv final : public Env {
 public:
  // Modelled duration of one RunCompute at speed factor 1.
  using ComputeModel = std::function<Duration()>;

  // `network` may be null for a node without links (network() then aborts).
  SimEnv(Scheduler& scheduler, NodeIndex node, uint64_t rng_seed,
         std::unique_ptr<Network> network = nullptr, uint32_t incarnation = 0);
  ~SimEnv() override;

  TimePoint Now() const override { return scheduler_.Now(); }
  [[nodiscard]] Timer RunAfter(Duration delay, std::function<void()> fn) override;
  void Post(std::function<void()> fn) override;
  Network& network() override;
  Xoshiro256& rng() override { return rng_; }
  void RunCompute(std::function<Status()> work, std::function<void(const Status&)> done) override;

  // Default: every computation takes zero virtual time.
  void SetComputeModel(ComputeModel model) { compute_model_ = std::move(model); }
  // Multiplies every modelled compute duration (2.0 = a straggler at half
  // speed). Must be > 0.
  void SetSpeedFactor(double factor);
  double speed_factor() const { return speed_factor_; }
  // Overrides the model for the next RunCompute only (still scaled by the
  // speed factor): for a harness that knows what the next step costs.
  void SetNextComputeCost(Duration base_cost) { next_cost_ = base_cost; }

  // After Kill() (the node crashed) RunAfter/Post/RunCompute do nothing, so a
  // node's destructor cannot schedule work for its own corpse.
  void Kill() { dead_ = true; }
  bool dead() const { return dead_; }

  NodeIndex node() const { return node_; }
  uint32_t incarnation() const { return incarnation_; }
  uint64_t computations() const { return computations_; }
  // Virtual time at which the modelled compute worker becomes idle.
  TimePoint compute_idle_at() const { return compute_idle_at_; }

 private:
  Scheduler& scheduler_;
  const NodeIndex node_;
  const uint32_t incarnation_;
  Xoshiro256 rng_;
  std::unique_ptr<Network> network_;
  ComputeModel compute_model_;
  double speed_factor_ = 1.0;
  std::optional<Duration> next_cost_;
  TimePoint compute_idle_at_{};
  uint64_t computations_ = 0;
  bool dead_ = false;
};

}  // namespace dpnode::sim

#endif  // DPNODE_SIM_SIM_ENV_H_
