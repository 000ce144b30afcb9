// AsioNetwork and AsioLink: sockets, handshakes, frames and reconnects
// (asio_network.h).
#include "node/asio/asio_network.h"

#include <algorithm>
#include <utility>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "base/check.h"
#include "node/asio/asio_env.h"

namespace dpnode::asio {
namespace ba = boost::asio;
using ba::ip::tcp;
using boost::system::error_code;

namespace {

std::string Describe(const NetAddress& a) { return a.host + ":" + std::to_string(a.port); }

Status FromError(const std::string& what, const error_code& ec) {
  return Status::Unavailable(what + ": " + ec.message());
}

}  // namespace

// One TCP connection: handshake, then an established Link.
class AsioLink final : public Link, public std::enable_shared_from_this<AsioLink> {
 public:
  enum class State { kConnecting, kHandshaking, kUp, kClosing, kClosed };

  AsioLink(AsioNetwork& net, tcp::socket socket, bool inbound, std::string remote)
      : net_(net),
        env_(net.env_),
        socket_(std::move(socket)),
        deadline_timer_(env_.io()),
        flush_timer_(env_.io()),
        inbound_(inbound),
        remote_(std::move(remote)) {}

  // --- dpnode::Link ---
  const PeerId& peer() const override { return peer_; }
  Status Send(SharedBytes message) override;
  size_t queued_bytes() const override {
    return channel_ ? channel_->pending_send_bytes() : 0;
  }
  void Close(const std::string& reason) override;

  // Outbound: resolve and connect, then Begin().
  void StartOutbound(const NetAddress& address, PeerId expected,
                     std::function<void(const Status&)> failed, bool kept);
  // Creates the channel and starts reading, writing and the deadline.
  void Begin(crypto::ChannelRole role);
  // Drops the connection at once (shutdown, refused); no flush.
  void Abort(const Status& why);
  // Close; `report_now` delivers OnLinkDown before returning (Shutdown)
  // instead of from a posted handler.
  void CloseImpl(const std::string& reason, bool report_now);

  State state() const { return state_; }
  bool inbound() const { return inbound_; }
  bool kept() const { return kept_; }
  const PeerId& expected_peer() const { return expected_; }
  bool counts_as_unauthenticated = false;
  std::string remote_ip;

 private:
  void WaitReadable();
  void OnReadable();
  void Feed(size_t n);
  void ScheduleFlush();
  void Flush();
  void Fail(const Status& why);
  void Finish(const Status& why);
  void ReportDown(const Status& why, bool now);
  bool Open() const { return state_ == State::kHandshaking || state_ == State::kUp; }

