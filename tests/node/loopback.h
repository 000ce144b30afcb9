// A deterministic in-process world for Node tests: one virtual clock, many
// sites, in-memory links. Independent of sim/ on purpose (it is the node's own
// test bench); the same scenarios can later run on SimEnv and AsioEnv.
//
// Events run in (virtual time, insertion sequence) order, each tagged with
// its site. A site that is down keeps its events (they run when it comes
// back, like a paused process) and the network drops everything sent to or
// from it and refuses dials to it. Links deliver after `latency`; a
// GossipShare may be dropped with probability `share_loss` (the only loss
// modelled: sessions and probes stay reliable, as on a TCP link that does
// not break), and Send may refuse a share with probability `share_refusal`
// (backpressure). Own-side Close() gives no OnLinkDown; the far side gets one.
#ifndef DPNODE_TESTS_NODE_LOOPBACK_H_
#define DPNODE_TESTS_NODE_LOOPBACK_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <vector>

#include "base/check.h"
#include "node/env.h"
#include "protocol/codec.h"

namespace dpnode::testing {

using namespace std::chrono_literals;

// splitmix64: small, fast, and the same on every platform.
class SplitMixRng : public Rng {
 public:
  explicit SplitMixRng(uint64_t seed) : s_(seed) {}
  uint64_t Next() override {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

 private:
  uint64_t s_;
};

class World;

class FakeLink : public Link, public std::enable_shared_from_this<FakeLink> {
 public:
  FakeLink(World* world, int site, int remote, PeerId peer)
      : world_(world), site_(site), remote_(remote), peer_(peer) {}
  const PeerId& peer() const override { return peer_; }
  Status Send(SharedBytes message) override;
  size_t queued_bytes() const override { return 0; }
  void Close(const std::string& reason) override;

  World* world_;
  int site_;    // the site holding this end
  int remote_;  // the site at the other end
  PeerId peer_;
  std::weak_ptr<FakeLink> other_;
  bool closed_ = false;
};

class FakeNetwork : public Network {
 public:
  FakeNetwork(World* world, int site) : world_(world), site_(site) {}
  void SetHandler(LinkHandler* handler) override { handler_ = handler; }
  Status Listen(const NetAddress& address) override;
  void Connect(const PeerId& peer, const NetAddress& address,
               std::function<void(const Status&)> failed) override;
  LinkHandler* handler_ = nullptr;

 private:
  World* world_;
  int site_;
};

class FakeEnv : public Env {
 public:
  FakeEnv(World* world, int site, uint64_t seed)
      : world_(world), site_(site), network_(world, site), rng_(seed) {}
  TimePoint Now() const override;
  Timer RunAfter(Duration delay, std::function<void()> fn) override;
  void Post(std::function<void()> fn) override;
  Network& network() override { return network_; }
  Rng& rng() override { return rng_; }
  void RunCompute(std::function<Status()> work,
                  std::function<void(const Status&)> done) override;

  Duration compute_time = 10ms;  // virtual time one RunCompute takes

 private:
  World* world_;
  int site_;
  FakeNetwork network_;
  SplitMixRng rng_;
};

class World {
 public:
  explicit World(uint64_t seed) : seed_(seed), loss_rng_(seed ^ 0x5eedULL) {}

  // Adds a site with its own Env; `id` is the key its links present.
  int AddSite(const PeerId& id) {
    const int site = static_cast<int>(sites_.size());
    auto s = std::make_unique<Site>();
    s->id = id;
    s->env = std::make_unique<FakeEnv>(this, site, seed_ * 1000003ULL + site);
    sites_.push_back(std::move(s));
    return site;
  }
  FakeEnv& env(int site) { return *sites_[site]->env; }
  LinkHandler* handler(int site) { return sites_[site]->handler(); }

  TimePoint now() const { return now_; }

  // Wires a link between two sites directly (no addresses, no dialing).
  void Connect(int a, int b) { MakeLinkPair(a, b, latency); }

  // Runs events until `done()` holds (checked after each event), the queue
  // is empty, or virtual time passes `limit` from now. True if done() held.
  bool RunUntil(const std::function<bool()>& done, Duration limit) {
    const TimePoint end = now_ + limit;
    while (!done()) {
      if (!RunOne(end)) return done();
    }
    return true;
  }
  void RunFor(Duration d) {
    const TimePoint end = now_ + d;
    while (RunOne(end)) {
    }
    now_ = end;
  }

