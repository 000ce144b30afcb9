// The Node state machine (node.h).
#include "node/node.h"

#include <algorithm>
#include <cmath>

#include "base/check.h"
#include "protocol/codec.h"
#include "protocol/hello.h"
#include "protocol/peer_record.h"

namespace dpnode::node {

const char* PhaseName(Phase phase) {
  switch (phase) {
    case Phase::kTraining:
      return "training";
    case Phase::kMixing:
      return "mixing";
    case Phase::kDone:
      return "done";
  }
  return "?";
}

namespace {
std::vector<double> ToDouble(const std::vector<float>& v) { return {v.begin(), v.end()}; }
std::vector<float> ToFloat(const std::vector<double>& v) {
  std::vector<float> f(v.size());
  for (size_t i = 0; i < v.size(); ++i) f[i] = static_cast<float>(v[i]);
  return f;
}
}  // namespace

Node::Node(Env& env, const crypto::SiteIdentity& identity, const crypto::PeerList& allowlist,
           privacy::Ledger* ledger, Trainer& trainer, NodeOptions options)
    : env_(env),
      identity_(identity),
      self_(identity.public_key()),
      ledger_(ledger),
      trainer_(trainer),
      options_(std::move(options)),
      layout_(trainer.ParameterLayout()),
      membership_(allowlist, identity.public_key(), options_.membership) {
  DPNODE_CHECK(ledger_ != nullptr || !options_.train, "a training Node needs a ledger");
  options_.share_checks.dtype = options_.wire_dtype;
  gossip::PolicyOptions po;
  po.float32_wire = options_.wire_dtype == protocol::DType::kFloat32;
  po.round_timeout = options_.round_timeout;
  std::vector<float> initial = trainer_.Parameters();
  DPNODE_CHECK(initial.size() == gossip::LayoutSize(layout_), "trainer gave %zu values for %zu",
               initial.size(), gossip::LayoutSize(layout_));
  policy_ = gossip::MakePolicy(options_.policy, ToDouble(initial), po);
  step_cost_ = trainer_.StepCost();
  hello_.protocol_version = protocol::kProtocolVersion;
  hello_.consortium_id = options_.consortium_id;
  hello_.model_fingerprint = options_.model_fingerprint;
  hello_.site_name = options_.site_name;
  hello_.capabilities = protocol::kCapabilityPushSum;
  if (!options_.train) phase_ = Phase::kMixing;
}

Node::~Node() {
  *alive_ = false;
  gossip_timer_.Cancel();
  membership_timer_.Cancel();
  step_timer_.Cancel();
}

void Node::Log(const std::string& line) const {
  if (options_.log) options_.log("[" + options_.site_name + "] " + line);
}

Status Node::Start() {
  DPNODE_CHECK(!started_, "Start() twice");
  started_ = true;
  // A Hello we could not encode would leave every session silently hanging.
  DPNODE_RETURN_IF_ERROR(protocol::Validate(hello_).WithContext("our hello (site name, "
                                                                 "consortium, fingerprint)"));
  protocol::PeerRecord record;
  for (const NetAddress& a : options_.announce) record.addresses.push_back({a.host, a.port});
  record.sequence = options_.record_sequence;
  DPNODE_RETURN_IF_ERROR(protocol::SignPeerRecord(identity_, &record).WithContext("our peer record"));
  Result<gossip::RecordOutcome> own = membership_.OfferRecord(record);
  if (!own.ok()) return own.status().WithContext("our peer record");

  env_.network().SetHandler(this);
  if (options_.listen) DPNODE_RETURN_IF_ERROR(env_.network().Listen(*options_.listen));

  gossip_timer_ = env_.RunAfter(options_.gossip_interval, [this] { GossipTick(); });
  membership_timer_ = env_.RunAfter(Duration::zero(), [this] { MembershipTick(); });
  started_at_ = env_.Now();
  peer_gate_open_ = options_.wait_for_peers <= 0;
  if (phase_ == Phase::kTraining) ScheduleStep(Duration::zero());
  Log("started: policy " + std::string(gossip::PolicyKindName(options_.policy)) + ", " +
      std::to_string(gossip::LayoutSize(layout_)) + " parameters, phase " + PhaseName(phase_));
  return Status::Ok();
}

void Node::Stop() {
  stopped_ = true;
  std::vector<Link*> all;
  for (auto& [ptr, st] : links_) all.push_back(ptr);
  for (Link* l : all) {
    SendGoodbye(*l, protocol::GoodbyeReason::kShutdown, "site is shutting down");
    CloseLink(l, "shutdown");
  }
  gossip_timer_.Cancel();
  membership_timer_.Cancel();
  step_timer_.Cancel();
}

// ---------------------------------------------------------------- training

void Node::WhenIdle(std::function<void()> fn) {
  if (!step_running_) {
    fn();
    return;
  }
  when_idle_.push_back(std::move(fn));
}

void Node::HoldTraining(std::function<void()> idle) {
  hold_steps_ = true;
  step_timer_.Cancel();
  WhenIdle(std::move(idle));
}

void Node::RunIdleCallbacks() {
  // A callback may call WhenIdle again (it runs at once: no step is running).
  std::vector<std::function<void()>> pending;
  pending.swap(when_idle_);
  for (auto& fn : pending) fn();
}

void Node::ScheduleStep(Duration delay) {
  step_timer_ = env_.RunAfter(delay, [this] { StartStep(); });
}

void Node::StopTraining(Status why) {
  if (phase_ != Phase::kTraining) return;
  stop_reason_ = std::move(why);
  phase_ = Phase::kMixing;
  step_timer_.Cancel();
  Log("training stopped after " + std::to_string(metrics_.steps) + " steps (" +
      (stop_reason_.ok() ? std::string("step limit") : stop_reason_.ToString()) +
      "); mixing until the model settles");
}

void Node::StartStep() {
  if (phase_ != Phase::kTraining || step_running_ || hold_steps_) return;
  if (!peer_gate_open_) {
    const size_t have = membership_.Partners().size();
    const size_t want = static_cast<size_t>(options_.wait_for_peers);
    if (have >= want) {
      peer_gate_open_ = true;
      Log(std::to_string(have) + " peer(s) connected: training starts");
    } else if (env_.Now() - started_at_ >= options_.wait_for_peers_timeout) {
      peer_gate_open_ = true;
      Log("waited " +
          std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                             options_.wait_for_peers_timeout).count()) +
          " s for " + std::to_string(want) + " peer(s), " + std::to_string(have) +
          " connected: training starts anyway");
    } else {
      // Look again in one gossip interval; nothing is charged while waiting.
      ScheduleStep(options_.gossip_interval);
      return;
    }
  }
  if (options_.max_steps >= 0 && metrics_.steps >= options_.max_steps) {
    StopTraining(Status::Ok());
    return;
  }
  if (reserved_unrun_ == 0) {
    // Charge before running: the ledger must hold the record first (ledger.h).
    privacy::StepBlock block = step_cost_;
    block.steps = options_.reserve_block_steps;
    if (options_.max_steps >= 0) {
      block.steps = std::min(block.steps, options_.max_steps - metrics_.steps);
    }
    Result<privacy::ChargeReceipt> receipt = ledger_->Reserve(block);
    if (!receipt.ok() && receipt.status().code() == StatusCode::kBudgetExhausted) {
      // The last block: whatever the budget still pays for.
      Result<privacy::StepsCalibration> left =
          ledger_->StepsRemaining(step_cost_.sample_rate, step_cost_.noise_multiplier);
      if (left.ok() && left->steps > 0 && left->steps < block.steps) {
        block.steps = left->steps;
        receipt = ledger_->Reserve(block);
      }
    }
    if (!receipt.ok()) {
      StopTraining(receipt.status());
      return;
    }
    reserved_unrun_ = block.steps;
    metrics_.steps_reserved += block.steps;
    metrics_.epsilon_spent = receipt->epsilon_spent;
  }
  --reserved_unrun_;
  std::vector<double> before = policy_->Estimate();
  Status set = trainer_.SetParameters(ToFloat(before));
  if (!set.ok()) {
    StopTraining(set);
    return;
  }
  // What the trainer will start from, as float: the delta is measured from it.
  std::vector<double> start = ToDouble(trainer_.Parameters());
  step_running_ = true;
  Trainer* trainer = &trainer_;
  std::weak_ptr<bool> alive = alive_;
  env_.RunCompute([trainer] { return trainer->Step(); },
                  [this, alive, start = std::move(start)](const Status& s) {
                    if (alive.expired()) return;
                    OnStepDone(s, start);
                  });
}