  AsioNetwork& net_;
  AsioEnv& env_;
  tcp::socket socket_;
  std::unique_ptr<tcp::resolver> resolver_;
  ba::steady_timer deadline_timer_;
  ba::steady_timer flush_timer_;
  std::optional<crypto::SecureChannel> channel_;
  State state_ = State::kConnecting;
  bool inbound_;
  bool kept_ = false;
  std::string remote_;
  PeerId peer_{};
  PeerId expected_{};
  std::function<void(const Status&)> failed_;
  std::vector<uint8_t> read_buf_;
  bool read_waiting_ = false;
  bool write_waiting_ = false;
  bool flush_posted_ = false;
  bool ready_sent_ = false;
};

// ------------------------------------------------------------------ AsioLink

Status AsioLink::Send(SharedBytes message) {
  if (state_ != State::kUp) return Status::FailedPrecondition("link to " + remote_ + " is closed");
  if (!message) return Status::InvalidArgument("null message");
  // Shared, not copied: the channel encrypts it record by record as the
  // socket drains.
  const Status s = channel_->Send(message);
  if (!s.ok()) {
    if (channel_->HasFailed()) {
      auto self = shared_from_this();
      ba::post(env_.io(), [self, s] { self->Fail(s); });
    }
    return s;
  }
  ScheduleFlush();
  return Status::Ok();
}

void AsioLink::Close(const std::string& reason) { CloseImpl(reason, false); }

void AsioLink::CloseImpl(const std::string& reason, bool report_now) {
  if (!Open()) return;
  if (state_ == State::kHandshaking) {
    Finish(Status::Unavailable("closed during the handshake: " + reason));
    return;
  }
  env_.Log("closing link to " + remote_ + ": " + reason);
  state_ = State::kClosing;
  deadline_timer_.cancel();
  ReportDown(Status::Ok(), report_now);
  // Send what is queued, then close; give up after close_flush_timeout.
  auto self = shared_from_this();
  flush_timer_.expires_after(net_.options_.close_flush_timeout);
  flush_timer_.async_wait([self](const error_code& ec) {
    if (!ec && self->state_ == State::kClosing) self->Finish(Status::Ok());
  });
  ScheduleFlush();
}

void AsioLink::ReportDown(const Status& why, bool now) {
  auto self = shared_from_this();
  if (now) {
    net_.LinkDown(self, why);
  } else {
    // Not from inside the caller's own call (Close from OnMessage, say).
    ba::post(env_.io(), [self, why] {
      self->env_.RefreshNow();
      self->net_.LinkDown(self, why);
    });
  }
}

void AsioLink::StartOutbound(const NetAddress& address, PeerId expected,
                             std::function<void(const Status&)> failed, bool kept) {
  expected_ = expected;
  failed_ = std::move(failed);
  kept_ = kept;
  resolver_ = std::make_unique<tcp::resolver>(env_.io());
  auto self = shared_from_this();
  resolver_->async_resolve(
      address.host, std::to_string(address.port),
      [self, address](const error_code& ec, const tcp::resolver::results_type& results) {
        if (self->state_ != State::kConnecting) return;
        self->env_.RefreshNow();
        if (ec) {
          self->Fail(FromError("resolving " + Describe(address), ec));
          return;
        }
        ba::async_connect(self->socket_, results,
                          [self, address](const error_code& cec, const tcp::endpoint&) {
                            if (self->state_ != State::kConnecting) return;
                            self->env_.RefreshNow();
                            if (cec) {
                              self->Fail(FromError("connecting to " + Describe(address), cec));
                              return;
                            }
                            self->Begin(crypto::ChannelRole::kInitiator);
                          });
      });
}

void AsioLink::Begin(crypto::ChannelRole role) {
  crypto::PinnedKeyCheck check = net_.is_pinned_;
  if (!inbound_) {
    // An outbound link must reach exactly the site it was meant for.
    check = [pinned = net_.is_pinned_, expected = expected_](const crypto::Ed25519PublicKey& k) {
      return k == expected && pinned(k);
    };
  }
  Result<crypto::SecureChannel> ch =
      crypto::SecureChannel::Create(role, net_.identity_, std::move(check), net_.options_.channel,
                                    env_.Now().time_since_epoch());
  if (!ch.ok()) {
    state_ = State::kHandshaking;
    Fail(ch.status());
    return;
  }
  channel_.emplace(std::move(*ch));
  state_ = State::kHandshaking;
  error_code ec;
  socket_.non_blocking(true, ec);
  if (!ec) socket_.set_option(tcp::no_delay(true), ec);
  if (ec) {
    Fail(FromError("configuring socket", ec));
    return;
  }
  read_buf_.resize(net_.options_.read_buffer_bytes);
  auto self = shared_from_this();
  deadline_timer_.expires_at(env_.ToSteady(TimePoint(channel_->deadline())));
  deadline_timer_.async_wait([self](const error_code& tec) {
    if (tec || self->state_ != State::kHandshaking) return;
    self->env_.RefreshNow();
    const Status s = self->channel_->CheckDeadline(self->env_.Now().time_since_epoch());
    if (!s.ok()) {
      self->Fail(s);
    } else {
      // The Noise handshake finished but the peer's ready message did not come.
      self->Fail(Status::Unavailable("peer " + self->remote_ +
                                     " did not confirm the handshake in time"));
    }
  });
  WaitReadable();
  Flush();
}

void AsioLink::WaitReadable() {
  if (read_waiting_) return;
  read_waiting_ = true;
  auto self = shared_from_this();
  socket_.async_wait(tcp::socket::wait_read, [self](const error_code& ec) {
    self->read_waiting_ = false;
    if (self->state_ == State::kClosed) return;
    self->env_.RefreshNow();
    if (ec) {
      self->Fail(FromError("waiting for data from " + self->remote_, ec));
      return;
    }
    self->OnReadable();
  });
}

void AsioLink::OnReadable() {
  for (int i = 0; i < net_.options_.max_reads_per_turn; ++i) {
    if (state_ == State::kClosed) return;
    error_code ec;
    const size_t n = socket_.read_some(ba::buffer(read_buf_), ec);
    if (ec == ba::error::would_block || ec == ba::error::try_again) break;
    if (ec == ba::error::eof) {
      if (state_ == State::kClosing) {
        Finish(Status::Ok());
        return;
      }
      const Status s = channel_->EndOfStream();
      Fail(s.ok() ? Status::Unavailable("peer " + remote_ + " closed the connection") : s);
      return;
    }
    if (ec) {
      Fail(FromError("reading from " + remote_, ec));
      return;
    }
    // While closing, input is drained and discarded (a close with unread
    // input would reset the connection and could lose our final output).
    if (state_ == State::kClosing) continue;
    Feed(n);
  }
  if (state_ != State::kClosed) WaitReadable();
}

void AsioLink::Feed(size_t n) {
  const Status s = channel_->ReceivedBytes(crypto::ByteView(read_buf_.data(), n));
  if (!s.ok()) {
    Fail(s);
    return;
  }
  if (channel_->IsEstablished() && !ready_sent_) {
    // Our side accepted the peer: say so with the empty ready message.
    ready_sent_ = true;
    const Status r = channel_->Send(crypto::ByteView());
    if (!r.ok()) {
      Fail(r);
      return;
    }
  }
  ScheduleFlush();  // handshake replies, the ready message, or nothing
  auto self = shared_from_this();
  while (state_ == State::kHandshaking || state_ == State::kUp) {
    std::optional<crypto::Bytes> m = channel_->NextMessage();
    if (!m) break;
    if (state_ == State::kHandshaking) {
      // The peer's ready message: both sides have now accepted each other.
      if (!m->empty()) {
        Fail(Status::Corruption("peer " + remote_ +
                                " sent data before the empty ready message"));
        return;
      }
      deadline_timer_.cancel();
      peer_ = *channel_->peer_identity();
      state_ = State::kUp;
      net_.LinkEstablished(*this);
      continue;
    }
    if (env_.stopping() || net_.handler_ == nullptr) continue;
    SharedBytes message = std::make_shared<const std::vector<uint8_t>>(std::move(*m));
    net_.handler_->OnMessage(self, message);
  }
}

void AsioLink::ScheduleFlush() {
  if (flush_posted_ || write_waiting_ || !channel_) return;
  flush_posted_ = true;
  auto self = shared_from_this();
  ba::post(env_.io(), [self] {
    self->flush_posted_ = false;
    self->env_.RefreshNow();
    self->Flush();
  });
}

void AsioLink::Flush() {
  if (write_waiting_ || !channel_) return;
  if (state_ == State::kClosed || state_ == State::kConnecting) return;
  for (;;) {
    const crypto::ByteView out = channel_->GetBytesToSend();
    if (out.empty()) break;
    error_code ec;
    const size_t n = socket_.write_some(ba::buffer(out.data(), out.size()), ec);
    if (ec == ba::error::would_block || ec == ba::error::try_again) {
      write_waiting_ = true;
      auto self = shared_from_this();
      socket_.async_wait(tcp::socket::wait_write, [self](const error_code& wec) {
        self->write_waiting_ = false;
        if (self->state_ == State::kClosed) return;
        self->env_.RefreshNow();
        if (wec) {
          self->Fail(FromError("waiting to write to " + self->remote_, wec));
          return;
        }
        self->Flush();
      });
      return;
    }
    if (ec) {
      Fail(FromError("writing to " + remote_, ec));
      return;
    }
    channel_->MarkBytesSent(n);
  }
  if (state_ == State::kClosing) {
    // Everything queued is on the wire: half-close and wait for the peer's
    // EOF (OnReadable), or the flush timer.
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
  } else if (channel_->HasFailed()) {
    Fail(channel_->status());
  }
}

void AsioLink::Fail(const Status& why) {
  if (state_ == State::kClosed) return;
  // A link we were closing already reported OK; the rest is cleanup.
  Finish(state_ == State::kClosing ? Status::Ok() : why);
}

void AsioLink::Abort(const Status& why) {
  if (state_ == State::kUp) {
    CloseImpl(why.message(), true);
    Finish(Status::Ok());
    return;
  }
  Fail(why);
}

// Closes the socket and reports. `why` matters only for a link that was up
// (OnLinkDown) or an outbound connection that never got there (`failed_`).
// Always runs from one of our own handlers, never inside a caller's call.
void AsioLink::Finish(const Status& why) {
  const State before = state_;
  state_ = State::kClosed;
  error_code ignored;
  deadline_timer_.cancel();
  flush_timer_.cancel();
  if (resolver_) resolver_->cancel();
  socket_.close(ignored);
  auto self = shared_from_this();
  if (before == State::kUp) {
    env_.Log("link to " + remote_ + " down: " + why.ToString());
    ReportDown(why, true);
  } else if (before != State::kClosing) {
    env_.Log((inbound_ ? "inbound connection from " : "connection to ") + remote_ +
             " failed: " + why.ToString());
    if (failed_) {
      auto failed = std::move(failed_);
      failed_ = nullptr;
      ba::post(env_.io(), [self, failed, why] {
        if (self->env_.stopping()) return;
        self->env_.RefreshNow();
        failed(why);
      });
    }
    if (kept_) net_.KeptFailed(expected_);
  }
  net_.Release(self);
}

// --------------------------------------------------------------- AsioNetwork

struct AsioNetwork::Listener {
  explicit Listener(ba::io_context& io) : acceptor(io), retry(io) {}
  tcp::acceptor acceptor;
  ba::steady_timer retry;
};

struct AsioNetwork::Kept {
  Kept(NetAddress a, const BackoffOptions& o) : address(std::move(a)), backoff(o) {}
  NetAddress address;
  Backoff backoff;
  Timer retry;
};

AsioNetwork::AsioNetwork(AsioEnv& env, const crypto::SiteIdentity& identity,
                         crypto::PinnedKeyCheck is_pinned, NetworkOptions options)
    : env_(env), identity_(identity), is_pinned_(std::move(is_pinned)), options_(std::move(options)) {}

AsioNetwork::~AsioNetwork() {
  kept_.clear();
  connections_.clear();
}

void AsioNetwork::Log(const std::string& line) const { env_.Log(line); }

size_t AsioNetwork::links_up() const {
  size_t n = 0;
  for (const auto& c : connections_) n += c->state() == AsioLink::State::kUp ? 1 : 0;
  return n;
}

Status AsioNetwork::Listen(const NetAddress& address) {
  if (listener_) return Status::FailedPrecondition("already listening");
  auto listener = std::make_unique<Listener>(env_.io());
  error_code ec;
  tcp::resolver resolver(env_.io());
  const auto results = resolver.resolve(address.host, std::to_string(address.port),
                                        tcp::resolver::passive, ec);
  if (ec || results.empty()) return FromError("resolving listen address " + Describe(address), ec);
  const tcp::endpoint endpoint = results.begin()->endpoint();
  tcp::acceptor& a = listener->acceptor;
  a.open(endpoint.protocol(), ec);
  if (!ec) a.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) a.bind(endpoint, ec);
  if (!ec) a.listen(options_.listen_backlog, ec);
  if (ec) return FromError("listening on " + Describe(address), ec);
  listen_port_ = a.local_endpoint(ec).port();
  listener_ = std::move(listener);
  Log("listening on " + address.host + ":" + std::to_string(listen_port_));
  AcceptNext();
  return Status::Ok();
}

