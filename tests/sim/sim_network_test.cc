// The network model: handshake timing, serialization and queueing arithmetic
// (exact), ordering, loss (statistical), partitions, crash and restart,
// pinning, closing, backpressure and zero-copy payloads.
#include "sim/sim_network.h"

#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace dpnode::sim {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

TimePoint Ms(int64_t ms) { return TimePoint(milliseconds(ms)); }
int64_t NsOf(TimePoint t) { return t.time_since_epoch().count(); }
constexpr int64_t kMs = 1000000;

struct Logged {
  std::string kind;  // up, msg, down
  NodeIndex peer;
  int64_t t_ns;
  SharedBytes message;
  Status why;
};

// Listens, logs every link event with its virtual time.
class Recorder final : public LinkHandler {
 public:
  Recorder(SimEnv& env, World& world) : env_(env), world_(world) {
    env.network().SetHandler(this);
    CHECK(env.network().Listen(world.address(env.node())).ok());
  }
  void Connect(NodeIndex to, const PeerId* id = nullptr) {
    env_.network().Connect(id ? *id : world_.peer_id(to), world_.address(to), [this, to](const Status& st) {
      failures.push_back({"fail", to, NsOf(env_.Now()), nullptr, st});
    });
  }
  NodeIndex IndexOf(const PeerId& id) const {
    for (NodeIndex i = 0; i < world_.size(); ++i) {
      if (world_.peer_id(i) == id) return i;
    }
    FAIL("unknown peer");
    return kWorldNode;
  }
  void OnLinkUp(const std::shared_ptr<Link>& link) override {
    links[IndexOf(link->peer())] = link;
    log.push_back({"up", IndexOf(link->peer()), NsOf(env_.Now()), nullptr, Status()});
  }
  void OnMessage(const std::shared_ptr<Link>& link, const SharedBytes& message) override {
    log.push_back({"msg", IndexOf(link->peer()), NsOf(env_.Now()), message, Status()});
  }
  void OnLinkDown(const std::shared_ptr<Link>& link, const Status& why) override {
    log.push_back({"down", IndexOf(link->peer()), NsOf(env_.Now()), nullptr, why});
  }
  std::vector<Logged> Of(const std::string& kind) const {
    std::vector<Logged> out;
    for (const Logged& l : log) {
      if (l.kind == kind) out.push_back(l);
    }
    return out;
  }

  SimEnv& env_;
  World& world_;
  std::map<NodeIndex, std::shared_ptr<Link>> links;
  std::vector<Logged> log;
  std::vector<Logged> failures;
};

// A world of `n` recorders with the given link model and crypto costs.
struct Fixture {
  explicit Fixture(size_t n, LinkModel link = {}, CryptoModel crypto = {0, Duration(0), Duration(0)},
                   uint64_t seed = 1)
      : world(seed) {
    world.SetDefaultLink(link);
    world.SetCrypto(crypto);
    for (size_t i = 0; i < n; ++i) {
      world.AddNode("node" + std::to_string(i), [this](SimEnv& env) {
        ++builds;
        return std::static_pointer_cast<void>(std::make_shared<Recorder>(env, world));
      });
    }
    world.Start();
  }
  Recorder& R(NodeIndex i) { return *world.node<Recorder>(i); }
  void At(int64_t ms, std::function<void()> fn) { world.scheduler().Schedule(Ms(ms), kWorldNode, std::move(fn)); }
  SharedBytes Bytes(size_t n, uint8_t fill = 0) { return std::make_shared<const std::vector<uint8_t>>(n, fill); }

  World world;
  int builds = 0;
};

LinkModel Constant(int64_t latency_ms, double bandwidth = 0) {
  LinkModel m;
  m.latency = LatencyModel::Constant(milliseconds(latency_ms));
  m.bandwidth_bytes_per_second = bandwidth;
  return m;
}

TEST_CASE("the handshake costs three one-way latencies and two handshake computations") {
  Fixture f(2, Constant(10), CryptoModel{0, Duration(0), microseconds(300)});
  f.R(0).Connect(1);
  f.world.scheduler().RunAll();
  const auto up0 = f.R(0).Of("up");
  const auto up1 = f.R(1).Of("up");
  REQUIRE(up0.size() == 1);
  REQUIRE(up1.size() == 1);
  CHECK(up0[0].t_ns == 20 * kMs + 600000);  // 10 + 0.3 + 10 + 0.3 ms
  CHECK(up1[0].t_ns == 30 * kMs + 600000);
  CHECK(up0[0].peer == 1);
  CHECK(f.world.counters(0).links_up == 1);
  CHECK(f.world.open_links(1) == 1);
}

