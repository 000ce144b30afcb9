// Two harnesses that run real Nodes on the two Env implementations behind one
// small interface, so a scenario can be written once as a doctest
// TEST_CASE_TEMPLATE and run on both (docs/node.md, "Same scenario on both
// Envs"):
//
//   SimHarness           sim::World / SimEnv: virtual time, modelled links
//                        (5 ms latency), 1 ms of modelled compute per step.
//   AsioLoopbackHarness  one AsioEnv per site (its own loop and compute
//                        threads), TCP on 127.0.0.1 with the secure channel
//                        and pinned keys; waits in wall-clock time.
//
// Interface (both):
//   AddSite(spec)         builds a site (identity, peers.txt, ledger in a
//                         fresh temp dir, trainer) and starts its Node. A site
//                         may list as `dials` only sites added before it: on
//                         Asio their port is known only once they listen.
//   RunUntil(pred, limit) runs until pred() holds or `limit` passes (virtual
//                         time on Sim, wall clock on Asio, polled); pred().
//   OnLoop(i, fn)         runs fn(site) where the Node may be touched: inline
//                         on Sim, on the site's AsioEnv loop on Asio.
//   StopNode(i)           Node::Stop() on its loop (goodbye to every peer).
#ifndef DPNODE_TESTS_ENV_PARITY_HARNESS_H_
#define DPNODE_TESTS_ENV_PARITY_HARNESS_H_

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/check.h"
#include "crypto/identity.h"
#include "crypto/peers.h"
#include "node/asio/asio_env.h"
#include "node/env.h"
#include "node/node.h"
#include "node/privacy/ledger.h"
#include "node/trainer.h"
#include "sim/sim_env.h"
#include "sim/sim_network.h"
#include "tests/temp_dir.h"

namespace dpnode::parity {

using namespace std::chrono_literals;

inline constexpr const char* kConsortium = "parity-test";

inline std::string SiteName(int i) { return "site" + std::to_string(i); }

// Fixed keys, so a scenario can pin a site before it exists.
inline crypto::SiteIdentity ParityIdentity(int i) {
  std::array<uint8_t, 32> seed{};
  seed.fill(static_cast<uint8_t>(0x70 + i));
  seed[31] = 0x5a;
  return crypto::SiteIdentity::FromSeed(crypto::Ed25519Seed(crypto::ByteView(seed)));
}

// Each step moves x a fraction `lr` towards `target` (lr = 0: a step that
// leaves the model as it was, so push-sum must land on the exact mean of
// the initial vectors). It also checks the Node's ordering: SetParameters is
// the last call on the loop before each step, and by then the ledger must
// already hold that step.
class ParityTrainer : public node::Trainer {
 public:
  ParityTrainer(std::vector<float> initial, std::vector<float> target, double lr,
                const privacy::Ledger* ledger)
      : x_(std::move(initial)), target_(std::move(target)), lr_(lr), ledger_(ledger) {
    DPNODE_CHECK(x_.size() >= 2 && x_.size() == target_.size(), "bad parity trainer");
  }
  gossip::Layout ParameterLayout() const override { return {{"w", {x_.size() - 1}}, {"b", {}}}; }
  std::vector<float> Parameters() const override { return x_; }
  Status SetParameters(const std::vector<float>& p) override {
    if (p.size() != x_.size()) return Status::InvalidArgument("length");
    x_ = p;
    ++starts_;
    if (ledger_ == nullptr || ledger_->total_steps() < starts_) ++uncharged_starts_;
    return Status::Ok();
  }
  privacy::StepBlock StepCost() const override { return {0.05, 2.0, 1}; }
  Status Step() override {
    for (size_t i = 0; i < x_.size(); ++i) {
      x_[i] -= static_cast<float>(lr_ * (x_[i] - target_[i]));
    }
    steps_.fetch_add(1);
    return Status::Ok();
  }
  Result<double> Evaluate() override {
    double s = 0;
    for (size_t i = 0; i < x_.size(); ++i) s += 0.5 * (x_[i] - target_[i]) * (x_[i] - target_[i]);
    return s;
  }

