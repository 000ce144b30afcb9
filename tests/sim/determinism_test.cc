// Determinism: the same seed gives the same event trace and results; a
// different seed differs; adding a node leaves the other nodes' and links'
// random streams unchanged.
#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "sim/seeds.h"
#include "sim/sim_env.h"
#include "sim/sim_network.h"

namespace dpnode::sim {
namespace {

using std::chrono::milliseconds;

// Connects to everyone, then at random intervals (from env.rng()) sends a
// random-size message to a random open link, and folds what it receives.
class Chatter final : public LinkHandler {
 public:
  Chatter(SimEnv& env, World& world) : env_(env), world_(world) {
    env.network().SetHandler(this);
    (void)env.network().Listen(world.address(env.node()));
    for (NodeIndex j = 0; j < world.size(); ++j) {
      if (j > env.node()) env.network().Connect(world.peer_id(j), world.address(j), [](const Status&) {});
    }
    Arm();
  }
  void OnLinkUp(const std::shared_ptr<Link>& link) override { links_.push_back(link); }
  void OnMessage(const std::shared_ptr<Link>&, const SharedBytes& m) override {
    digest_ = digest_ * 1099511628211ull + m->size() + static_cast<uint64_t>(env_.Now().time_since_epoch().count());
  }
  void OnLinkDown(const std::shared_ptr<Link>& link, const Status&) override {
    for (auto& l : links_) {
      if (l == link) l = nullptr;
    }
  }
  uint64_t digest() const { return digest_; }

 private:
  void Arm() {
    timer_ = env_.RunAfter(milliseconds(1 + env_.rng().Below(40)), [this] {
      if (!links_.empty()) {
        auto& l = links_[env_.rng().Below(links_.size())];
        if (l) (void)l->Send(std::make_shared<const std::vector<uint8_t>>(1 + env_.rng().Below(5000)));
      }
      Arm();
    });
  }
  SimEnv& env_;
  World& world_;
  std::vector<std::shared_ptr<Link>> links_;
  Timer timer_;
  uint64_t digest_ = 0;
};

struct Outcome {
  uint64_t trace;
  uint64_t events;
  std::vector<uint64_t> digests;
  std::vector<uint64_t> bytes;
  bool operator==(const Outcome& o) const {
    return trace == o.trace && events == o.events && digests == o.digests && bytes == o.bytes;
  }
};

Outcome RunScenario(uint64_t seed) {
  World world(seed);
  LinkModel m;
  m.latency = LatencyModel::LogNormal(milliseconds(15), 0.6);
  m.bandwidth_bytes_per_second = 5e6;
  m.loss = 0.05;
  m.loss_mode = LossMode::kDrop;
  world.SetDefaultLink(m);
  constexpr int kNodes = 8;
  for (int i = 0; i < kNodes; ++i) {
    world.AddNode("s" + std::to_string(i), [&world](SimEnv& env) {
      return std::static_pointer_cast<void>(std::make_shared<Chatter>(env, world));
    });
  }
  world.AddPartition({0, 1, 2}, TimePoint(milliseconds(2000)), TimePoint(milliseconds(3000)));
  world.CrashAt(5, TimePoint(milliseconds(2500)));
  world.RestartAt(5, TimePoint(milliseconds(3500)));
  world.Start();
  world.scheduler().RunFor(milliseconds(6000));
  Outcome o{world.scheduler().trace_hash(), world.scheduler().events_run(), {}, {}};
  for (NodeIndex i = 0; i < kNodes; ++i) {
    o.digests.push_back(world.node<Chatter>(i)->digest());
    o.bytes.push_back(world.counters(i).bytes_received);
  }
  return o;
}

TEST_CASE("same seed, same trace and results, another seed, another run") {
  const Outcome a = RunScenario(1234);
  const Outcome b = RunScenario(1234);
  const Outcome c = RunScenario(1235);
  CHECK(a.events > 1000);
  CHECK(a == b);
  CHECK(a.trace != c.trace);
  CHECK(a.digests != c.digests);
}

TEST_CASE("adding a node leaves the other nodes' and links' streams unchanged") {
  auto first_draws = [](int nodes) {
    World world(99);
    std::vector<std::vector<uint64_t>> draws(static_cast<size_t>(nodes));
    for (int i = 0; i < nodes; ++i) {
      world.AddNode("n" + std::to_string(i), [&draws, i](SimEnv& env) {
        for (int k = 0; k < 8; ++k) draws[static_cast<size_t>(i)].push_back(env.rng().Next());
        return std::shared_ptr<void>();
      });
    }
    world.Start();
    return draws;
  };
  const auto five = first_draws(5);
  const auto six = first_draws(6);
  for (size_t i = 0; i < 5; ++i) CHECK(five[i] == six[i]);
  CHECK(six[5] != six[4]);

  // Link streams are named by their endpoints, whoever else exists.
  CHECK(SeedTree(99).Link(0, 1) == SeedTree(99).Link(0, 1));
  CHECK(SeedTree(99).Link(0, 1) != SeedTree(99).Link(0, 2));

  // The peer ids the World derives depend only on the seed and the index.
  World w5(3), w6(3);
  for (int i = 0; i < 5; ++i) w5.AddNode("n" + std::to_string(i), nullptr);
  for (int i = 0; i < 6; ++i) w6.AddNode("n" + std::to_string(i), nullptr);
  for (NodeIndex i = 0; i < 5; ++i) CHECK(w5.peer_id(i) == w6.peer_id(i));
}

}  // namespace
}  // namespace dpnode::sim