TEST_CASE("serialization delay and FIFO queueing, exactly") {
  // 1 MB/s: a 1000-byte message occupies the link for exactly 1 ms.
  Fixture f(2, Constant(10, 1e6));
  f.R(0).Connect(1);
  f.world.scheduler().RunUntil([&] { return !f.R(1).Of("up").empty(); }, Ms(1000));
  std::vector<size_t> queued;
  f.At(100, [&] {
    const auto& link = f.R(0).links.at(1);
    for (int i = 0; i < 3; ++i) CHECK(link->Send(f.Bytes(1000, static_cast<uint8_t>(i))).ok());
    queued.push_back(link->queued_bytes());
  });
  f.world.scheduler().Schedule(Ms(101) + microseconds(500), kWorldNode,
                               [&] { queued.push_back(f.R(0).links.at(1)->queued_bytes()); });
  f.At(103, [&] { queued.push_back(f.R(0).links.at(1)->queued_bytes()); });
  f.world.scheduler().RunAll();
  CHECK(queued == std::vector<size_t>{3000, 2000, 0});
  const auto msgs = f.R(1).Of("msg");
  REQUIRE(msgs.size() == 3);
  CHECK(msgs[0].t_ns == 111 * kMs);  // 100 + 1 (serialize) + 10 (latency)
  CHECK(msgs[1].t_ns == 112 * kMs);  // waited 1 ms for the first
  CHECK(msgs[2].t_ns == 113 * kMs);
  for (int i = 0; i < 3; ++i) CHECK((*msgs[i].message)[0] == i);
  CHECK(f.world.counters(0).bytes_sent == 3000);
  CHECK(f.world.counters(1).bytes_received == 3000);

  // A later message on an idle link does not wait.
  f.At(200, [&] { CHECK(f.R(0).links.at(1)->Send(f.Bytes(500)).ok()); });
  f.world.scheduler().RunAll();
  CHECK(f.R(1).Of("msg").back().t_ns == 200 * kMs + 500000 + 10 * kMs);
}

TEST_CASE("crypto time is charged on both ends, overhead bytes count on the wire") {
  LinkModel m = Constant(10, 1e6);
  m.overhead_bytes = 24;
  // 1 GB/s AEAD and 2 us per message: a 976 + 24 = 1000-byte frame costs 3 us to seal and 3 us to open.
  Fixture f(2, m, CryptoModel{1e9, microseconds(2), Duration(0)});
  f.R(0).Connect(1);
  f.At(100, [&] { CHECK(f.R(0).links.at(1)->Send(f.Bytes(976)).ok()); });
  f.world.scheduler().RunAll();
  const auto msgs = f.R(1).Of("msg");
  REQUIRE(msgs.size() == 1);
  CHECK(msgs[0].t_ns == 100 * kMs + 3000 + 1 * kMs + 10 * kMs + 3000);
  CHECK(f.world.counters(0).bytes_sent == 1000);
}

TEST_CASE("a World left at the default CryptoModel charges its measured costs as documented") {
  // No SetCrypto: the World must use CryptoModel's defaults (bench/crypto_bench).
  const CryptoModel c;
  REQUIRE(c.aead_bytes_per_second > 0);
  REQUIRE(c.handshake > Duration(0));
  World world(1);
  world.SetDefaultLink(Constant(10, 1e6));
  for (int i = 0; i < 2; ++i) {
    world.AddNode("node" + std::to_string(i), [&world](SimEnv& env) {
      return std::static_pointer_cast<void>(std::make_shared<Recorder>(env, world));
    });
  }
  world.Start();
  Recorder& r0 = *world.node<Recorder>(0);
  Recorder& r1 = *world.node<Recorder>(1);
  r0.Connect(1);
  constexpr size_t kBytes = 10000;  // 10 ms on the 1 MB/s link
  world.scheduler().Schedule(Ms(100), kWorldNode, [&] {
    CHECK(r0.links.at(1)->Send(std::make_shared<const std::vector<uint8_t>>(kBytes, 7)).ok());
  });
  world.scheduler().RunAll();
  // Handshake: two latencies and two handshake computations to the
  // initiator, one more latency to the responder.
  const auto up0 = r0.Of("up"), up1 = r1.Of("up");
  REQUIRE(up0.size() == 1);
  REQUIRE(up1.size() == 1);
  CHECK(up0[0].t_ns == 20 * kMs + 2 * c.handshake.count());
  CHECK(up1[0].t_ns == 30 * kMs + 2 * c.handshake.count());
  // seal = aead_per_message + bytes / rate (nanoseconds, rounded), paid
  // before the wire and again to open after the latency.
  const double seal_bytes_ns = static_cast<double>(kBytes) / c.aead_bytes_per_second * 1e9;
  const int64_t seal = c.aead_per_message.count() + static_cast<int64_t>(seal_bytes_ns + 0.5);
  CHECK(seal > 1000);  // microseconds for 10 kB: crypto is not free by default
  const auto msgs = r1.Of("msg");
  REQUIRE(msgs.size() == 1);
  CHECK(msgs[0].t_ns == 100 * kMs + seal + 10 * kMs + 10 * kMs + seal);
}