  // Read on the loop (OnLoop).
  int64_t starts() const { return starts_; }
  int64_t uncharged_starts() const { return uncharged_starts_; }
  int64_t steps() const { return steps_.load(); }

 private:
  std::vector<float> x_;
  const std::vector<float> target_;
  const double lr_;
  const privacy::Ledger* ledger_;
  int64_t starts_ = 0;
  int64_t uncharged_starts_ = 0;
  std::atomic<int64_t> steps_{0};  // written on AsioEnv's compute thread
};

struct SiteSpec {
  int index = 0;           // name site<index>, key ParityIdentity(index)
  std::vector<int> pins;   // the other sites in its peers.txt
  std::vector<int> dials;  // of those, the ones listed with an address (added earlier)
  std::vector<float> initial;
  std::vector<float> target;
  double lr = 0;
  int64_t max_steps = 24;
  double epsilon_budget = 8;
  // Tuned for both transports: fast ticks, quick redials, settle on a
  // relative change the float32 wire rounding stays far below.
  node::NodeOptions Options() const {
    node::NodeOptions o;
    o.site_name = SiteName(index);
    o.consortium_id = kConsortium;
    o.gossip_interval = 10ms;
    o.step_interval = 2ms;
    o.reserve_block_steps = 8;
    o.max_steps = max_steps;
    o.settle_tolerance = 1e-5;
    o.settle_window = 5;
    o.membership.probe_interval = 50ms;
    o.membership.retry_base = 50ms;
    o.membership.retry_max = 200ms;
    return o;
  }
};

// What both harnesses keep per site; Env and Node ownership differ.
struct Site {
  explicit Site(int i) : index(i), id(ParityIdentity(i)) {}
  int index;
  crypto::SiteIdentity id;
  crypto::PeerList peers;
  std::unique_ptr<testing::TempDir> dir;
  std::unique_ptr<privacy::Ledger> ledger;
  std::unique_ptr<ParityTrainer> trainer;
  node::Node* node = nullptr;
  Status start_status;
  bool stopped = false;

  void Log(const std::string& line) {
    std::lock_guard<std::mutex> lock(log_mu);
    log.push_back(line);
  }
  std::vector<std::string> Logs() {
    std::lock_guard<std::mutex> lock(log_mu);
    return log;
  }
  std::mutex log_mu;
  std::vector<std::string> log;
};

// Identity, peers.txt (addresses from `address_of` for spec.dials), ledger.
inline std::unique_ptr<Site> MakeSite(const SiteSpec& spec,
                                      const std::function<crypto::HostPort(int)>& address_of) {
  auto s = std::make_unique<Site>(spec.index);
  std::string text;
  for (int j : spec.pins) {
    std::optional<crypto::HostPort> addr;
    if (std::find(spec.dials.begin(), spec.dials.end(), j) != spec.dials.end()) {
      addr = address_of(j);
    }
    text += crypto::FormatPeerLine(SiteName(j), ParityIdentity(j).public_key(), addr) + "\n";
  }
  Result<crypto::PeerList> peers = crypto::ParsePeers(text, SiteName(spec.index) + "/peers.txt");
  REQUIRE_MESSAGE(peers.ok(), peers.status().ToString());
  s->peers = std::move(peers).value();
  s->dir = std::make_unique<testing::TempDir>();
  privacy::Budget b;
  b.epsilon = spec.epsilon_budget;
  b.delta = 1e-5;
  b.label = SiteName(spec.index);
  Result<std::unique_ptr<privacy::Ledger>> ledger = privacy::Ledger::Create(s->dir->path(), b);
  REQUIRE_MESSAGE(ledger.ok(), ledger.status().ToString());
  s->ledger = std::move(ledger).value();
  s->trainer = std::make_unique<ParityTrainer>(spec.initial, spec.target, spec.lr, s->ledger.get());
  return s;
}

class SimHarness {
 public:
  static constexpr uint16_t kPort = 7400;  // ignored by the simulator; peers.txt needs one

