// AsioNetwork: the real dpnode::Network. TCP listener and connector; every
// connection runs a crypto::SecureChannel (Noise XX with pinned Ed25519 site
// identities, see crypto/secure_channel.h) and becomes a Link once the
// handshake has proved the peer's key.
//
// Owned by an AsioEnv and driven by its event loop: every method here, and
// every Link method, must be called on that loop (or before AsioEnv::Start).
// Callbacks to the LinkHandler run on the loop, with Env::Now() refreshed.
//
// Guarantees:
//   - Each OnLinkUp is followed by exactly one OnLinkDown for that link, after
//     which no call mentions it. OnLinkDown's status is OK when this node
//     closed the link (Link::Close or AsioEnv::Stop), kUnavailable when the
//     peer closed it cleanly or the socket failed, and the channel's own
//     error (kCorruption, ...) when the peer broke the protocol.
//   - A connection that fails before its handshake completes never reaches the
//     handler: outbound, the Connect callback gets the reason (refused, not
//     pinned, wrong peer key, wrong consortium, handshake timeout); inbound,
//     it is logged and dropped.
//   - Memory per connection is bounded: a read buffer (read_buffer_bytes), the
//     channel's input (one frame plus one message of at most
//     channel.max_message_bytes), and its output (channel.max_send_buffer_bytes:
//     Link::Send returns kUnavailable beyond that -- backpressure).
//   - Inbound connections still handshaking are limited per source IP and in
//     total; beyond that a new connection is closed at once, before any
//     cryptography runs. A handshake not complete within
//     channel.handshake_timeout is dropped.
//   - Link::Close(reason) logs the reason, stops delivering messages, sends
//     what is already queued (a goodbye the node sent just before, say) for up
//     to close_flush_timeout, then closes the TCP stream.
//
// Ready messages: when a side's SecureChannel is established (it has checked
// the peer's identity proof and pin) it sends one empty message. A side
// reports OnLinkUp only on receiving the peer's empty message, so both sites
// have accepted each other before either node hears of the link. (In Noise XX
// the initiator completes first, before the responder has checked the
// initiator's key; without this, a refused initiator would see its link come
// up and drop.) A first message that is not empty is a protocol violation.
// The handshake deadline covers the ready message too.
//
// Socket I/O is readiness-based (async_wait, then non-blocking read_some /
// write_some straight from and into the channel's buffers) so no buffer is
// held by the kernel across a callback that could reallocate it.
#ifndef DPNODE_NODE_ASIO_ASIO_NETWORK_H_
#define DPNODE_NODE_ASIO_ASIO_NETWORK_H_

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "base/status.h"
#include "crypto/identity.h"
#include "crypto/secure_channel.h"
#include "node/asio/backoff.h"
#include "node/env.h"

namespace dpnode::asio {

class AsioEnv;
class AsioLink;

struct NetworkOptions {
  // Consortium id, protocol version, message and send-buffer caps, rekey
  // budgets and the handshake timeout, for every connection.
  crypto::SecureChannelOptions channel;
  // Inbound connections still in their handshake.
  size_t max_unauthenticated_total = 64;
  size_t max_unauthenticated_per_ip = 8;
  // Bytes read from a socket per read_some call, bytes.
  size_t read_buffer_bytes = size_t{256} << 10;
  // read_some calls per readiness event before yielding to other work.
  int max_reads_per_turn = 16;
  // How long Link::Close keeps sending queued output before closing.
  Duration close_flush_timeout = std::chrono::seconds(2);
  // Reconnect delays for KeepConnected.
  BackoffOptions reconnect;
  int listen_backlog = 64;
};

class AsioNetwork final : public Network {
 public:
  // `env` owns this network and outlives it. `identity` is copied.
  AsioNetwork(AsioEnv& env, const crypto::SiteIdentity& identity,
              crypto::PinnedKeyCheck is_pinned, NetworkOptions options);
  ~AsioNetwork() override;
  AsioNetwork(const AsioNetwork&) = delete;
  AsioNetwork& operator=(const AsioNetwork&) = delete;

  // --- dpnode::Network ---
  void SetHandler(LinkHandler* handler) override { handler_ = handler; }
  // Binds and listens (host may be a name or an address; port 0 picks a free
  // port, see listen_port()). kUnavailable when the OS refuses.
  Status Listen(const NetAddress& address) override;
  // The handshake additionally requires the peer to prove exactly `peer`.
  void Connect(const PeerId& peer, const NetAddress& address,
               std::function<void(const Status&)> failed) override;

  // --- beyond the seam ---
  // Keeps a link to `peer` up: connects now, and after every failed attempt
  // or lost link reconnects after Backoff::Next (reset on success). Failures
  // are logged, not reported. Replaces an earlier address for the same peer.
  void KeepConnected(const PeerId& peer, const NetAddress& address);
  // Stops reconnecting to `peer` (a link already up stays up).
  void StopKeeping(const PeerId& peer);
  // Attempts scheduled or made for `peer` since its last successful link.
  uint64_t reconnect_attempts(const PeerId& peer) const;

  // The bound port after Listen (0 before).
  uint16_t listen_port() const { return listen_port_; }
  // Inbound connections currently in their handshake.
  size_t unauthenticated_connections() const { return unauth_total_; }
  // Links up (handshake complete, not yet down).
  size_t links_up() const;
  const NetworkOptions& options() const { return options_; }

  // AsioEnv::Stop: stop accepting and reconnecting; Close(reason) every link
  // and drop every connection still handshaking. Returns the number of
  // connections still flushing (OnAllClosed fires when it reaches zero).
  size_t Shutdown(const std::string& reason);
  void SetOnAllClosed(std::function<void()> fn) { on_all_closed_ = std::move(fn); }

 private:
  friend class AsioLink;
  struct Listener;
  struct Kept;

  void AcceptNext();
  void StartOutbound(const PeerId& peer, const NetAddress& address,
                     std::function<void(const Status&)> failed, bool kept);
  void KeptAttempt(const PeerId& peer);
  void KeptFailed(const PeerId& peer);
  // Called by AsioLink.
  void LinkEstablished(AsioLink& link);
  // A link that was up is down: OnLinkDown, and a reconnect if kept.
  void LinkDown(const std::shared_ptr<AsioLink>& link, const Status& why);
  // The socket is closed: forget the connection.
  void Release(const std::shared_ptr<AsioLink>& link);
  void ReleaseUnauthenticated(const std::string& ip);
  void Log(const std::string& line) const;

  AsioEnv& env_;
  crypto::SiteIdentity identity_;
  crypto::PinnedKeyCheck is_pinned_;
  NetworkOptions options_;
  LinkHandler* handler_ = nullptr;
  std::unique_ptr<Listener> listener_;
  uint16_t listen_port_ = 0;
  bool shutting_down_ = false;
  std::set<std::shared_ptr<AsioLink>> connections_;
  size_t unauth_total_ = 0;
  std::map<std::string, size_t> unauth_per_ip_;
  std::map<PeerId, std::unique_ptr<Kept>> kept_;
  std::function<void()> on_all_closed_;
};

}  // namespace dpnode::asio

#endif  // DPNODE_NODE_ASIO_ASIO_NETWORK_H_