void AsioNetwork::AcceptNext() {
  if (!listener_ || shutting_down_) return;
  listener_->acceptor.async_accept([this](const error_code& ec, tcp::socket socket) {
    if (!listener_ || shutting_down_) return;
    env_.RefreshNow();
    if (ec) {
      if (ec == ba::error::operation_aborted) return;
      // Out of descriptors and the like: wait a little instead of spinning.
      Log("accept failed: " + ec.message());
      listener_->retry.expires_after(std::chrono::milliseconds(100));
      listener_->retry.async_wait([this](const error_code& tec) {
        if (!tec) AcceptNext();
      });
      return;
    }
    error_code rec;
    const tcp::endpoint remote = socket.remote_endpoint(rec);
    const std::string ip = rec ? std::string("?") : remote.address().to_string();
    const std::string who = rec ? ip : ip + ":" + std::to_string(remote.port());
    size_t& per_ip = unauth_per_ip_[ip];
    if (unauth_total_ >= options_.max_unauthenticated_total ||
        per_ip >= options_.max_unauthenticated_per_ip) {
      Log("refused connection from " + who + ": too many unauthenticated connections (" +
          std::to_string(per_ip) + " from this address, " + std::to_string(unauth_total_) +
          " in total)");
      if (per_ip == 0) unauth_per_ip_.erase(ip);
      error_code ignored;
      socket.close(ignored);
      AcceptNext();
      return;
    }
    ++per_ip;
    ++unauth_total_;
    auto link = std::make_shared<AsioLink>(*this, std::move(socket), true, who);
    link->counts_as_unauthenticated = true;
    link->remote_ip = ip;
    connections_.insert(link);
    link->Begin(crypto::ChannelRole::kResponder);
    AcceptNext();
  });
}

