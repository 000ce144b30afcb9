// The simulated network: a World that knows every simulated node, and the
// per-node SimNetwork (dpnode::Network) and SimLink (dpnode::Link) the nodes
// see through their SimEnv.
//
// Model, per directed pair a -> b ("physical link", shared by every
// connection between them, with its own seeded stream SeedTree::Link(a, b)):
//   send at t:  seal   = crypto.aead_per_message + bytes / crypto.aead_bytes_per_second
//               start  = max(t + seal, busy_until)          FIFO queueing
//               finish = start + bytes / bandwidth           serialization
//               busy_until = finish
//               arrive = finish + latency sample + open (same cost as seal)
//   delivery  = max(arrive, previous delivery on the connection)   ordered
// `bytes` is the payload plus LinkModel::overhead_bytes. A message counts in
// Link::queued_bytes() until `finish`.
//
// Loss. Env's Link is reliable while open, as the secure channel over TCP is.
// LossMode::kRetransmit (default) keeps that promise: each loss (probability
// `loss`, independent) delays the message by one retransmit_timeout, as TCP
// would. LossMode::kDrop drops the message silently while the link stays up,
// which the real transport never does (it would detect the gap and reconnect);
// it exists to test that push-sum tolerates lost shares. Either way a lost
// message has used the sender's bandwidth and counts in its bytes_sent.
//
// Partitions. When a partition starts, every open connection across it goes
// down at once on both sides (OnLinkDown, kUnavailable "partitioned"; the real
// transport would notice after its keepalive timeout); messages in flight
// across it are lost; connection attempts across it fail after
// connect_timeout (from the attempt, or from the first handshake message if
// the partition starts during the handshake). Healing restores reachability;
// reconnecting is the nodes' policy, as in the real daemon.
//
// Crash and restart. A crash marks the node dead, drops its pending events,
// closes its links (peers see OnLinkDown one latency later), and destroys the
// node object and then its SimEnv. A restart builds a fresh SimEnv (a new,
// deterministic rng stream) and calls the node's factory again: the factory
// must reopen the node's ledger and checkpoint, as a real restart does.
//
// Connecting. Connect(peer, address) resolves address.host to a node name
// (the port is ignored), so a harness names each node by the host its peers
// will dial. The target must be alive and have called Listen() when the
// first handshake message arrives, else "refused" one round trip later.
// The Noise XX handshake is modelled as three one-way trips plus
// crypto.handshake of compute on each side: the initiator's OnLinkUp fires
// after two latencies, the responder's after the third. A PeerId that does
// not match the target's fails with kCorruption, as a pinning failure does.
//
// Closing. Link::Close() gives the closer no callback; the peer sees OnLinkDown
// one latency later, after the messages the closer had sent.
//
// Payloads are SharedBytes handed by pointer to the receiver: never copied.
// Everything is single-threaded and runs on the World's Scheduler.
#ifndef DPNODE_SIM_SIM_NETWORK_H_
#define DPNODE_SIM_SIM_NETWORK_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "node/env.h"
#include "sim/scheduler.h"
#include "sim/seeds.h"
#include "sim/sim_env.h"

namespace dpnode::sim {

// One-way propagation delay of a directed link.
struct LatencyModel {
  enum class Kind { kConstant, kUniform, kLogNormal };
  Kind kind = Kind::kConstant;
  Duration a = std::chrono::milliseconds(5);         // constant value; uniform low end; log-normal median
  Duration b = Duration(0);  // uniform high end
  double sigma = 0.0;        // log-normal shape (of the natural log)

  static LatencyModel Constant(Duration d) { return {Kind::kConstant, d, Duration(0), 0.0}; }
  static LatencyModel Uniform(Duration lo, Duration hi) { return {Kind::kUniform, lo, hi, 0.0}; }
  static LatencyModel LogNormal(Duration median, double sigma) {
    return {Kind::kLogNormal, median, Duration(0), sigma};
  }
  Duration Sample(Xoshiro256& rng) const;
};

enum class LossMode { kRetransmit, kDrop };

struct LinkModel {
  LatencyModel latency;
  // Bytes per second; 0 means unlimited (no serialization delay).
  double bandwidth_bytes_per_second = 125e6;  // 1 Gbit/s
  double loss = 0.0;                          // per message, in [0, 1)
  LossMode loss_mode = LossMode::kRetransmit;
  Duration retransmit_timeout = std::chrono::milliseconds(200);
  // Framing and AEAD tag per message, counted on the wire and in counters.
  size_t overhead_bytes = 0;
  // Send() returns kUnavailable beyond this many unsent bytes on a connection.
  size_t max_queued_bytes = size_t{64} << 20;
};

// Crypto time charged to messages and handshakes (CPU time of one side).
// Defaults measured by bench/crypto_bench through SecureChannel itself on
// 2026-11-28, on the project's 2-core AMD EPYC VM (load average 6-13 from
// other builds; the figures are CPU time, which moved < 1.5% between runs): a
// least-squares fit t = a + bytes / b over 64 B-1 MiB messages gave
// a = 0.47 us (seal) / 0.48-0.49 us (open) and b = 1.57-1.59 GB/s for both;
// a full Noise XX handshake with the Ed25519 identity proofs took 203-205 us
// of CPU on each side. Rounded here; docs/benchmarks.md has the table and the
// command. Experiment files override them with a [crypto] table.
struct CryptoModel {
  double aead_bytes_per_second = 1.6e9;  // 0 = free
  Duration aead_per_message = std::chrono::nanoseconds(500);
  Duration handshake = std::chrono::microseconds(200);  // per side, charged twice
};

// Cumulative over all incarnations of a node. Bytes are payload plus
// LinkModel::overhead_bytes.
struct NodeCounters {
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
  uint64_t messages_sent = 0;
  uint64_t messages_received = 0;
  uint64_t messages_lost = 0;       // sent by this node, dropped by kDrop loss
  uint64_t messages_discarded = 0;  // sent by this node, arrived at a closed link
  uint64_t links_up = 0;
  uint64_t connects_failed = 0;
};

class World;

// The state of one directed pair a -> b, shared by all its connections.
struct DirectedLinkState {
  LinkModel model;
  Xoshiro256 rng;
  TimePoint busy_until{};
};

// A node's end of one simulated connection.
class SimLink final : public Link {
 public:
  const PeerId& peer() const override { return peer_id_; }
  Status Send(SharedBytes message) override;
  size_t queued_bytes() const override;
  void Close(const std::string& reason) override;