  SimHarness() : world_(20261128) { world_.Start(); }
  ~SimHarness() {
    for (auto& [i, s] : sites_) {
      if (s->node != nullptr && !s->stopped) s->node->Stop();
    }
  }
  SimHarness(const SimHarness&) = delete;
  SimHarness& operator=(const SimHarness&) = delete;

  void AddSite(const SiteSpec& spec) {
    std::unique_ptr<Site> owned = MakeSite(spec, [](int j) {
      return crypto::HostPort{SiteName(j), kPort, false};
    });
    Site* s = owned.get();
    sites_[spec.index] = std::move(owned);
    node::NodeOptions o = spec.Options();
    o.listen = NetAddress{SiteName(spec.index), kPort};
    o.log = [s](const std::string& line) { s->Log(line); };
    // The World builds the node at once (it has started) and owns it.
    const sim::NodeIndex n =
        world_.AddNode(SiteName(spec.index), s->id.public_key(), [s, o](sim::SimEnv& env) {
          auto node =
              std::make_shared<node::Node>(env, s->id, s->peers, s->ledger.get(), *s->trainer, o);
          s->node = node.get();
          s->start_status = node->Start();
          return std::static_pointer_cast<void>(node);
        });
    world_.SetComputeModel(n, [] { return Duration(1ms); });
    REQUIRE_MESSAGE(s->start_status.ok(), s->start_status.ToString());
  }

  bool RunUntil(const std::function<bool()>& pred, Duration limit) {
    return world_.RunUntil(pred, world_.Now() + limit);
  }
  void OnLoop(int i, const std::function<void(Site&)>& fn) { fn(*sites_.at(i)); }
  void StopNode(int i) {
    Site& s = *sites_.at(i);
    s.node->Stop();
    s.stopped = true;
  }
  std::vector<int> indices() const {
    std::vector<int> out;
    for (const auto& [i, s] : sites_) out.push_back(i);
    return out;
  }

 private:
  // Declared first so the World (and the Nodes it owns) goes before the
  // ledgers and trainers the Nodes point at.
  std::map<int, std::unique_ptr<Site>> sites_;
  sim::World world_;
};

class AsioLoopbackHarness {
 public:
  AsioLoopbackHarness() = default;
  ~AsioLoopbackHarness() {
    for (auto& [i, a] : sites_) {
      if (!a.site->stopped) a.env->RunOnLoop([&a] { a.site->node->Stop(); });
    }
    for (auto& [i, a] : sites_) a.env->Stop("test over");
    // After Stop the loop thread is joined: the Node may go off the loop.
    for (auto& [i, a] : sites_) a.node.reset();
  }
  AsioLoopbackHarness(const AsioLoopbackHarness&) = delete;
  AsioLoopbackHarness& operator=(const AsioLoopbackHarness&) = delete;

  void AddSite(const SiteSpec& spec) {
    std::unique_ptr<Site> owned = MakeSite(spec, [this](int j) {
      return crypto::HostPort{"127.0.0.1", sites_.at(j).port, false};
    });
    Site* s = owned.get();
    asio::NetworkOptions net;
    net.channel.consortium_id = kConsortium;
    net.channel.handshake_timeout = 5s;
    asio::AsioEnvOptions eo;
    eo.rng_seed = 1000 + static_cast<uint64_t>(spec.index);
    eo.shutdown_grace = 500ms;
    eo.log = [s](const std::string& line) { s->Log("[" + SiteName(s->index) + "] net: " + line); };
    const crypto::PeerList* pinned = &s->peers;
    Result<std::unique_ptr<asio::AsioEnv>> env = asio::AsioEnv::Create(
        s->id, [pinned](const crypto::Ed25519PublicKey& k) { return pinned->IsPinned(k); }, net,
        eo);
    REQUIRE_MESSAGE(env.ok(), env.status().ToString());
    AsioSite& a = sites_[spec.index];
    a.site = std::move(owned);
    a.env = std::move(env).value();
    node::NodeOptions o = spec.Options();
    o.listen = NetAddress{"127.0.0.1", 0};  // any free port; peers.txt of later sites gets it
    o.log = [s](const std::string& line) { s->Log(line); };
    a.node = std::make_unique<node::Node>(*a.env, s->id, s->peers, s->ledger.get(), *s->trainer, o);
    s->node = a.node.get();
    Status started;
    a.env->RunOnLoop([&] { started = a.node->Start(); });  // inline: the loop is not running yet
    REQUIRE_MESSAGE(started.ok(), started.ToString());
    a.port = a.env->asio_network().listen_port();
    REQUIRE(a.port != 0);
    a.env->Start();
  }