TEST_CASE("random latency never reorders a connection's messages") {
  LinkModel m;
  m.latency = LatencyModel::Uniform(milliseconds(1), milliseconds(50));
  m.bandwidth_bytes_per_second = 0;
  Fixture f(2, m);
  f.R(0).Connect(1);
  f.At(100, [&] {
    for (int i = 0; i < 500; ++i) CHECK(f.R(0).links.at(1)->Send(f.Bytes(2, static_cast<uint8_t>(i % 256))).ok());
  });
  f.world.scheduler().RunAll();
  const auto msgs = f.R(1).Of("msg");
  REQUIRE(msgs.size() == 500);
  for (int i = 0; i < 500; ++i) {
    CHECK((*msgs[i].message)[0] == i % 256);
    if (i > 0) CHECK(msgs[i].t_ns >= msgs[i - 1].t_ns);
  }
  CHECK(msgs.front().t_ns >= 101 * kMs);
  CHECK(msgs.back().t_ns <= 150 * kMs);
}

TEST_CASE("log-normal latency has the configured median") {
  Xoshiro256 rng(3);
  const LatencyModel m = LatencyModel::LogNormal(milliseconds(20), 0.5);
  std::vector<int64_t> v;
  for (int i = 0; i < 20001; ++i) v.push_back(m.Sample(rng).count());
  std::nth_element(v.begin(), v.begin() + 10000, v.end());
  CHECK(std::fabs(static_cast<double>(v[10000]) / 20e6 - 1.0) < 0.03);
}

TEST_CASE("drop mode loses the configured fraction, retransmit mode delays by whole timeouts") {
  constexpr int kSent = 20000;
  SUBCASE("drop") {
    LinkModel m = Constant(10);
    m.loss = 0.1;
    m.loss_mode = LossMode::kDrop;
    Fixture f(2, m);
    f.R(0).Connect(1);
    f.At(100, [&] {
      for (int i = 0; i < kSent; ++i) CHECK(f.R(0).links.at(1)->Send(f.Bytes(8)).ok());
    });
    f.world.scheduler().RunAll();
    const double received = static_cast<double>(f.R(1).Of("msg").size());
    // sd of the loss fraction = sqrt(0.09 / 20000) = 0.0021; allow ~5 sd.
    CHECK(std::fabs(received / kSent - 0.9) < 0.011);
    CHECK(f.world.counters(0).messages_lost + f.world.counters(1).messages_received == kSent);
    CHECK(f.R(1).Of("down").empty());  // the link stays up
  }
  SUBCASE("retransmit") {
    LinkModel m = Constant(10);
    m.loss = 0.1;
    m.retransmit_timeout = milliseconds(200);
    Fixture f(2, m);
    f.R(0).Connect(1);
    f.At(100, [&] {
      for (int i = 0; i < kSent; ++i) CHECK(f.R(0).links.at(1)->Send(f.Bytes(4, 0)).ok());
    });
    f.world.scheduler().RunAll();
    const auto msgs = f.R(1).Of("msg");
    REQUIRE(msgs.size() == static_cast<size_t>(kSent));
    // Ordered delivery means a message waits for any retransmitted one before
    // it, so the delay of each is a whole number of timeouts (0, 1, 2...).
    int64_t max_delay = 0;
    bool whole = true;
    for (const Logged& l : msgs) {
      const int64_t extra = l.t_ns - 110 * kMs;
      whole = whole && extra >= 0 && extra % (200 * kMs) == 0;
      max_delay = std::max(max_delay, extra);
    }
    CHECK(whole);
    CHECK(max_delay >= 200 * kMs);
    CHECK(f.world.counters(0).messages_lost == 0);
  }
}