  NodeIndex self() const { return self_; }
  NodeIndex peer_index() const { return peer_; }
  bool open() const { return open_; }

  // Only World can make the key (so only World builds links), while
  // std::make_shared can still reach the constructor.
  class Key {
    friend class World;
    Key() {}  // user-provided: no aggregate init from outside
  };
  SimLink(Key, World* world, NodeIndex self, NodeIndex peer, PeerId peer_id)
      : self_(self), peer_(peer), world_(world), peer_id_(peer_id) {}

 private:
  friend class World;

  // Fields touched by every delivery first, to share cache lines.
  bool open_ = true;  // may send; deliveries to it are accepted
  bool up_reported_ = false;
  bool down_reported_ = false;
  NodeIndex self_;
  NodeIndex peer_;
  // Messages travelling to this side, in delivery order. Each has one
  // scheduled event that captures only a raw pointer (no allocation per
  // message); self_hold_ keeps this object alive while any is in flight.
  // Up to two wait inline (the common case: one gossip share per round),
  // more spill to a vector, so a delivery touches one less cache line.
  struct InFlight {
    SharedBytes message;
    size_t bytes = 0;
  };
  void PushInFlight(SharedBytes message, size_t bytes);
  InFlight PopInFlight();
  void ClearInFlight();
  size_t inflight_count_ = 0;
  size_t inflight_head_ = 0;  // into small_ (mode small) or big_ (mode big)
  std::shared_ptr<SimLink> self_hold_;
  InFlight small_[2];
  std::vector<InFlight> big_;
  World* world_;
  DirectedLinkState* out_ = nullptr;  // self_ -> peer_
  TimePoint not_before_{};            // next delivery to this side happens no earlier
  // (serialization finish time, bytes), finish times non-decreasing.
  mutable std::vector<std::pair<TimePoint, size_t>> wire_;
  mutable size_t wire_head_ = 0;
  mutable size_t queued_ = 0;
  std::weak_ptr<SimLink> other_;
  PeerId peer_id_;
};

class World {
 public:
  // Builds a node on `env` (Listen, Connect, timers...). Called at Start()
  // and again at each restart. The returned object is owned by the World and
  // destroyed at a crash or when the World dies.
  using NodeFactory = std::function<std::shared_ptr<void>(SimEnv& env)>;

  explicit World(uint64_t root_seed);
  ~World();
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  Scheduler& scheduler() { return scheduler_; }
  const SeedTree& seeds() const { return seeds_; }
  TimePoint Now() const { return scheduler_.Now(); }
  // Shorthands for the scheduler's run loops.
  bool RunUntil(const std::function<bool()>& done, TimePoint deadline) {
    return scheduler_.RunUntil(done, deadline);
  }
  void RunFor(Duration d) { scheduler_.RunFor(d); }

  // Registers a node; names are unique and double as its network address.
  // With no `id`, a deterministic id is derived from the seed. Nodes are
  // built by Start() (or at once if Start() already ran).
  NodeIndex AddNode(const std::string& name, NodeFactory factory);
  NodeIndex AddNode(const std::string& name, const PeerId& id, NodeFactory factory);
  void Start();

  // Link models: the default for every directed pair, and per-pair overrides
  // (apply to current and future connections).
  void SetDefaultLink(const LinkModel& model);
  void SetLink(NodeIndex from, NodeIndex to, const LinkModel& model);
  void SetLinkBoth(NodeIndex a, NodeIndex b, const LinkModel& model) {
    SetLink(a, b, model);
    SetLink(b, a, model);
  }
  void SetCrypto(const CryptoModel& crypto) { crypto_ = crypto; }
  void SetConnectTimeout(Duration d) { connect_timeout_ = d; }

