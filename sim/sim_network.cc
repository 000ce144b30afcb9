// The simulated network: connections, the link model, partitions, crashes.
#include "sim/sim_network.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "base/check.h"

namespace dpnode::sim {
namespace {

uint64_t PairKey(NodeIndex a, NodeIndex b) { return (static_cast<uint64_t>(a) << 32) | b; }

// Non-negative seconds to nanoseconds, rounded to nearest.
Duration SecondsToDuration(double seconds) {
  return Duration(static_cast<int64_t>(seconds * 1e9 + 0.5));
}

}  // namespace

Duration LatencyModel::Sample(Xoshiro256& rng) const {
  switch (kind) {
    case Kind::kConstant:
      return a;
    case Kind::kUniform: {
      if (b <= a) return a;
      const auto span = static_cast<uint64_t>((b - a).count());
      return a + Duration(static_cast<int64_t>(rng.Below(span + 1)));
    }
    case Kind::kLogNormal: {
      const double z = rng.Normal();
      return Duration(static_cast<int64_t>(std::llround(static_cast<double>(a.count()) * std::exp(sigma * z))));
    }
  }
  return a;
}

// ---- SimLink: forwards to the World, which owns the model.

Status SimLink::Send(SharedBytes message) { return world_->Send(*this, std::move(message)); }

size_t SimLink::queued_bytes() const {
  const TimePoint now = world_->Now();
  while (wire_head_ < wire_.size() && wire_[wire_head_].first <= now) {
    queued_ -= wire_[wire_head_].second;
    ++wire_head_;
  }
  if (wire_head_ == wire_.size()) {
    wire_.clear();
    wire_head_ = 0;
  } else if (wire_head_ >= 64 && 2 * wire_head_ >= wire_.size()) {
    wire_.erase(wire_.begin(), wire_.begin() + static_cast<std::ptrdiff_t>(wire_head_));
    wire_head_ = 0;
  }
  return queued_;
}

void SimLink::Close(const std::string& reason) { world_->CloseFrom(*this, reason, true); }

void SimLink::PushInFlight(SharedBytes message, size_t bytes) {
  if (big_.empty() && inflight_count_ < 2) {
    small_[(inflight_head_ + inflight_count_) % 2] = InFlight{std::move(message), bytes};
  } else {
    if (big_.empty()) {  // spill, oldest first
      for (size_t k = 0; k < inflight_count_; ++k) big_.push_back(std::move(small_[(inflight_head_ + k) % 2]));
      inflight_head_ = 0;
    }
    big_.push_back(InFlight{std::move(message), bytes});
  }
  ++inflight_count_;
}

SimLink::InFlight SimLink::PopInFlight() {
  InFlight out;
  if (big_.empty()) {
    out = std::move(small_[inflight_head_]);
    inflight_head_ = (inflight_head_ + 1) % 2;
  } else {
    out = std::move(big_[inflight_head_++]);
  }
  if (--inflight_count_ == 0) ClearInFlight();
  return out;
}

void SimLink::ClearInFlight() {
  for (InFlight& f : small_) f = InFlight();
  big_.clear();
  inflight_count_ = 0;
  inflight_head_ = 0;
}

// ---- World: nodes.

World::World(uint64_t root_seed) : seeds_(root_seed) {}

World::~World() {
  // Nodes go first, while the links, envs and scheduler they point to live;
  // nothing they do on the way out may call back into them.
  for (NodeSlot& s : nodes_) {
    s.alive = false;
    s.handler = nullptr;
    if (s.env) s.env->Kill();
    for (auto& l : s.links) {
      l->open_ = false;
      l->down_reported_ = true;
      // Break the self-reference kept while messages are in flight.
      l->ClearInFlight();
      l->self_hold_.reset();
    }
  }
  for (NodeSlot& s : nodes_) {
    s.node.reset();
    s.env.reset();
  }
}

NodeIndex World::AddNode(const std::string& name, NodeFactory factory) {
  Xoshiro256 rng(seeds_.Named("peer-id", {nodes_.size()}));
  PeerId id;
  for (size_t w = 0; w < id.size(); w += 8) {
    const uint64_t x = rng.Next();
    for (size_t k = 0; k < 8; ++k) id[w + k] = static_cast<uint8_t>(x >> (8 * k));
  }
  return AddNode(name, id, std::move(factory));
}

NodeIndex World::AddNode(const std::string& name, const PeerId& id, NodeFactory factory) {
  DPNODE_CHECK(by_name_.count(name) == 0, "duplicate simulated node name %s", name.c_str());
  DPNODE_CHECK(nodes_.size() < kWorldNode, "too many nodes");
  const auto i = static_cast<NodeIndex>(nodes_.size());
  nodes_.emplace_back();
  nodes_.back().name = name;
  nodes_.back().id = id;
  nodes_.back().factory = std::move(factory);
  by_name_.emplace(name, i);
  if (started_) Build(i);
  return i;
}

void World::Start() {
  started_ = true;
  for (NodeIndex i = 0; i < nodes_.size(); ++i) {
    if (!nodes_[i].built) Build(i);
  }
}

void World::Build(NodeIndex i) {
  NodeSlot& s = nodes_[i];
  s.built = true;
  s.alive = true;
  s.listening = false;
  s.handler = nullptr;
  s.env = std::make_unique<SimEnv>(scheduler_, i, seeds_.Node(i, s.incarnation),
                                   std::make_unique<SimNetwork>(*this, i, s.incarnation), s.incarnation);
  if (s.compute_model) s.env->SetComputeModel(s.compute_model);
  s.env->SetSpeedFactor(s.speed_factor);
  // The factory may add nodes (growing nodes_), so do not hold `s` across it.
  std::shared_ptr<void> built = s.factory ? s.factory(*s.env) : nullptr;
  nodes_[i].node = std::move(built);
}

void World::SetComputeModel(NodeIndex i, SimEnv::ComputeModel model) {
  nodes_[i].compute_model = std::move(model);
  if (nodes_[i].env) nodes_[i].env->SetComputeModel(nodes_[i].compute_model);
}

void World::SetSpeedFactor(NodeIndex i, double factor) {
  DPNODE_CHECK(factor > 0 && std::isfinite(factor), "speed factor %g", factor);
  nodes_[i].speed_factor = factor;
  if (nodes_[i].env) nodes_[i].env->SetSpeedFactor(factor);
}

void World::Crash(NodeIndex i) {
  NodeSlot& s = nodes_[i];
  if (!s.alive) return;
  s.alive = false;
  s.listening = false;
  s.handler = nullptr;
  if (s.env) s.env->Kill();
  std::vector<std::shared_ptr<SimLink>> links = std::move(s.links);
  s.links.clear();
  for (auto& l : links) {
    if (l->open_) CloseFrom(*l, "crashed", true);
    // Their delivery events die with the node's events.
    l->ClearInFlight();
    l->self_hold_.reset();
  }
  scheduler_.DropNodeEvents(i);
  std::shared_ptr<void> node = std::move(s.node);
  node.reset();  // may run node code; everything it tries is now a no-op
  nodes_[i].env.reset();
  ++nodes_[i].incarnation;
}

void World::Restart(NodeIndex i) {
  if (nodes_[i].alive || !nodes_[i].built) return;
  Build(i);
}

void World::CrashAt(NodeIndex i, TimePoint at) {
  scheduler_.Schedule(at, kWorldNode, [this, i] { Crash(i); });
}

void World::RestartAt(NodeIndex i, TimePoint at) {
  scheduler_.Schedule(at, kWorldNode, [this, i] { Restart(i); });
}

size_t World::open_links(NodeIndex i) const {
  size_t n = 0;
  for (const auto& l : nodes_[i].links) n += l->open_ ? 1 : 0;
  return n;
}

// ---- Links and models.

void World::SetDefaultLink(const LinkModel& model) {
  default_link_ = model;
  for (auto& [key, state] : links_) {
    if (overrides_.count(key) == 0) state->model = model;
  }
}

void World::SetLink(NodeIndex from, NodeIndex to, const LinkModel& model) {
  const uint64_t key = PairKey(from, to);
  overrides_[key] = model;
  auto it = links_.find(key);
  if (it != links_.end()) it->second->model = model;
}

DirectedLinkState& World::GetLink(NodeIndex from, NodeIndex to) {
  const uint64_t key = PairKey(from, to);
  auto it = links_.find(key);
  if (it != links_.end()) return *it->second;
  auto o = overrides_.find(key);
  auto state = std::unique_ptr<DirectedLinkState>(new DirectedLinkState{
      o != overrides_.end() ? o->second : default_link_, Xoshiro256(seeds_.Link(from, to)), TimePoint{}});
  DirectedLinkState& ref = *state;
  links_.emplace(key, std::move(state));
  return ref;
}

Duration World::SealCost(size_t bytes) const {
  Duration d = crypto_.aead_per_message;
  if (crypto_.aead_bytes_per_second > 0) {
    d += SecondsToDuration(static_cast<double>(bytes) / crypto_.aead_bytes_per_second);
  }
  return d;
}

// ---- Partitions.

void World::AddPartition(const std::vector<NodeIndex>& side, TimePoint start, TimePoint heal) {
  Partition p;
  p.side.assign(nodes_.size(), false);
  for (NodeIndex i : side) {
    DPNODE_CHECK(i < nodes_.size(), "partition names node %u of %zu", i, nodes_.size());
    p.side[i] = true;
  }
  const size_t idx = partitions_.size();
  partitions_.push_back(std::move(p));
  scheduler_.Schedule(start, kWorldNode, [this, idx] {
    if (partitions_[idx].active) return;
    partitions_[idx].active = true;
    ++active_partitions_;
    ApplyPartition(idx);
  });
  scheduler_.Schedule(heal, kWorldNode, [this, idx] {
    if (!partitions_[idx].active) return;
    partitions_[idx].active = false;
    --active_partitions_;
  });
}

bool World::Partitioned(NodeIndex a, NodeIndex b) const {
  if (active_partitions_ == 0) return false;
  for (const Partition& p : partitions_) {
    if (!p.active) continue;
    const bool sa = a < p.side.size() && p.side[a];
    const bool sb = b < p.side.size() && p.side[b];
    if (sa != sb) return true;
  }
  return false;
}

void World::ApplyPartition(size_t p) {
  const Partition& part = partitions_[p];
  for (NodeIndex i = 0; i < nodes_.size(); ++i) {
    const bool si = i < part.side.size() && part.side[i];
    for (auto& l : nodes_[i].links) {
      if (!l->open_) continue;
      const bool sp = l->peer_ < part.side.size() && part.side[l->peer_];
      if (si == sp) continue;
      l->open_ = false;
      Status why = Status::Unavailable("partitioned from " + nodes_[l->peer_].name);
      scheduler_.Schedule(Now(), i, [this, l, why = std::move(why)] { ReportDown(l, why); });
    }
  }
}

// ---- Connections.

void World::SetHandler(NodeIndex i, uint32_t incarnation, LinkHandler* handler) {
  if (Current(i, incarnation)) nodes_[i].handler = handler;
}

Status World::Listen(NodeIndex i, uint32_t incarnation, const NetAddress& address) {
  (void)address;  // a simulated node is reachable under its name only
  if (!Current(i, incarnation)) return Status::FailedPrecondition("node is not running");
  nodes_[i].listening = true;
  return Status::Ok();
}

void World::Connect(NodeIndex i, uint32_t incarnation, const PeerId& peer, const NetAddress& address,
                    std::function<void(const Status&)> failed) {
  if (!Current(i, incarnation)) return;
  auto fail_at = [this, i, &failed](TimePoint at, Status why) {
    ++nodes_[i].counters.connects_failed;
    scheduler_.Schedule(at, i, [failed = std::move(failed), why = std::move(why)] {
      if (failed) failed(why);
    });
  };
  auto it = by_name_.find(address.host);
  if (it == by_name_.end()) {
    fail_at(Now(), Status::NotFound("no simulated node named '" + address.host + "'"));
    return;
  }
  const NodeIndex b = it->second;
  if (b == i) {
    fail_at(Now(), Status::InvalidArgument("connecting to self"));
    return;
  }
  DirectedLinkState& ab = GetLink(i, b);
  DirectedLinkState& ba = GetLink(b, i);
  const Duration l1 = ab.model.latency.Sample(ab.rng);
  const Duration l2 = ba.model.latency.Sample(ba.rng);
  const Duration l3 = ab.model.latency.Sample(ab.rng);
  const TimePoint now = Now();
  if (Partitioned(i, b)) {
    fail_at(now + connect_timeout_, Status::Unavailable("connect to " + address.host + " timed out"));
    return;
  }
  // The first handshake message reaches b after l1: b's state then decides.
  scheduler_.Schedule(now + l1, i, [this, i, b, peer, l2, l3, failed = std::move(failed)]() mutable {
    const TimePoint t = Now();
    auto fail = [&](TimePoint at, Status why) {
      ++nodes_[i].counters.connects_failed;
      scheduler_.Schedule(at, i, [failed = std::move(failed), why = std::move(why)] {
        if (failed) failed(why);
      });
    };
    if (Partitioned(i, b)) {
      fail(t + connect_timeout_, Status::Unavailable("connect to " + nodes_[b].name + " timed out"));
    } else if (!nodes_[b].alive || !nodes_[b].listening) {
      fail(t + l2, Status::Unavailable("connection to " + nodes_[b].name + " refused"));
    } else if (peer != nodes_[b].id) {
      fail(t + crypto_.handshake + l2,
           Status::Corruption("handshake with " + nodes_[b].name + ": peer key does not match the pinned key"));
    } else {
      const TimePoint initiator_up = t + crypto_.handshake + l2 + crypto_.handshake;
      const TimePoint responder_up = initiator_up + l3;
      scheduler_.Schedule(initiator_up, i, [this, i, b, peer, responder_up, failed = std::move(failed)]() mutable {
        CompleteHandshake(i, b, peer, responder_up, std::move(failed));
      });
    }
  });
}

void World::CompleteHandshake(NodeIndex a, NodeIndex b, const PeerId& peer, TimePoint responder_up,
                              std::function<void(const Status&)> failed) {
  if (!nodes_[b].alive || !nodes_[b].listening || Partitioned(a, b) || peer != nodes_[b].id) {
    ++nodes_[a].counters.connects_failed;
    if (failed) failed(Status::Unavailable("connection to " + nodes_[b].name + " lost during the handshake"));
    return;
  }
  // make_shared: the control block shares the object's cache lines.
  auto la = std::make_shared<SimLink>(SimLink::Key(), this, a, b, nodes_[b].id);
  auto lb = std::make_shared<SimLink>(SimLink::Key(), this, b, a, nodes_[a].id);
  la->other_ = lb;
  lb->other_ = la;
  la->out_ = &GetLink(a, b);
  lb->out_ = &GetLink(b, a);
  la->not_before_ = Now();
  lb->not_before_ = responder_up;
  for (NodeIndex n : {a, b}) {
    auto& v = nodes_[n].links;
    v.erase(std::remove_if(v.begin(), v.end(), [](const std::shared_ptr<SimLink>& l) { return !l->open_ && l->inflight_count_ == 0; }),
            v.end());
  }
  nodes_[a].links.push_back(la);
  nodes_[b].links.push_back(lb);
  scheduler_.Schedule(responder_up, b, [this, lb] {
    if (!lb->open_) return;
    lb->up_reported_ = true;
    ++nodes_[lb->self_].counters.links_up;
    if (LinkHandler* h = nodes_[lb->self_].handler) h->OnLinkUp(lb);
  });
  la->up_reported_ = true;
  ++nodes_[a].counters.links_up;
  if (LinkHandler* h = nodes_[a].handler) h->OnLinkUp(la);
}

Status World::Send(SimLink& link, SharedBytes message) {
  if (!link.open_) return Status::FailedPrecondition("link to " + nodes_[link.peer_].name + " is closed");
  if (!message) return Status::InvalidArgument("null message");
  DirectedLinkState& d = *link.out_;
  const size_t bytes = message->size() + d.model.overhead_bytes;
  if (link.queued_ > 0 && link.queued_bytes() > 0 && link.queued_ + bytes > d.model.max_queued_bytes) {
    return Status::Unavailable("send queue to " + nodes_[link.peer_].name + " is full");
  }
  NodeCounters& c = nodes_[link.self_].counters;
  c.bytes_sent += bytes;
  ++c.messages_sent;

  const TimePoint now = Now();
  const Duration crypto = SealCost(bytes);
  const TimePoint start = std::max(now + crypto, d.busy_until);
  const Duration serialization = d.model.bandwidth_bytes_per_second > 0
      ? SecondsToDuration(static_cast<double>(bytes) / d.model.bandwidth_bytes_per_second)
      : Duration::zero();
  const TimePoint finish = start + serialization;
  d.busy_until = finish;
  if (finish > now) {
    link.wire_.emplace_back(finish, bytes);
    link.queued_ += bytes;
  }
  TimePoint arrive = finish + d.model.latency.Sample(d.rng) + crypto;
  if (d.model.loss > 0) {
    if (d.model.loss_mode == LossMode::kDrop) {
      if (d.rng.Uniform() < d.model.loss) {
        ++c.messages_lost;
        return Status::Ok();
      }
    } else {
      while (d.rng.Uniform() < d.model.loss) arrive += d.model.retransmit_timeout;
    }
  }
  std::shared_ptr<SimLink> other = link.other_.lock();
  if (!other) {
    ++c.messages_discarded;
    return Status::Ok();
  }
  const TimePoint at = std::max(arrive, other->not_before_);
  other->not_before_ = at;
  other->PushInFlight(std::move(message), bytes);
  SimLink* raw = other.get();
  if (!other->self_hold_) other->self_hold_ = std::move(other);
  scheduler_.Schedule(at, raw->self_, [this, raw] { DeliverNext(raw); });
  return Status::Ok();
}

void World::DeliverNext(SimLink* to) {
  std::shared_ptr<SimLink> keep = to->self_hold_;
  SimLink::InFlight front = to->PopInFlight();
  SharedBytes message = std::move(front.message);
  const size_t bytes = front.bytes;
  if (to->inflight_count_ == 0) to->self_hold_.reset();
  if (!to->open_) {
    ++nodes_[to->peer_].counters.messages_discarded;
    return;
  }
  NodeSlot& slot = nodes_[to->self_];
  slot.counters.bytes_received += bytes;
  ++slot.counters.messages_received;
  if (LinkHandler* h = slot.handler) {
    const std::shared_ptr<Link> as_link = std::move(keep);
    h->OnMessage(as_link, message);
  }
}

void World::CloseFrom(SimLink& link, const std::string& reason, bool notify_after_latency) {
  if (!link.open_) return;
  link.open_ = false;
  link.down_reported_ = true;
  std::shared_ptr<SimLink> other = link.other_.lock();
  if (!other || !other->open_) return;
  TimePoint at = Now();
  if (notify_after_latency) at += link.out_->model.latency.Sample(link.out_->rng);
  at = std::max(at, other->not_before_);
  other->not_before_ = at;
  Status why = Status::Unavailable(nodes_[link.self_].name + " closed the link: " + reason);
  const NodeIndex to = other->self_;
  scheduler_.Schedule(at, to, [this, other = std::move(other), why = std::move(why)] { ReportDown(other, why); });
}

void World::ReportDown(const std::shared_ptr<SimLink>& link, const Status& why) {
  link->open_ = false;
  if (link->down_reported_) return;
  link->down_reported_ = true;
  if (!link->up_reported_) return;
  if (LinkHandler* h = nodes_[link->self_].handler) h->OnLinkDown(link, why);
}

}  // namespace dpnode::sim