TEST_CASE("a partition takes links down at its start and lets connections through after it heals") {
  Fixture f(3, Constant(10));
  f.R(0).Connect(1);
  f.R(0).Connect(2);
  f.world.AddPartition({1}, Ms(1000), Ms(2000));
  f.At(995, [&] { CHECK(f.R(0).links.at(1)->Send(f.Bytes(10)).ok()); });  // would arrive at 1005
  f.At(1500, [&] {
    CHECK(f.world.Partitioned(0, 1));
    CHECK_FALSE(f.world.Partitioned(0, 2));
    CHECK_FALSE(f.R(0).links.at(1)->Send(f.Bytes(10)).ok());
    f.R(0).Connect(1);  // times out at 1500 + 3000
  });
  f.At(2000, [&] {
    CHECK_FALSE(f.world.Partitioned(0, 1));
    f.R(0).Connect(1);
  });
  f.world.scheduler().RunAll();

  const auto down0 = f.R(0).Of("down");
  const auto down1 = f.R(1).Of("down");
  REQUIRE(down0.size() == 1);
  REQUIRE(down1.size() == 1);
  CHECK(down0[0].peer == 1);
  CHECK(down0[0].t_ns == 1000 * kMs);
  CHECK(down1[0].t_ns == 1000 * kMs);
  CHECK(down0[0].why.code() == StatusCode::kUnavailable);
  CHECK(f.R(1).Of("msg").empty());
  CHECK(f.world.counters(0).messages_discarded == 1);
  CHECK(f.R(2).Of("down").empty());  // 0 - 2 was not cut

  REQUIRE(f.R(0).failures.size() == 1);
  CHECK(f.R(0).failures[0].t_ns == 4500 * kMs);
  CHECK(f.R(0).failures[0].why.code() == StatusCode::kUnavailable);
  const auto up0 = f.R(0).Of("up");
  REQUIRE(up0.size() == 3);  // 1, 2, then 1 again after the heal
  CHECK(up0[2].peer == 1);
  CHECK(up0[2].t_ns == 2020 * kMs);
}

TEST_CASE("a crash drops the node's events and links, a restart builds it again on a fresh env") {
  Fixture f(2, Constant(10));
  f.R(0).Connect(1);
  int stale_timer_fired = 0;
  Timer stale;
  uint64_t first_draw_inc0 = 0;
  f.At(500, [&] {
    first_draw_inc0 = f.world.env(1)->rng().Next();
    stale = f.world.env(1)->RunAfter(milliseconds(1000), [&] { ++stale_timer_fired; });
    CHECK(f.R(0).links.at(1)->Send(f.Bytes(10)).ok());
  });
  f.world.CrashAt(1, Ms(1000));
  f.At(1500, [&] {
    CHECK_FALSE(f.world.alive(1));
    CHECK(f.world.env(1) == nullptr);
    f.R(0).Connect(1);  // refused: nothing listens
  });
  f.world.RestartAt(1, Ms(2000));
  f.At(2100, [&] {
    CHECK(f.world.alive(1));
    CHECK(f.world.incarnation(1) == 1);
    CHECK(f.world.env(1)->incarnation() == 1);
    CHECK(f.world.env(1)->rng().Next() != first_draw_inc0);
    f.R(0).Connect(1);
  });
  f.world.scheduler().RunAll();

  CHECK(f.builds == 3);
  CHECK(stale_timer_fired == 0);
  const auto down0 = f.R(0).Of("down");
  REQUIRE(down0.size() == 1);
  CHECK(down0[0].t_ns == 1010 * kMs);  // one latency after the crash
  REQUIRE(f.R(0).failures.size() == 1);
  CHECK(f.R(0).failures[0].t_ns == 1520 * kMs);  // refused after a round trip
  CHECK(f.R(0).failures[0].why.code() == StatusCode::kUnavailable);
  const auto up1 = f.R(1).Of("up");  // the new incarnation's log
  REQUIRE(up1.size() == 1);
  CHECK(up1[0].t_ns == 2130 * kMs);
  CHECK(f.world.counters(1).messages_received == 1);  // counted across incarnations
}

TEST_CASE("compute model and speed factor survive a restart") {
  Fixture f(1);
  f.world.SetComputeModel(0, [] { return milliseconds(4); });
  f.world.SetSpeedFactor(0, 3.0);
  f.world.CrashAt(0, Ms(10));
  f.world.RestartAt(0, Ms(20));
  int64_t done_at = -1;
  f.At(30, [&] {
    SimEnv* env = f.world.env(0);
    REQUIRE(env != nullptr);
    CHECK(env->speed_factor() == 3.0);
    env->RunCompute([] { return Status::Ok(); }, [&, env](const Status&) { done_at = NsOf(env->Now()); });
  });
  CHECK_FALSE(f.world.RunUntil([&] { return done_at >= 0; }, Ms(40)));  // due at 42 ms
  CHECK(f.world.RunUntil([&] { return done_at >= 0; }, Ms(100)));
  CHECK(done_at == 42 * kMs);
}