void AsioNetwork::ReleaseUnauthenticated(const std::string& ip) {
  DPNODE_CHECK(unauth_total_ > 0, "unauthenticated count underflow");
  --unauth_total_;
  auto it = unauth_per_ip_.find(ip);
  if (it != unauth_per_ip_.end() && --it->second == 0) unauth_per_ip_.erase(it);
}

void AsioNetwork::Connect(const PeerId& peer, const NetAddress& address,
                          std::function<void(const Status&)> failed) {
  StartOutbound(peer, address, std::move(failed), false);
}

void AsioNetwork::StartOutbound(const PeerId& peer, const NetAddress& address,
                                std::function<void(const Status&)> failed, bool kept) {
  if (shutting_down_) {
    ba::post(env_.io(), [this, failed] {
      if (env_.stopping() || !failed) return;
      failed(Status::FailedPrecondition("network is shutting down"));
    });
    return;
  }
  auto link = std::make_shared<AsioLink>(*this, tcp::socket(env_.io()), false, Describe(address));
  connections_.insert(link);
  link->StartOutbound(address, peer, std::move(failed), kept);
}

void AsioNetwork::LinkEstablished(AsioLink& link) {
  if (link.counts_as_unauthenticated) {
    link.counts_as_unauthenticated = false;
    ReleaseUnauthenticated(link.remote_ip);
  }
  Log("link up with " + crypto::Fingerprint(link.peer()) + " (" +
      (link.inbound() ? "inbound" : "outbound") + ")");
  if (link.kept()) {
    auto it = kept_.find(link.expected_peer());
    if (it != kept_.end()) it->second->backoff.Reset();
  }
  if (handler_ && !env_.stopping()) handler_->OnLinkUp(link.shared_from_this());
}