void Node::OnStepDone(const Status& status, const std::vector<double>& before) {
  step_running_ = false;
  if (!status.ok()) {
    StopTraining(status.WithContext("training step"));
    RunIdleCallbacks();
    return;
  }
  std::vector<double> after = ToDouble(trainer_.Parameters());
  if (after.size() != before.size()) {
    StopTraining(Status::Internal("trainer changed its parameter count"));
    RunIdleCallbacks();
    return;
  }
  // Shares that arrived while the step ran are kept: only the step's own
  // change is applied to the estimate.
  for (size_t i = 0; i < after.size(); ++i) after[i] -= before[i];
  policy_->ApplyLocalDelta(after);
  ++metrics_.steps;
  RunIdleCallbacks();
  if (phase_ == Phase::kTraining && !hold_steps_) ScheduleStep(options_.step_interval);
}

void Node::CheckSettled() {
  std::vector<double> x = policy_->Estimate();
  // Only a tick in which we mixed (accepted a share) says anything: a model
  // that does not move because nobody talks to us has not settled.
  const bool mixed = metrics_.shares_accepted > accepted_at_last_check_;
  accepted_at_last_check_ = metrics_.shares_accepted;
  if (!mixed) return;
  if (last_estimate_) {
    double diff = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      const double d = x[i] - (*last_estimate_)[i];
      diff += d * d;
    }
    const double norm = gossip::L2Norm(x);
    const double change = std::sqrt(diff) / std::max(norm, 1e-12);
    calm_ticks_ = change < options_.settle_tolerance ? calm_ticks_ + 1 : 0;
  }
  last_estimate_ = std::move(x);
  if (calm_ticks_ >= options_.settle_window) {
    phase_ = Phase::kDone;
    Log("model settled after " + std::to_string(policy_->round()) + " rounds, " +
        std::to_string(metrics_.steps) + " steps: done");
    if (on_done_) on_done_();
  }
}

