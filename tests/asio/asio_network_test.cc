// AsioNetwork on 127.0.0.1: handshake and messages both ways, clean close,
// refusals (unpinned key, wrong peer key, wrong consortium, handshake
// timeout, too many unauthenticated connections), backpressure, reconnect.
#include "node/asio/asio_network.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <future>
#include <optional>
#include <thread>

#include "node/asio/asio_env.h"
#include "tests/asio/asio_test_util.h"

namespace dpnode::asio {
namespace {

using std::chrono::milliseconds;
using testing::ClosedByPeerWithin;
using testing::ConnectResult;
using testing::Loopback;
using testing::MakeEnv;
using testing::NewIdentity;
using testing::RawConnect;
using testing::Recorder;
using testing::TestNetworkOptions;

SharedBytes Msg(size_t n, uint8_t seed) {
  auto v = std::make_shared<std::vector<uint8_t>>(n);
  for (size_t i = 0; i < n; ++i) (*v)[i] = static_cast<uint8_t>(seed + i * 31);
  return v;
}

uint16_t ListenOnLoopback(AsioEnv& env) {
  Status s;
  env.RunOnLoop([&] { s = env.network().Listen(Loopback(0)); });
  REQUIRE(s.ok());
  return env.asio_network().listen_port();
}

struct Pair {
  crypto::SiteIdentity a_id = NewIdentity();
  crypto::SiteIdentity b_id = NewIdentity();
  std::unique_ptr<AsioEnv> a, b;
  Recorder a_rec, b_rec;
  uint16_t b_port = 0;

