// The Node: one site's event-driven state machine, written against Env only.
//
// It owns the site's membership view and averaging policy, and drives local
// training through a Trainer, charging every step to the privacy ledger before
// the step runs. Phases:
//
//   kTraining  a local DP-SGD step, then the next one step_interval later;
//              gossip runs on its own timer in between. Steps are reserved
//              from the ledger in blocks of reserve_block_steps (the last
//              block shrinks to what the budget still pays for).
//   kMixing    the budget is spent (or max_steps reached, or training
//              failed): no more steps; gossip goes on until the estimate
//              settles: relative change ‖x_t − x_{t−1}‖ / ‖x_t‖ below
//              settle_tolerance on settle_window consecutive gossip ticks
//              in which we accepted a share (ticks without one do not
//              count: an isolated model is still, not settled).
//   kDone      settled; on_done fires once. The Node keeps answering and
//              mixing (neighbours may still be converging) until Stop().
//
// Sessions: on every new link both sides send Hello; a Hello that fails
// protocol::CheckHello gets a Goodbye with the reason and the link is closed
// (each side logs why). A greeted peer is sent every peer record we hold
// (peer exchange); newly accepted records are forwarded to everyone else.
//
// Incoming shares are checked (gossip::FromWire: our tensor names, shapes and
// dtype, finite values, norm bound, weight, round) before the policy sees
// them. A refused share lowers the sender's score; below the floor the peer
// gets a Goodbye(protocol violation) and is banned for a while.
//
// No global barrier: nothing waits for a particular peer except D-PSGD's
// per-round wait, which times out (averaging.h).
//
// Lifetimes: `env`, `identity`, `allowlist` (copied), `ledger` and `trainer`
// are passed by reference and must outlive the Node; destroy the Node only on
// its loop. A training step still running in RunCompute when the Node is
// destroyed finishes without touching the Node (a liveness token guards the
// callback), but the trainer must still be alive for it.
#ifndef DPNODE_NODE_NODE_H_
#define DPNODE_NODE_NODE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "crypto/identity.h"
#include "crypto/peers.h"
#include "node/env.h"
#include "node/gossip/averaging.h"
#include "node/gossip/membership.h"
#include "node/gossip/share_codec.h"
#include "node/privacy/ledger.h"
#include "node/trainer.h"
#include "protocol/messages.h"

namespace dpnode::node {

struct NodeOptions {
  // Hello contents (protocol/messages.h): the session goes on only with a
  // peer of the same protocol version, consortium and model fingerprint.
  std::string site_name = "site";
  std::string consortium_id = "consortium";
  protocol::Bytes model_fingerprint = protocol::Bytes(protocol::kModelFingerprintSize, 0);

  // Where we listen (nullopt: outbound only) and what our signed peer record
  // announces; record_sequence must grow across restarts (e.g. a counter in
  // the state directory) so that peers replace our old record.
  std::optional<NetAddress> listen;
  std::vector<NetAddress> announce;
  uint64_t record_sequence = 1;

  gossip::PolicyKind policy = gossip::PolicyKind::kPushSum;
  Duration round_timeout = std::chrono::seconds(5);  // see PolicyOptions
  protocol::DType wire_dtype = protocol::DType::kFloat32;
  gossip::ShareChecks share_checks;  // its dtype is replaced by wire_dtype
  gossip::MembershipOptions membership;
  protocol::Limits limits;

  Duration gossip_interval = std::chrono::milliseconds(100);  // mean; jittered ±25%
  Duration step_interval = std::chrono::milliseconds(0);  // pause between steps

  // Training. train = false starts in kMixing (pure averaging, no ledger).
  bool train = true;
  int64_t reserve_block_steps = 10;
  int64_t max_steps = -1;  // -1: until the budget is spent
  // The first local step waits until at least this many peers have a
  // session with us, or until wait_for_peers_timeout has passed since
  // Start(), whichever comes first (then it logs how many it had). 0: train
  // at once. A site that starts before the others would otherwise spend its
  // budget alone and only average afterwards. A gate on the first step only:
  // peers that leave later stall nobody.
  int wait_for_peers = 0;
  Duration wait_for_peers_timeout = std::chrono::seconds(60);

  double settle_tolerance = 1e-4;
  int settle_window = 10;

  double bad_share_penalty = 40;   // score points (membership.h)
  double bad_message_penalty = 20;
  double good_share_reward = 1;

  // Where log lines go ("[site] ..."). Per node: no global logger.
  std::function<void(const std::string&)> log;
};

struct NodeMetrics {
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
  uint64_t messages_sent = 0;
  uint64_t messages_received = 0;
  uint64_t undecodable_messages = 0;
  uint64_t shares_sent = 0;
  uint64_t shares_unsent = 0;     // policy output no link would take
  uint64_t shares_accepted = 0;
  uint64_t shares_rejected = 0;   // failed the checks: the peer is blamed
  uint64_t shares_stale = 0;      // valid but of no use to the policy
  uint64_t records_accepted = 0;  // new peer records (ours excluded)
  uint64_t records_refused = 0;   // unpinned, forged or malformed
  uint64_t hello_mismatches = 0;
  uint64_t goodbyes_sent = 0;
  uint64_t goodbyes_received = 0;
  uint64_t peers_declared_dead = 0;
  uint64_t rounds = 0;            // the policy's round counter
  int64_t steps = 0;              // local DP-SGD steps completed
  int64_t steps_reserved = 0;     // steps charged to the ledger by this Node
  double epsilon_spent = 0;       // the ledger's ε after our last charge
};

enum class Phase { kTraining, kMixing, kDone };
const char* PhaseName(Phase phase);

class Node : public LinkHandler {
 public:
  // `ledger` may be null only when options.train is false.
  Node(Env& env, const crypto::SiteIdentity& identity, const crypto::PeerList& allowlist,
       privacy::Ledger* ledger, Trainer& trainer, NodeOptions options);
  ~Node() override;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Registers with the network, listens, signs our peer record, starts the
  // timers and dials every peer with a known address. Errors:
  // InvalidArgument for a Hello or peer record that would not validate (site
  // name, consortium id, fingerprint size, announce addresses); whatever
  // Listen returns.
  Status Start();
  // Goodbye(shutdown) to every peer, closes links, cancels timers; links
  // that come up afterwards are closed at once. Call it before destroying a
  // started Node: the Network keeps its handler pointer.
  void Stop();