// ---------------------------------------------------------------- timers

void Node::GossipTick() {
  std::vector<gossip::Outgoing> out;
  policy_->OnTick(env_.Now(), membership_.Partners(), env_.rng(), &out);
  SendShares(std::move(out));
  metrics_.rounds = policy_->round();
  if (phase_ == Phase::kMixing) CheckSettled();
  // Jitter in [0.75, 1.25) of the interval: sites started together must not
  // tick in lockstep (pairwise offers would keep crossing).
  const auto delay = std::chrono::duration_cast<Duration>(options_.gossip_interval *
                                                          (0.75 + 0.5 * env_.rng().Uniform()));
  gossip_timer_ = env_.RunAfter(delay, [this] { GossipTick(); });
}

void Node::MembershipTick() {
  const TimePoint now = env_.Now();
  for (const PeerId& dead : membership_.Tick(now, env_.rng())) {
    ++metrics_.peers_declared_dead;
    Log("peer " + Name(dead) + " declared dead after suspicion; retrying later");
    std::vector<Link*> to_close;
    for (auto& [ptr, st] : links_) {
      if (st.peer == dead) to_close.push_back(ptr);
    }
    for (Link* l : to_close) CloseLink(l, "peer declared dead");
  }
  if (std::optional<PeerId> target = membership_.NextProbeTarget()) {
    if (Link* l = ActiveLink(*target)) {
      protocol::Probe probe;
      probe.nonce = env_.rng().Next();
      probe.sequence = ++probe_sequence_;
      if (SendMessage(*l, probe)) membership_.OnProbeSent(*target, probe.nonce, now);
    }
  }
  for (const PeerId& peer : membership_.DueForDial(now)) {
    std::optional<NetAddress> addr = membership_.AddressOf(peer);
    if (!addr) continue;
    membership_.OnDialStarted(peer);
    std::weak_ptr<bool> alive = alive_;
    env_.network().Connect(peer, *addr, [this, alive, peer](const Status& why) {
      if (alive.expired()) return;
      Log("dialing " + Name(peer) + " failed: " + why.ToString());
      membership_.OnDialFailed(peer, env_.Now(), env_.rng());
    });
  }
  membership_timer_ =
      env_.RunAfter(options_.membership.probe_interval, [this] { MembershipTick(); });
}

// ---------------------------------------------------------------- links

bool Node::SendTo(Link& link, const SharedBytes& frame) {
  const size_t size = frame->size();
  Status s = link.Send(frame);
  if (!s.ok()) return false;
  metrics_.bytes_sent += size;
  ++metrics_.messages_sent;
  return true;
}

template <typename M>
bool Node::SendMessage(Link& link, const M& message) {
  Result<protocol::Bytes> frame = protocol::Encode(message, options_.limits);
  if (!frame.ok()) {
    Log("cannot encode: " + frame.status().ToString());
    return false;
  }
  return SendTo(link, std::make_shared<const std::vector<uint8_t>>(std::move(*frame)));
}

void Node::SendGoodbye(Link& link, protocol::GoodbyeReason reason, const std::string& text) {
  protocol::Goodbye bye;
  bye.reason = reason;
  bye.text = text.substr(0, protocol::kMaxGoodbyeTextBytes);
  if (SendMessage(link, bye)) ++metrics_.goodbyes_sent;
}