  explicit Pair(NetworkOptions a_opts = TestNetworkOptions(),
                NetworkOptions b_opts = TestNetworkOptions()) {
    a = MakeEnv(a_id, {b_id.public_key()}, a_opts);
    b = MakeEnv(b_id, {a_id.public_key()}, b_opts);
    REQUIRE(a);
    REQUIRE(b);
    a->network().SetHandler(&a_rec);
    b->network().SetHandler(&b_rec);
    a->Start();
    b->Start();
    b_port = ListenOnLoopback(*b);
  }
  void Connect(ConnectResult* result) {
    a->RunOnLoop([&] { a->network().Connect(b_id.public_key(), Loopback(b_port), result->Callback()); });
  }
};

TEST_CASE("two envs handshake, exchange messages both ways and close cleanly") {
  Pair p;
  ConnectResult connect;
  p.Connect(&connect);
  REQUIRE(p.a_rec.WaitUp(1));
  REQUIRE(p.b_rec.WaitUp(1));
  std::shared_ptr<Link> ab = p.a_rec.up(0);
  std::shared_ptr<Link> ba = p.b_rec.up(0);
  CHECK(ab->peer() == p.b_id.public_key());
  CHECK(ba->peer() == p.a_id.public_key());

  // A -> B: several sizes, including empty and multi-record.
  const std::vector<size_t> sizes = {0, 1, 1000, 65510, 65511, 300000};
  p.a->RunOnLoop([&] {
    for (size_t i = 0; i < sizes.size(); ++i) CHECK(ab->Send(Msg(sizes[i], uint8_t(i))).ok());
  });
  REQUIRE(p.b_rec.WaitMessages(sizes.size()));
  for (size_t i = 0; i < sizes.size(); ++i) CHECK(*p.b_rec.message(i) == *Msg(sizes[i], uint8_t(i)));

  // B -> A.
  p.b->RunOnLoop([&] { CHECK(ba->Send(Msg(777, 9)).ok()); });
  REQUIRE(p.a_rec.WaitMessages(1));
  CHECK(*p.a_rec.message(0) == *Msg(777, 9));

  // A sends a last message and closes at once: the message still arrives,
  // then both sides see the link down (OK locally, kUnavailable remotely).
  p.a->RunOnLoop([&] {
    CHECK(ab->Send(Msg(5000, 3)).ok());
    ab->Close("test done");
    CHECK(ab->Send(Msg(1, 1)).code() == StatusCode::kFailedPrecondition);
  });
  REQUIRE(p.b_rec.WaitMessages(sizes.size() + 1));
  CHECK(*p.b_rec.message(sizes.size()) == *Msg(5000, 3));
  REQUIRE(p.a_rec.WaitDown(1));
  REQUIRE(p.b_rec.WaitDown(1));
  CHECK(p.a_rec.down(0).ok());
  CHECK(p.b_rec.down(0).code() == StatusCode::kUnavailable);
  CHECK(!connect.failed);
  p.a->Stop();
  p.b->Stop();
  CHECK(p.a_rec.down_count() == 1);
  CHECK(p.b_rec.down_count() == 1);
}

TEST_CASE("Stop closes live links with OnLinkDown on both sides") {
  Pair p;
  ConnectResult connect;
  p.Connect(&connect);
  REQUIRE(p.a_rec.WaitUp(1));
  REQUIRE(p.b_rec.WaitUp(1));
  p.a->Stop("maintenance");
  CHECK(p.a_rec.down_count() == 1);
  CHECK(p.a_rec.down(0).ok());
  REQUIRE(p.b_rec.WaitDown(1));
  CHECK(p.b_rec.down(0).code() == StatusCode::kUnavailable);
  p.b->Stop();
}

TEST_CASE("a listener refuses a key that is not pinned") {
  const crypto::SiteIdentity a_id = NewIdentity(), b_id = NewIdentity();
  auto a = MakeEnv(a_id, {b_id.public_key()});
  auto b = MakeEnv(b_id, {});  // pins nobody
  Recorder a_rec, b_rec;
  a->network().SetHandler(&a_rec);
  b->network().SetHandler(&b_rec);
  a->Start();
  b->Start();
  const uint16_t port = ListenOnLoopback(*b);
  ConnectResult connect;
  a->RunOnLoop([&] { a->network().Connect(b_id.public_key(), Loopback(port), connect.Callback()); });
  // In XX the initiator finishes first, before B has checked A's key; the
  // ready messages keep A from reporting a link that B then refuses.
  REQUIRE(connect.WaitFailed());
  CHECK(!connect.status.ok());
  std::this_thread::sleep_for(milliseconds(100));
  CHECK(b_rec.up_count() == 0);
  CHECK(a_rec.up_count() == 0);
  size_t unauth = 1;
  b->RunOnLoop([&] { unauth = b->asio_network().unauthenticated_connections(); });
  CHECK(unauth == 0);
  a->Stop();
  b->Stop();
}

TEST_CASE("a connector refuses a pinned peer that is not the one it dialled") {
  const crypto::SiteIdentity a_id = NewIdentity(), b_id = NewIdentity(), c_id = NewIdentity();
  auto a = MakeEnv(a_id, {b_id.public_key(), c_id.public_key()});
  auto b = MakeEnv(b_id, {a_id.public_key()});
  Recorder a_rec, b_rec;
  a->network().SetHandler(&a_rec);
  b->network().SetHandler(&b_rec);
  a->Start();
  b->Start();
  const uint16_t port = ListenOnLoopback(*b);
  ConnectResult connect;
  // B listens at `port`, but A expects C there.
  a->RunOnLoop([&] { a->network().Connect(c_id.public_key(), Loopback(port), connect.Callback()); });
  REQUIRE(connect.WaitFailed());
  CHECK(connect.status.code() == StatusCode::kFailedPrecondition);
  CHECK(a_rec.up_count() == 0);
  a->Stop();
  b->Stop();
}

TEST_CASE("a wrong consortium id is refused on both sides") {
  NetworkOptions other = TestNetworkOptions();
  other.channel.consortium_id = "another-consortium";
  Pair p(TestNetworkOptions(), other);
  ConnectResult connect;
  p.Connect(&connect);
  REQUIRE(connect.WaitFailed());
  CHECK(!connect.status.ok());
  std::this_thread::sleep_for(milliseconds(100));
  CHECK(p.a_rec.up_count() == 0);
  CHECK(p.b_rec.up_count() == 0);
  p.a->Stop();
  p.b->Stop();
}

TEST_CASE("a connection that sends nothing is dropped at the handshake deadline") {
  NetworkOptions o = TestNetworkOptions();
  o.channel.handshake_timeout = milliseconds(200);
  const crypto::SiteIdentity id = NewIdentity();
  auto b = MakeEnv(id, {}, o);
  b->Start();
  const uint16_t port = ListenOnLoopback(*b);
  const auto start = std::chrono::steady_clock::now();
  const int fd = RawConnect(port);
  REQUIRE(fd >= 0);
  CHECK(ClosedByPeerWithin(fd, std::chrono::seconds(3)));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  CHECK(elapsed >= milliseconds(150));
  CHECK(elapsed < milliseconds(2000));
  ::close(fd);
  b->Stop();
}

size_t Unauthenticated(AsioEnv& env) {
  size_t n = 0;
  env.RunOnLoop([&] { n = env.asio_network().unauthenticated_connections(); });
  return n;
}

bool WaitUnauthenticated(AsioEnv& env, size_t n) {
  for (int i = 0; i < 200; ++i) {
    if (Unauthenticated(env) == n) return true;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return false;
}

TEST_CASE("unauthenticated connections are limited per source address") {
  NetworkOptions o = TestNetworkOptions();
  o.max_unauthenticated_per_ip = 2;
  o.channel.handshake_timeout = std::chrono::seconds(60);  // silent clients stay until closed
  Pair p(TestNetworkOptions(), o);
  const int c1 = RawConnect(p.b_port), c2 = RawConnect(p.b_port);
  REQUIRE(c1 >= 0);
  REQUIRE(c2 >= 0);
  REQUIRE(WaitUnauthenticated(*p.b, 2));
  // The third from the same address is closed at once, long before the
  // handshake timeout; the first two stay open.
  const int c3 = RawConnect(p.b_port);
  REQUIRE(c3 >= 0);
  CHECK(ClosedByPeerWithin(c3, milliseconds(1500)));
  CHECK(!ClosedByPeerWithin(c1, milliseconds(200)));
  CHECK(!ClosedByPeerWithin(c2, milliseconds(10)));
  CHECK(Unauthenticated(*p.b) == 2);
  // A real peer from the same address is refused too while the slots are taken.
  ConnectResult refused;
  p.Connect(&refused);
  REQUIRE(refused.WaitFailed());
  CHECK(p.b_rec.up_count() == 0);
  // Freeing a slot lets it in.
  ::close(c1);
  REQUIRE(WaitUnauthenticated(*p.b, 1));
  ConnectResult ok;
  p.Connect(&ok);
  REQUIRE(p.b_rec.WaitUp(1));
  CHECK(Unauthenticated(*p.b) == 1);  // c2 still silent
  ::close(c2);
  ::close(c3);
  p.a->Stop();
  p.b->Stop();
}

TEST_CASE("unauthenticated connections are limited in total") {
  NetworkOptions o = TestNetworkOptions();
  o.max_unauthenticated_total = 1;
  o.channel.handshake_timeout = std::chrono::seconds(60);
  Pair p(TestNetworkOptions(), o);
  const int c1 = RawConnect(p.b_port);
  REQUIRE(c1 >= 0);
  REQUIRE(WaitUnauthenticated(*p.b, 1));
  const int c2 = RawConnect(p.b_port);
  REQUIRE(c2 >= 0);
  CHECK(ClosedByPeerWithin(c2, milliseconds(1500)));
  CHECK(!ClosedByPeerWithin(c1, milliseconds(100)));
  ::close(c1);
  ::close(c2);
  p.a->Stop();
  p.b->Stop();
}

TEST_CASE("Send returns kUnavailable when the peer stops reading, and recovers") {
  NetworkOptions o = TestNetworkOptions();
  o.channel.max_message_bytes = size_t{1} << 20;
  o.channel.max_send_buffer_bytes = size_t{3} << 20;
  Pair p(o, o);
  ConnectResult connect;
  p.Connect(&connect);
  REQUIRE(p.a_rec.WaitUp(1));
  REQUIRE(p.b_rec.WaitUp(1));
  std::shared_ptr<Link> ab = p.a_rec.up(0);

  // Block B's loop: it stops reading, the kernel buffers fill, then A's queue.
  std::promise<void> unblock;
  std::shared_future<void> unblocked = unblock.get_future().share();
  p.b->Post([unblocked] { unblocked.wait(); });

  const size_t kMsg = 512 << 10;
  size_t accepted = 0;
  Status refusal;
  size_t queued_at_refusal = 0;
  for (int i = 0; i < 400 && refusal.ok(); ++i) {  // 400 x 512 KiB = 200 MiB
    p.a->RunOnLoop([&] {
      const Status s = ab->Send(Msg(kMsg, static_cast<uint8_t>(accepted)));
      if (s.ok()) {
        ++accepted;
      } else {
        refusal = s;
        queued_at_refusal = ab->queued_bytes();
      }
    });
    if (accepted % 8 == 0) std::this_thread::sleep_for(milliseconds(2));  // let writes happen
  }
  CHECK(refusal.code() == StatusCode::kUnavailable);
  CHECK(queued_at_refusal > 0);
  CHECK(queued_at_refusal <= o.channel.max_send_buffer_bytes);
  CHECK(accepted >= 4);
  MESSAGE("accepted " << accepted << " x 512 KiB before backpressure; queued "
                      << queued_at_refusal << " bytes");

  unblock.set_value();
  REQUIRE(p.b_rec.WaitMessages(accepted, std::chrono::seconds(20)));
  for (size_t i = 0; i < accepted; i += accepted - 1) {
    CHECK(*p.b_rec.message(i) == *Msg(kMsg, static_cast<uint8_t>(i)));
  }
  // The queue drained: sending works again.
  bool drained = false;
  for (int i = 0; i < 200 && !drained; ++i) {
    p.a->RunOnLoop([&] { drained = ab->queued_bytes() == 0; });
    if (!drained) std::this_thread::sleep_for(milliseconds(10));
  }
  CHECK(drained);
  p.a->RunOnLoop([&] { CHECK(ab->Send(Msg(10, 1)).ok()); });
  REQUIRE(p.b_rec.WaitMessages(accepted + 1));
  p.a->Stop();
  p.b->Stop();
}

// A hand-driven SecureChannel over a blocking socket: a peer that completes
// the handshake and then misbehaves on purpose.
struct RawChannelPeer {
  int fd = -1;
  std::optional<crypto::SecureChannel> ch;

  bool Handshake(const crypto::SiteIdentity& id, const PeerId& server, uint16_t port) {
    fd = RawConnect(port);
    if (fd < 0) return false;
    crypto::SecureChannelOptions o = TestNetworkOptions().channel;
    auto created = crypto::SecureChannel::Create(
        crypto::ChannelRole::kInitiator, id,
        [server](const crypto::Ed25519PublicKey& k) { return k == server; }, o,
        crypto::SteadyTime(0));
    if (!created.ok()) return false;
    ch.emplace(std::move(*created));
    while (!ch->IsEstablished() && !ch->HasFailed()) {
      if (!WriteOut()) return false;
      uint8_t buf[4096];
      const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) return false;
      if (!ch->ReceivedBytes(crypto::ByteView(buf, static_cast<size_t>(n))).ok()) return false;
    }
    return ch->IsEstablished() && WriteOut();  // the last handshake message
  }
  // Writes what the channel has, optionally flipping one byte first.
  bool WriteOut(size_t flip_at = SIZE_MAX) {
    crypto::ByteView out = ch->GetBytesToSend();
    std::vector<uint8_t> bytes(out.begin(), out.end());
    if (flip_at < bytes.size()) bytes[flip_at] ^= 0x40;
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t w = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (w <= 0) return false;
      done += static_cast<size_t>(w);
    }
    ch->MarkBytesSent(bytes.size());
    return true;
  }
  ~RawChannelPeer() {
    if (fd >= 0) ::close(fd);
  }
};

TEST_CASE("a tampered frame after the handshake takes the link down with kCorruption") {
  const crypto::SiteIdentity a_id = NewIdentity(), b_id = NewIdentity();
  auto b = MakeEnv(b_id, {a_id.public_key()});
  Recorder b_rec;
  b->network().SetHandler(&b_rec);
  b->Start();
  const uint16_t port = ListenOnLoopback(*b);
  RawChannelPeer raw;
  REQUIRE(raw.Handshake(a_id, b_id.public_key(), port));
  // The transport's empty ready message comes first.
  REQUIRE(raw.ch->Send(crypto::ByteView()).ok());
  REQUIRE(raw.WriteOut());
  REQUIRE(b_rec.WaitUp(1));
  CHECK(b_rec.up(0)->peer() == a_id.public_key());
  const std::vector<uint8_t> hello = {1, 2, 3, 4, 5};
  REQUIRE(raw.ch->Send(crypto::ByteView(hello)).ok());
  REQUIRE(raw.WriteOut());
  REQUIRE(b_rec.WaitMessages(1));
  CHECK(*b_rec.message(0) == hello);
  // Flip a byte inside the next frame's ciphertext.
  REQUIRE(raw.ch->Send(crypto::ByteView(hello)).ok());
  REQUIRE(raw.WriteOut(5));
  REQUIRE(b_rec.WaitDown(1));
  CHECK(b_rec.down(0).code() == StatusCode::kCorruption);
  CHECK(b_rec.message_count() == 1);
  CHECK(ClosedByPeerWithin(raw.fd, std::chrono::seconds(3)));
  b->Stop();
}

TEST_CASE("a peer whose first message is not the empty ready message is never reported") {
  const crypto::SiteIdentity a_id = NewIdentity(), b_id = NewIdentity();
  auto b = MakeEnv(b_id, {a_id.public_key()});
  Recorder b_rec;
  b->network().SetHandler(&b_rec);
  b->Start();
  const uint16_t port = ListenOnLoopback(*b);
  RawChannelPeer raw;
  REQUIRE(raw.Handshake(a_id, b_id.public_key(), port));
  const std::vector<uint8_t> early = {42};
  REQUIRE(raw.ch->Send(crypto::ByteView(early)).ok());
  REQUIRE(raw.WriteOut());
  CHECK(ClosedByPeerWithin(raw.fd, std::chrono::seconds(3)));
  CHECK(b_rec.up_count() == 0);
  CHECK(b_rec.message_count() == 0);
  b->Stop();
}

TEST_CASE("a peer that completes Noise but never sends its ready message times out") {
  NetworkOptions o = TestNetworkOptions();
  o.channel.handshake_timeout = milliseconds(300);
  const crypto::SiteIdentity a_id = NewIdentity(), b_id = NewIdentity();
  auto b = MakeEnv(b_id, {a_id.public_key()}, o);
  Recorder b_rec;
  b->network().SetHandler(&b_rec);
  b->Start();
  const uint16_t port = ListenOnLoopback(*b);
  RawChannelPeer raw;
  REQUIRE(raw.Handshake(a_id, b_id.public_key(), port));
  CHECK(ClosedByPeerWithin(raw.fd, std::chrono::seconds(3)));
  CHECK(b_rec.up_count() == 0);
  b->Stop();
}

TEST_CASE("KeepConnected retries with backoff until the peer appears, and after it drops") {
  NetworkOptions ao = TestNetworkOptions();
  ao.reconnect.initial_delay = milliseconds(20);
  ao.reconnect.max_delay = milliseconds(100);
  const crypto::SiteIdentity a_id = NewIdentity(), b_id = NewIdentity();
  auto a = MakeEnv(a_id, {b_id.public_key()}, ao);
  Recorder a_rec;
  a->network().SetHandler(&a_rec);
  a->Start();

  // Reserve a port, then free it so nothing listens there yet.
  uint16_t port = 0;
  {
    auto probe = MakeEnv(b_id, {});
    probe->Start();
    port = ListenOnLoopback(*probe);
    probe->Stop();
  }
  a->RunOnLoop([&] { a->asio_network().KeepConnected(b_id.public_key(), Loopback(port)); });
  uint64_t attempts = 0;
  for (int i = 0; i < 300 && attempts < 3; ++i) {
    std::this_thread::sleep_for(milliseconds(10));
    a->RunOnLoop([&] { attempts = a->asio_network().reconnect_attempts(b_id.public_key()); });
  }
  CHECK(attempts >= 3);

  auto b = MakeEnv(b_id, {a_id.public_key()});
  Recorder b_rec;
  b->network().SetHandler(&b_rec);
  b->Start();
  Status listen;
  b->RunOnLoop([&] { listen = b->network().Listen(Loopback(port)); });
  REQUIRE(listen.ok());
  REQUIRE(a_rec.WaitUp(1));
  REQUIRE(b_rec.WaitUp(1));
  a->RunOnLoop([&] { attempts = a->asio_network().reconnect_attempts(b_id.public_key()); });
  CHECK(attempts == 0);  // reset by the success

  // B closes its side: A notices and reconnects by itself.
  std::shared_ptr<Link> ba = b_rec.up(0);
  b->RunOnLoop([&] { ba->Close("testing reconnect"); });
  REQUIRE(a_rec.WaitDown(1));
  REQUIRE(a_rec.WaitUp(2));
  REQUIRE(b_rec.WaitUp(2));
  a->Stop();
  b->Stop();
}

}  // namespace
}  // namespace dpnode::asio