  // Runs `fn` on the loop at a moment when no training step is running: at
  // once if none is, else right after the running step's update has been
  // applied to the estimate (before the next step starts). Inside `fn` the
  // trainer may be read (e.g. its optimiser state for a checkpoint) and
  // Estimate() includes every completed step. Callbacks still pending when
  // the Node is destroyed are dropped.
  void WhenIdle(std::function<void()> fn);
  // No new training step starts from now on (the phase is not changed and no
  // reason is recorded: this is a shutdown, not the end of training). A step
  // already running finishes and is applied; `idle` then runs as WhenIdle's
  // `fn`. Steps reserved from the ledger but not run stay charged.
  void HoldTraining(std::function<void()> idle);
  bool step_running() const { return step_running_; }
  // Training has not started yet: waiting for options.wait_for_peers peers.
  bool waiting_for_peers() const { return !peer_gate_open_ && phase_ == Phase::kTraining; }

  const PeerId& id() const { return self_; }
  Phase phase() const { return phase_; }
  bool done() const { return phase_ == Phase::kDone; }
  // The reason training stopped (BudgetExhausted, a trainer or ledger error,
  // or OK for max_steps / train = false).
  const Status& training_stop_reason() const { return stop_reason_; }
  void set_on_done(std::function<void()> fn) { on_done_ = std::move(fn); }

  std::vector<double> Estimate() const { return policy_->Estimate(); }
  const NodeMetrics& metrics() const { return metrics_; }
  const gossip::Membership& membership() const { return membership_; }
  const gossip::AveragingPolicy& policy() const { return *policy_; }
  const gossip::Layout& layout() const { return layout_; }

  // LinkHandler.
  void OnLinkUp(const std::shared_ptr<Link>& link) override;
  void OnMessage(const std::shared_ptr<Link>& link, const SharedBytes& message) override;
  void OnLinkDown(const std::shared_ptr<Link>& link, const Status& why) override;

 private:
  struct LinkState {
    std::shared_ptr<Link> link;
    PeerId peer{};
    bool greeted = false;  // their Hello passed CheckHello
  };

  void Log(const std::string& line) const;
  std::string Name(const PeerId& peer) const { return membership_.NameOf(peer); }

  // Timers.
  void GossipTick();
  void MembershipTick();
  void ScheduleStep(Duration delay);
  void StartStep();
  void OnStepDone(const Status& status, const std::vector<double>& before);
  void StopTraining(Status why);
  void CheckSettled();
  void RunIdleCallbacks();

  // Links and messages.
  bool SendTo(Link& link, const SharedBytes& frame);
  template <typename M>
  bool SendMessage(Link& link, const M& message);
  void SendGoodbye(Link& link, protocol::GoodbyeReason reason, const std::string& text);
  void CloseLink(Link* link, const std::string& reason);
  void ForgetLink(Link* link);
  Link* ActiveLink(const PeerId& peer) const;
  void SendShares(std::vector<gossip::Outgoing> out);
  void Blame(LinkState& st, double penalty, const std::string& why);

  void HandleHello(LinkState& st, const protocol::Hello& hello);
  void HandleRecord(LinkState& st, const protocol::PeerRecord& record);
  void HandleShare(LinkState& st, const protocol::GossipShare& share);

  Env& env_;
  const crypto::SiteIdentity& identity_;
  PeerId self_{};
  privacy::Ledger* ledger_;
  Trainer& trainer_;
  NodeOptions options_;
  gossip::Layout layout_;
  gossip::Membership membership_;
  std::unique_ptr<gossip::AveragingPolicy> policy_;
  protocol::Hello hello_;

  std::map<Link*, LinkState> links_;
  std::map<PeerId, Link*> active_;  // the greeted link we use per peer

  Phase phase_ = Phase::kTraining;
  Status stop_reason_;
  bool started_ = false;
  bool stopped_ = false;  // Stop() ran: new links are refused
  bool step_running_ = false;
  bool hold_steps_ = false;  // HoldTraining: no new steps
  bool peer_gate_open_ = true;  // wait_for_peers met (or timed out, or 0)
  TimePoint started_at_{};
  std::vector<std::function<void()>> when_idle_;
  int64_t reserved_unrun_ = 0;  // charged steps not yet run
  privacy::StepBlock step_cost_;

  std::optional<std::vector<double>> last_estimate_;
  uint64_t accepted_at_last_check_ = 0;
  int calm_ticks_ = 0;
  uint64_t probe_sequence_ = 0;

  Timer gossip_timer_;
  Timer membership_timer_;
  Timer step_timer_;
  std::function<void()> on_done_;
  NodeMetrics metrics_;
  // Expires with the Node, so late RunCompute completions do nothing.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace dpnode::node

#endif  // DPNODE_NODE_NODE_H_