void AsioNetwork::LinkDown(const std::shared_ptr<AsioLink>& link, const Status& why) {
  if (handler_ && !env_.stopping()) handler_->OnLinkDown(link, why);
  if (link->kept()) KeptFailed(link->expected_peer());
}

void AsioNetwork::Release(const std::shared_ptr<AsioLink>& link) {
  if (link->counts_as_unauthenticated) {
    link->counts_as_unauthenticated = false;
    ReleaseUnauthenticated(link->remote_ip);
  }
  connections_.erase(link);
  if (shutting_down_ && connections_.empty() && on_all_closed_) {
    auto fn = std::move(on_all_closed_);
    on_all_closed_ = nullptr;
    fn();
  }
}

void AsioNetwork::KeepConnected(const PeerId& peer, const NetAddress& address) {
  auto& slot = kept_[peer];
  if (slot) {
    slot->address = address;
    return;
  }
  slot = std::make_unique<Kept>(address, options_.reconnect);
  KeptAttempt(peer);
}

void AsioNetwork::StopKeeping(const PeerId& peer) { kept_.erase(peer); }

uint64_t AsioNetwork::reconnect_attempts(const PeerId& peer) const {
  auto it = kept_.find(peer);
  return it == kept_.end() ? 0 : it->second->backoff.attempts();
}

void AsioNetwork::KeptAttempt(const PeerId& peer) {
  auto it = kept_.find(peer);
  if (it == kept_.end() || shutting_down_) return;
  StartOutbound(peer, it->second->address, nullptr, true);
}

void AsioNetwork::KeptFailed(const PeerId& peer) {
  auto it = kept_.find(peer);
  if (it == kept_.end() || shutting_down_) return;
  Kept& k = *it->second;
  const Duration delay = k.backoff.Next(env_.rng());
  Log("reconnecting to " + crypto::Fingerprint(peer) + " at " + Describe(k.address) + " in " +
      std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(delay).count()) +
      " ms (attempt " + std::to_string(k.backoff.attempts()) + ")");
  k.retry = env_.RunAfter(delay, [this, peer] { KeptAttempt(peer); });
}

size_t AsioNetwork::Shutdown(const std::string& reason) {
  if (shutting_down_) return connections_.size();
  shutting_down_ = true;
  kept_.clear();
  if (listener_) {
    error_code ignored;
    listener_->acceptor.close(ignored);
    listener_->retry.cancel();
  }
  // Copy: closing edits connections_.
  const std::vector<std::shared_ptr<AsioLink>> all(connections_.begin(), connections_.end());
  for (const auto& link : all) {
    if (link->state() == AsioLink::State::kUp) {
      link->CloseImpl(reason, true);
    } else {
      link->Abort(Status::Unavailable("network shutting down: " + reason));
    }
  }
  return connections_.size();
}

}  // namespace dpnode::asio