  // Down: the site's events wait, its traffic is dropped, dials to it fail.
  void SetDown(int site, bool down) {
    Site& s = *sites_[site];
    s.down = down;
    if (!down) {
      for (auto& [cancelled, fn] : s.held) {
        queue_.push(Event{now_, seq_++, site, cancelled, fn});
      }
      s.held.clear();
    }
  }
  bool down(int site) const { return sites_[site]->down; }

  // Each share in flight, decoded, for conservation checks.
  std::vector<protocol::GossipShare> SharesInFlight() const {
    std::vector<protocol::GossipShare> out;
    for (const auto& [id, bytes] : in_flight_) {
      Result<protocol::Message> m = protocol::Decode(protocol::ByteView(*bytes));
      if (m.ok() && std::holds_alternative<protocol::GossipShare>(*m)) {
        out.push_back(std::get<protocol::GossipShare>(*m));
      }
    }
    return out;
  }

  // The open link end held by `site` towards `remote`, if any.
  std::shared_ptr<FakeLink> LinkBetween(int site, int remote) const {
    for (const auto& w : links_) {
      auto l = w.lock();
      if (l && !l->closed_ && l->site_ == site && l->remote_ == remote) return l;
    }
    return nullptr;
  }

  Duration latency = 5ms;
  double share_loss = 0;
  uint64_t shares_dropped = 0;
  // Probability that Link::Send refuses a GossipShare with kUnavailable
  // (backpressure: a full send queue), so the sender keeps it.
  double share_refusal = 0;
  uint64_t shares_refused = 0;

  bool RefuseSend(const std::vector<uint8_t>& message) {
    if (share_refusal <= 0 || !IsShare(message) || loss_rng_.Uniform() >= share_refusal) {
      return false;
    }
    ++shares_refused;
    return true;
  }

  // --- used by the fakes ---------------------------------------------------
  std::shared_ptr<bool> Schedule(int site, TimePoint at, std::function<void()> fn) {
    auto cancelled = std::make_shared<bool>(false);
    queue_.push(Event{at, seq_++, site, cancelled, std::make_shared<std::function<void()>>(std::move(fn))});
    return cancelled;
  }

  void Deliver(const std::shared_ptr<FakeLink>& from, SharedBytes message) {
    auto to = from->other_.lock();
    if (!to || down(from->site_) || down(from->remote_)) return;
    if (share_loss > 0 && IsShare(*message) && loss_rng_.Uniform() < share_loss) {
      ++shares_dropped;
      return;
    }
    const uint64_t id = next_flight_++;
    in_flight_[id] = message;
    std::weak_ptr<FakeLink> weak = to;
    Schedule(to->site_, now_ + latency, [this, weak, message, id] {
      in_flight_.erase(id);
      auto l = weak.lock();
      if (!l || l->closed_) return;
      if (LinkHandler* h = handler(l->site_)) h->OnMessage(l, message);
    });
  }

  void CloseFrom(FakeLink* end, const std::string& reason) {
    end->closed_ = true;
    auto other = end->other_.lock();
    if (!other) return;
    std::weak_ptr<FakeLink> weak = other;
    Schedule(other->site_, now_ + latency, [this, weak, reason] {
      auto l = weak.lock();
      if (!l || l->closed_) return;
      l->closed_ = true;
      if (LinkHandler* h = handler(l->site_)) h->OnLinkDown(l, Status::Unavailable(reason));
    });
  }

  void RegisterAddress(const NetAddress& a, int site) { addresses_[Key(a)] = site; }

  void Dial(int from, const PeerId& peer, const NetAddress& a,
            std::function<void(const Status&)> failed) {
    Schedule(from, now_ + latency, [this, from, peer, a, failed] {
      auto it = addresses_.find(Key(a));
      if (it == addresses_.end() || down(it->second) || down(from) ||
          sites_[it->second]->id != peer) {
        failed(Status::Unavailable("no answer at " + a.host));
        return;
      }
      MakeLinkPair(from, it->second, Duration::zero());
    });
  }