  // Compute model and speed factor of node `i`, kept across restarts.
  void SetComputeModel(NodeIndex i, SimEnv::ComputeModel model);
  void SetSpeedFactor(NodeIndex i, double factor);

  // Separates `side` from every other node during [start, heal).
  void AddPartition(const std::vector<NodeIndex>& side, TimePoint start, TimePoint heal);
  bool Partitioned(NodeIndex a, NodeIndex b) const;
  // Crashes / restarts node `i` at virtual time `at` (no-op if already so).
  void CrashAt(NodeIndex i, TimePoint at);
  void RestartAt(NodeIndex i, TimePoint at);
  // Immediate forms, for the harness between events or from a world event;
  // never from inside node i's own callbacks (the node is destroyed).
  void Crash(NodeIndex i);
  void Restart(NodeIndex i);

  size_t size() const { return nodes_.size(); }
  const std::string& name(NodeIndex i) const { return nodes_[i].name; }
  const PeerId& peer_id(NodeIndex i) const { return nodes_[i].id; }
  NetAddress address(NodeIndex i) const { return NetAddress{nodes_[i].name, 0}; }
  bool alive(NodeIndex i) const { return nodes_[i].alive; }
  uint32_t incarnation(NodeIndex i) const { return nodes_[i].incarnation; }
  // Null while the node is crashed (or before Start()).
  SimEnv* env(NodeIndex i) { return nodes_[i].env.get(); }
  // The object the factory built, as the type it built (unchecked cast).
  template <typename T>
  std::shared_ptr<T> node(NodeIndex i) const {
    return std::static_pointer_cast<T>(nodes_[i].node);
  }
  const NodeCounters& counters(NodeIndex i) const { return nodes_[i].counters; }
  // Open connections of node `i` (both handshake-complete and pending).
  size_t open_links(NodeIndex i) const;

 private:
  friend class SimLink;
  friend class SimNetwork;
  struct Partition {
    std::vector<bool> side;
    bool active = false;
  };
  struct NodeSlot {
    // Hot (every delivery) first.
    LinkHandler* handler = nullptr;
    NodeCounters counters;
    std::string name;
    PeerId id{};
    NodeFactory factory;
    std::unique_ptr<SimEnv> env;
    std::shared_ptr<void> node;
    bool alive = false;
    bool built = false;
    bool listening = false;
    uint32_t incarnation = 0;
    SimEnv::ComputeModel compute_model;
    double speed_factor = 1.0;
    std::vector<std::shared_ptr<SimLink>> links;
  };

  void Build(NodeIndex i);
  DirectedLinkState& GetLink(NodeIndex from, NodeIndex to);
  // Calls from a SimNetwork of `incarnation`; stale incarnations are ignored.
  bool Current(NodeIndex i, uint32_t incarnation) const {
    return nodes_[i].alive && nodes_[i].incarnation == incarnation;
  }
  void SetHandler(NodeIndex i, uint32_t incarnation, LinkHandler* handler);
  Status Listen(NodeIndex i, uint32_t incarnation, const NetAddress& address);
  void Connect(NodeIndex i, uint32_t incarnation, const PeerId& peer, const NetAddress& address,
               std::function<void(const Status&)> failed);
  void CompleteHandshake(NodeIndex a, NodeIndex b, const PeerId& peer, TimePoint responder_up,
                         std::function<void(const Status&)> failed);
  Status Send(SimLink& link, SharedBytes message);
  void DeliverNext(SimLink* to);
  void CloseFrom(SimLink& link, const std::string& reason, bool notify_after_latency);
  void ReportDown(const std::shared_ptr<SimLink>& link, const Status& why);
  void ApplyPartition(size_t p);
  Duration SealCost(size_t bytes) const;

  Scheduler scheduler_;
  SeedTree seeds_;
  LinkModel default_link_;
  CryptoModel crypto_;
  Duration connect_timeout_ = std::chrono::seconds(3);
  std::vector<NodeSlot> nodes_;
  std::unordered_map<std::string, NodeIndex> by_name_;
  std::unordered_map<uint64_t, LinkModel> overrides_;
  std::unordered_map<uint64_t, std::unique_ptr<DirectedLinkState>> links_;
  std::vector<Partition> partitions_;
  size_t active_partitions_ = 0;
  bool started_ = false;
};

// Node `i`'s dpnode::Network: forwards to the World with its incarnation, so
// a crashed incarnation's late calls are ignored.
class SimNetwork final : public Network {
 public:
  SimNetwork(World& world, NodeIndex node, uint32_t incarnation)
      : world_(world), node_(node), incarnation_(incarnation) {}
  void SetHandler(LinkHandler* handler) override { world_.SetHandler(node_, incarnation_, handler); }
  Status Listen(const NetAddress& address) override { return world_.Listen(node_, incarnation_, address); }
  void Connect(const PeerId& peer, const NetAddress& address,
               std::function<void(const Status&)> failed) override {
    world_.Connect(node_, incarnation_, peer, address, std::move(failed));
  }

 private:
  World& world_;
  const NodeIndex node_;
  const uint32_t incarnation_;
};

}  // namespace dpnode::sim

#endif  // DPNODE_SIM_SIM_NETWORK_H_