  bool RunUntil(const std::function<bool()>& pred, Duration limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
      if (std::chrono::steady_clock::now() >= end) return pred();
      std::this_thread::sleep_for(5ms);
    }
    return true;
  }
  void OnLoop(int i, const std::function<void(Site&)>& fn) {
    AsioSite& a = sites_.at(i);
    a.env->RunOnLoop([&] { fn(*a.site); });
  }
  void StopNode(int i) {
    AsioSite& a = sites_.at(i);
    a.env->RunOnLoop([&a] { a.site->node->Stop(); });
    a.site->stopped = true;
  }
  std::vector<int> indices() const {
    std::vector<int> out;
    for (const auto& [i, a] : sites_) out.push_back(i);
    return out;
  }

 private:
  struct AsioSite {
    // Destroyed bottom-up: the Node before its Env, both before the ledger
    // and trainer in `site`.
    std::unique_ptr<Site> site;
    std::unique_ptr<asio::AsioEnv> env;
    std::unique_ptr<node::Node> node;
    uint16_t port = 0;
  };
  std::map<int, AsioSite> sites_;
};

// A copy of what a scenario asserts on, taken on the site's loop.
struct SiteView {
  node::Phase phase = node::Phase::kTraining;
  node::NodeMetrics metrics;
  Status stop_reason;
  std::vector<double> estimate;
  double weight = 0;              // push-sum weight
  std::array<bool, 4> session{};  // by site index: a greeted session
  int64_t ledger_steps = 0;
  double ledger_epsilon = -1;
  double budget_epsilon = 0;
  int64_t trainer_starts = 0;
  int64_t trainer_steps = 0;
  int64_t uncharged_starts = 0;
};

template <typename H>
SiteView View(H& h, int i) {
  SiteView v;
  h.OnLoop(i, [&](Site& s) {
    const node::Node& n = *s.node;
    v.phase = n.phase();
    v.metrics = n.metrics();
    v.stop_reason = n.training_stop_reason();
    v.estimate = n.Estimate();
    v.weight = n.policy().Weight();
    // Sites not added (yet) simply have no session.
    for (int j = 0; j < static_cast<int>(v.session.size()); ++j) {
      if (j != i) v.session[j] = n.membership().HasSession(ParityIdentity(j).public_key());
    }
    v.ledger_steps = s.ledger->total_steps();
    Result<double> eps = s.ledger->EpsilonSpent();
    v.ledger_epsilon = eps.ok() ? *eps : -1;
    v.budget_epsilon = s.ledger->budget().epsilon;
    v.trainer_starts = s.trainer->starts();
    v.trainer_steps = s.trainer->steps();
    v.uncharged_starts = s.trainer->uncharged_starts();
  });
  return v;
}

// Lines of site i's log (Node and, on Asio, transport) containing `needle`.
template <typename H>
int LogCount(H& h, int i, const std::string& needle) {
  int n = 0;
  h.OnLoop(i, [&](Site& s) {
    for (const std::string& line : s.Logs()) n += line.find(needle) != std::string::npos;
  });
  return n;
}

// Every site's log, for a failure message.
template <typename H>
std::string AllLogs(H& h) {
  std::string out;
  for (int i : h.indices()) {
    h.OnLoop(i, [&](Site& s) {
      for (const std::string& line : s.Logs()) out += "\n  " + line;
    });
  }
  return out;
}

}  // namespace dpnode::parity

#endif  // DPNODE_TESTS_ENV_PARITY_HARNESS_H_