 private:
  struct Event {
    TimePoint at;
    uint64_t seq;
    int site;
    std::shared_ptr<bool> cancelled;
    std::shared_ptr<std::function<void()>> fn;
    bool operator>(const Event& o) const { return at != o.at ? at > o.at : seq > o.seq; }
  };
  struct Site {
    PeerId id{};
    std::unique_ptr<FakeEnv> env;
    bool down = false;
    // Events that came due while down: (cancelled flag, callback).
    std::vector<std::pair<std::shared_ptr<bool>, std::shared_ptr<std::function<void()>>>> held;
    LinkHandler* handler();
  };
  static std::string Key(const NetAddress& a) { return a.host + ":" + std::to_string(a.port); }
  static bool IsShare(const std::vector<uint8_t>& bytes) {
    Result<protocol::Message> m = protocol::Decode(protocol::ByteView(bytes));
    return m.ok() && std::holds_alternative<protocol::GossipShare>(*m);
  }

  void MakeLinkPair(int a, int b, Duration delay) {
    auto la = std::make_shared<FakeLink>(this, a, b, sites_[b]->id);
    auto lb = std::make_shared<FakeLink>(this, b, a, sites_[a]->id);
    la->other_ = lb;
    lb->other_ = la;
    links_.push_back(la);
    links_.push_back(lb);
    for (auto& l : {la, lb}) {
      Schedule(l->site_, now_ + delay, [this, l] {
        if (l->closed_) return;
        if (LinkHandler* h = handler(l->site_)) h->OnLinkUp(l);
      });
    }
  }

  bool RunOne(TimePoint end) {
    while (!queue_.empty()) {
      Event e = queue_.top();
      if (e.at > end) return false;
      queue_.pop();
      if (*e.cancelled) continue;
      now_ = std::max(now_, e.at);
      Site& s = *sites_[e.site];
      if (s.down) {
        s.held.emplace_back(e.cancelled, e.fn);
        continue;
      }
      (*e.fn)();
      return true;
    }
    return false;
  }

  uint64_t seed_;
  SplitMixRng loss_rng_;
  TimePoint now_{};
  uint64_t seq_ = 0;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> queue_;
  std::vector<std::unique_ptr<Site>> sites_;
  std::vector<std::weak_ptr<FakeLink>> links_;
  std::map<std::string, int> addresses_;
  std::map<uint64_t, SharedBytes> in_flight_;
  uint64_t next_flight_ = 0;
};

inline LinkHandler* World::Site::handler() {
  return static_cast<FakeNetwork&>(env->network()).handler_;
}

inline Status FakeLink::Send(SharedBytes message) {
  if (closed_) return Status::FailedPrecondition("link closed");
  if (world_->RefuseSend(*message)) return Status::Unavailable("send queue full");
  world_->Deliver(shared_from_this(), std::move(message));
  return Status::Ok();
}

inline void FakeLink::Close(const std::string& reason) {
  if (closed_) return;
  world_->CloseFrom(this, reason);
}

inline Status FakeNetwork::Listen(const NetAddress& address) {
  world_->RegisterAddress(address, site_);
  return Status::Ok();
}

inline void FakeNetwork::Connect(const PeerId& peer, const NetAddress& address,
                                 std::function<void(const Status&)> failed) {
  world_->Dial(site_, peer, address, std::move(failed));
}

inline TimePoint FakeEnv::Now() const { return world_->now(); }

inline Timer FakeEnv::RunAfter(Duration delay, std::function<void()> fn) {
  auto cancelled = world_->Schedule(site_, world_->now() + delay, std::move(fn));
  return Timer([cancelled] { *cancelled = true; });
}

inline void FakeEnv::Post(std::function<void()> fn) {
  world_->Schedule(site_, world_->now(), std::move(fn));
}

inline void FakeEnv::RunCompute(std::function<Status()> work,
                                std::function<void(const Status&)> done) {
  Status s = work();
  world_->Schedule(site_, world_->now() + compute_time,
                   [done = std::move(done), s] { done(s); });
}

}  // namespace dpnode::testing

#endif  // DPNODE_TESTS_NODE_LOOPBACK_H_