TEST_CASE("connect failures: unknown name, wrong pinned key") {
  Fixture f(2, Constant(10), CryptoModel{0, Duration(0), microseconds(300)});
  f.world.env(0)->network().Connect(f.world.peer_id(1), NetAddress{"nobody", 1}, [&](const Status& st) {
    CHECK(st.code() == StatusCode::kNotFound);
    CHECK(f.world.Now() == TimePoint{});
  });
  PeerId wrong = f.world.peer_id(1);
  wrong[0] ^= 1;
  f.R(0).Connect(1, &wrong);
  f.world.scheduler().RunAll();
  REQUIRE(f.R(0).failures.size() == 1);
  CHECK(f.R(0).failures[0].why.code() == StatusCode::kCorruption);
  CHECK(f.R(0).failures[0].t_ns == 20 * kMs + 300000);
  CHECK(f.R(0).Of("up").empty());
  CHECK(f.R(1).Of("up").empty());
  CHECK(f.world.counters(0).connects_failed == 2);
}

TEST_CASE("close: the peer hears it one latency later, after what was sent before") {
  Fixture f(2, Constant(10));
  f.R(0).Connect(1);
  f.At(100, [&] {
    auto link = f.R(0).links.at(1);
    CHECK(link->Send(f.Bytes(3)).ok());
    link->Close("done");
    CHECK(link->Send(f.Bytes(3)).code() == StatusCode::kFailedPrecondition);
  });
  f.world.scheduler().RunAll();
  const auto log1 = f.R(1).log;
  REQUIRE(log1.size() == 3);
  CHECK(log1[1].kind == "msg");
  CHECK(log1[2].kind == "down");
  CHECK(log1[2].t_ns == 110 * kMs);
  CHECK(log1[2].why.message().find("done") != std::string::npos);
  CHECK(f.R(0).Of("down").empty());  // the closer gets no callback
}

TEST_CASE("backpressure: Send refuses beyond max_queued_bytes") {
  LinkModel m = Constant(10, 1000);  // 1 kB/s: a 1000-byte message holds the link 1 s
  m.max_queued_bytes = 2500;
  Fixture f(2, m);
  f.R(0).Connect(1);
  f.At(100, [&] {
    auto link = f.R(0).links.at(1);
    CHECK(link->Send(f.Bytes(1000)).ok());
    CHECK(link->Send(f.Bytes(1000)).ok());
    CHECK(link->Send(f.Bytes(1000)).code() == StatusCode::kUnavailable);
    CHECK(link->queued_bytes() == 2000);
  });
  f.At(1100, [&] { CHECK(f.R(0).links.at(1)->Send(f.Bytes(1000)).ok()); });  // one drained
  f.world.scheduler().RunAll();
  CHECK(f.R(1).Of("msg").size() == 3);
}

TEST_CASE("one payload reaches every neighbour without a copy") {
  Fixture f(3, Constant(5));
  f.R(0).Connect(1);
  f.R(0).Connect(2);
  SharedBytes payload = f.Bytes(1 << 16, 7);
  f.At(100, [&] {
    CHECK(f.R(0).links.at(1)->Send(payload).ok());
    CHECK(f.R(0).links.at(2)->Send(payload).ok());
  });
  f.world.scheduler().RunAll();
  REQUIRE(f.R(1).Of("msg").size() == 1);
  REQUIRE(f.R(2).Of("msg").size() == 1);
  CHECK(f.R(1).Of("msg")[0].message.get() == payload.get());
  CHECK(f.R(2).Of("msg")[0].message.get() == payload.get());
}

TEST_CASE("per-pair overrides apply in one direction only") {
  Fixture f(2, Constant(10));
  f.world.SetLink(0, 1, Constant(50));
  f.R(0).Connect(1);
  f.At(1000, [&] {
    CHECK(f.R(0).links.at(1)->Send(f.Bytes(1)).ok());
    CHECK(f.R(1).links.at(0)->Send(f.Bytes(1)).ok());
  });
  f.world.scheduler().RunAll();
  CHECK(f.R(1).Of("msg").at(0).t_ns == 1050 * kMs);
  CHECK(f.R(0).Of("msg").at(0).t_ns == 1010 * kMs);
}

}  // namespace
}  // namespace dpnode::sim