void Node::CloseLink(Link* link, const std::string& reason) {
  auto it = links_.find(link);
  if (it == links_.end()) return;
  std::shared_ptr<Link> keep = it->second.link;
  ForgetLink(link);
  keep->Close(reason);
}

void Node::ForgetLink(Link* link) {
  auto it = links_.find(link);
  if (it == links_.end()) return;
  const PeerId peer = it->second.peer;
  links_.erase(it);
  auto a = active_.find(peer);
  if (a != active_.end() && a->second == link) active_.erase(a);
  membership_.OnLinkDown(peer, env_.Now(), env_.rng());
}

Link* Node::ActiveLink(const PeerId& peer) const {
  auto it = active_.find(peer);
  return it == active_.end() ? nullptr : it->second;
}

void Node::OnLinkUp(const std::shared_ptr<Link>& link) {
  const PeerId& peer = link->peer();
  if (stopped_) {
    link->Close("site is shutting down");
    return;
  }
  if (peer == self_ || !membership_.IsPinned(peer)) {
    Log("refusing a link from unpinned key " + Name(peer));
    link->Close("not in our peers.txt");
    return;
  }
  if (membership_.IsBanned(peer, env_.Now())) {
    link->Close("banned for bad shares");
    return;
  }
  links_[link.get()] = LinkState{link, peer, false};
  membership_.OnLinkUp(peer);
  SendMessage(*link, hello_);
}

void Node::OnLinkDown(const std::shared_ptr<Link>& link, const Status& why) {
  auto it = links_.find(link.get());
  if (it == links_.end()) return;
  Log("link to " + Name(it->second.peer) + " down: " + why.ToString());
  ForgetLink(link.get());
}

void Node::Blame(LinkState& st, double penalty, const std::string& why) {
  const PeerId peer = st.peer;
  Log("from " + Name(peer) + ": " + why);
  if (membership_.Penalize(peer, penalty, env_.Now())) {
    Log("score of " + Name(peer) + " fell below the floor: disconnecting");
    Link* l = st.link.get();
    SendGoodbye(*l, protocol::GoodbyeReason::kProtocolViolation, "too many invalid messages");
    CloseLink(l, "score below floor");
    // Other links of the same peer go too.
    std::vector<Link*> rest;
    for (auto& [ptr, s] : links_) {
      if (s.peer == peer) rest.push_back(ptr);
    }
    for (Link* r : rest) CloseLink(r, "score below floor");
  }
}

void Node::OnMessage(const std::shared_ptr<Link>& link, const SharedBytes& message) {
  auto it = links_.find(link.get());
  if (it == links_.end() || !message) return;
  LinkState& st = it->second;
  metrics_.bytes_received += message->size();
  ++metrics_.messages_received;
  Result<protocol::Message> decoded =
      protocol::Decode(protocol::ByteView(*message), options_.limits);
  if (!decoded.ok()) {
    ++metrics_.undecodable_messages;
    // A frame that should have been a share is a refused share as far as
    // the model is concerned; we cannot tell, so count it as a bad message.
    Blame(st, options_.bad_message_penalty, "undecodable message: " + decoded.status().ToString());
    return;
  }
  const protocol::Message& m = *decoded;
  if (const auto* hello = std::get_if<protocol::Hello>(&m)) {
    HandleHello(st, *hello);
    return;
  }
  if (const auto* bye = std::get_if<protocol::Goodbye>(&m)) {
    ++metrics_.goodbyes_received;
    Log("goodbye from " + Name(st.peer) + " (" + protocol::GoodbyeReasonName(bye->reason) +
        "): " + bye->text);
    CloseLink(link.get(), "peer said goodbye");
    return;
  }
  if (!st.greeted) {
    Blame(st, options_.bad_message_penalty,
          std::string(protocol::MessageTypeName(protocol::TypeOf(m))) + " before hello");
    return;
  }
  membership_.OnHeardFrom(st.peer, env_.Now());
  if (const auto* record = std::get_if<protocol::PeerRecord>(&m)) {
    HandleRecord(st, *record);
  } else if (const auto* share = std::get_if<protocol::GossipShare>(&m)) {
    HandleShare(st, *share);
  } else if (const auto* probe = std::get_if<protocol::Probe>(&m)) {
    SendMessage(*st.link, protocol::ProbeAck{probe->nonce, probe->sequence});
  } else if (const auto* ack = std::get_if<protocol::ProbeAck>(&m)) {
    membership_.OnProbeAck(st.peer, ack->nonce, env_.Now());
  }
}

void Node::HandleHello(LinkState& st, const protocol::Hello& hello) {
  protocol::Goodbye bye;
  Status ok = protocol::CheckHello(hello_, hello, &bye);
  if (!ok.ok()) {
    ++metrics_.hello_mismatches;
    Log("closing session with " + Name(st.peer) + ": " + ok.message());
    Link* l = st.link.get();
    if (SendMessage(*l, bye)) ++metrics_.goodbyes_sent;
    CloseLink(l, ok.message());
    return;
  }
  if (st.greeted) return;  // a repeated Hello changes nothing
  st.greeted = true;
  const PeerId peer = st.peer;
  Link* l = st.link.get();
  // One active link per peer: a newer one (a redial that crossed an inbound
  // link) replaces the older.
  if (Link* old = ActiveLink(peer); old != nullptr && old != l) {
    CloseLink(old, "replaced by a newer link");
  }
  active_[peer] = l;
  membership_.OnSessionUp(peer, env_.Now());
  Log("session with " + Name(peer) + " (" + hello.site_name + ") up");
  for (const protocol::PeerRecord& r : membership_.Records()) {
    if (r.site_key != peer) SendMessage(*l, r);
  }
}

void Node::HandleRecord(LinkState& st, const protocol::PeerRecord& record) {
  Result<gossip::RecordOutcome> outcome = membership_.OfferRecord(record);
  if (!outcome.ok()) {
    ++metrics_.records_refused;
    // An unpinned key may only mean the sender's peers.txt is newer than
    // ours; a forged or malformed record is the sender's fault.
    const bool blame = outcome.status().code() != StatusCode::kFailedPrecondition;
    if (blame) {
      Blame(st, options_.bad_message_penalty, outcome.status().ToString());
    } else {
      Log("ignoring record from " + Name(st.peer) + ": " + outcome.status().message());
    }
    return;
  }
  if (*outcome != gossip::RecordOutcome::kNew) return;
  if (record.site_key != self_) ++metrics_.records_accepted;
  const PeerId from = st.peer;
  for (auto& [peer, l] : active_) {
    if (peer != from && peer != record.site_key) SendMessage(*l, record);
  }
}

void Node::HandleShare(LinkState& st, const protocol::GossipShare& wire) {
  std::vector<double> ours = policy_->Estimate();
  Result<gossip::Share> share = gossip::FromWire(layout_, wire, options_.share_checks, ours);
  if (!share.ok()) {
    ++metrics_.shares_rejected;
    Blame(st, options_.bad_share_penalty, "share refused: " + share.status().message());
    return;
  }
  std::vector<gossip::Outgoing> out;
  Status used = policy_->OnShare(env_.Now(), st.peer, *share, &out);
  if (used.code() == StatusCode::kOutOfRange) {
    ++metrics_.shares_stale;
  } else if (!used.ok()) {
    ++metrics_.shares_rejected;
    Blame(st, options_.bad_share_penalty, "share refused: " + used.message());
    return;
  } else {
    ++metrics_.shares_accepted;
    membership_.Reward(st.peer, options_.good_share_reward);
  }
  metrics_.rounds = policy_->round();
  SendShares(std::move(out));
}

void Node::SendShares(std::vector<gossip::Outgoing> out) {
  const uint64_t steps = static_cast<uint64_t>(metrics_.steps);
  SharedBytes last_frame;  // one buffer for every recipient of the same share
  const gossip::Share* last_share = nullptr;
  for (const gossip::Outgoing& o : out) {
    Link* l = ActiveLink(o.to);
    bool sent = false;
    if (l != nullptr) {
      // D-PSGD sends one value to every neighbour: encode it once.
      if (!last_share || last_share->round != o.share.round ||
          last_share->weight != o.share.weight || last_share->values != o.share.values) {
        Result<protocol::Bytes> frame = protocol::Encode(
            gossip::ToWire(layout_, o.share, options_.wire_dtype, steps, metrics_.epsilon_spent),
            options_.limits);
        if (frame.ok()) {
          last_frame = std::make_shared<const std::vector<uint8_t>>(std::move(*frame));
          last_share = &o.share;
        } else {
          Log("cannot encode our share: " + frame.status().ToString());
          last_frame.reset();
          last_share = nullptr;
        }
      }
      if (last_frame) sent = SendTo(*l, last_frame);
    }
    if (sent) {
      ++metrics_.shares_sent;
    } else {
      ++metrics_.shares_unsent;
      policy_->Undeliverable(o);
    }
  }
}

}  // namespace dpnode::node
