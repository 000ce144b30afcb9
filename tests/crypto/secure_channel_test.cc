// The secure channel: two channels talking through random byte splits, and
// every refusal path (unknown key, wrong consortium, tampering anywhere,
// truncation, oversized declared size, replay, reordering, timeout), rekeying
// and backpressure. A "raw peer" built from the Noise objects and the
// documented wire format plays a misbehaving but authenticated site.
#include "crypto/secure_channel.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace dpnode::crypto {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr SteadyTime kT0 = seconds(1000);

SiteIdentity NewIdentity() {
  Result<SiteIdentity> id = SiteIdentity::Generate();
  REQUIRE(id.ok());
  return *id;
}

PinnedKeyCheck Pin(std::vector<Ed25519PublicKey> keys) {
  return [keys = std::move(keys)](const Ed25519PublicKey& k) {
    return std::find(keys.begin(), keys.end(), k) != keys.end();
  };
}

SecureChannelOptions Options(std::string consortium = "nordic-cardiology") {
  SecureChannelOptions o;
  o.consortium_id = std::move(consortium);
  return o;
}

SecureChannel MustCreate(ChannelRole role, const SiteIdentity& id, PinnedKeyCheck pin,
                         const SecureChannelOptions& options, SteadyTime now = kT0) {
  Result<SecureChannel> ch = SecureChannel::Create(role, id, std::move(pin), options, now);
  REQUIRE_MESSAGE(ch.ok(), ch.status().ToString());
  return std::move(ch).value();
}

Bytes Pattern(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Bytes b(n);
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  return b;
}

// A connected pair: `a` dials, `b` answers; each pins the other.
struct Pair {
  SiteIdentity id_a = NewIdentity();
  SiteIdentity id_b = NewIdentity();
  SecureChannel a;
  SecureChannel b;
  Pair(const SecureChannelOptions& oa = Options(), const SecureChannelOptions& ob = Options())
      : a(MustCreate(ChannelRole::kInitiator, id_a, Pin({id_b.public_key()}), oa)),
        b(MustCreate(ChannelRole::kResponder, id_b, Pin({id_a.public_key()}), ob)) {}
};

// One direction of a wire. Moves bytes in pieces chosen by `rng` (or all at
// once without one), optionally flipping the byte at stream offset
// `tamper_at`. Counts everything it carried.
struct Wire {
  std::mt19937_64* rng = nullptr;
  size_t tamper_at = SIZE_MAX;
  uint8_t tamper_mask = 0x01;
  size_t carried = 0;

  size_t PieceSize(size_t available) {
    if (rng == nullptr) return available;
    // Mostly large pieces, often tiny ones, so every boundary gets hit.
    const size_t cap = ((*rng)() % 4 == 0) ? 16 : 200000;
    return 1 + (*rng)() % std::min(available, cap);
  }

  // Returns true if anything moved.
  bool Transfer(SecureChannel& from, SecureChannel& to) {
    bool moved = false;
    while (!to.HasFailed()) {
      ByteView out = from.GetBytesToSend();
      if (out.empty()) break;
      const size_t n = PieceSize(out.size());
      Bytes piece(out.begin(), out.begin() + n);
      from.MarkBytesSent(n);
      if (tamper_at >= carried && tamper_at < carried + n)
        piece[tamper_at - carried] ^= tamper_mask;
      carried += n;
      moved = true;
      (void)to.ReceivedBytes(piece);
    }
    return moved;
  }
};

void Pump(SecureChannel& a, SecureChannel& b, Wire& ab, Wire& ba) {
  for (int i = 0; i < 1000; ++i) {
    const bool x = ab.Transfer(a, b);
    const bool y = ba.Transfer(b, a);
    if (!x && !y) return;
  }
  FAIL("pump did not settle");
}

void Pump(SecureChannel& a, SecureChannel& b) {
  Wire ab, ba;
  Pump(a, b, ab, ba);
}

std::vector<Bytes> Drain(SecureChannel& ch) {
  std::vector<Bytes> out;
  while (std::optional<Bytes> m = ch.NextMessage()) out.push_back(std::move(*m));
  return out;
}

// Splits a byte stream into the Noise messages of its frames (the stream
// must hold whole frames).
std::vector<Bytes> SplitFrames(ByteView stream) {
  std::vector<Bytes> frames;
  size_t pos = 0;
  while (pos < stream.size()) {
    REQUIRE(pos + 2 <= stream.size());
    const size_t len = (size_t{stream[pos]} << 8) | stream[pos + 1];
    REQUIRE(pos + 2 + len <= stream.size());
    frames.push_back(stream.Sub(pos + 2, len).ToBytes());
    pos += 2 + len;
  }
  return frames;
}

std::vector<Bytes> TakeFrames(SecureChannel& ch) {
  const ByteView out = ch.GetBytesToSend();
  std::vector<Bytes> frames = SplitFrames(out);
  ch.MarkBytesSent(out.size());
  return frames;
}

Bytes Frame(ByteView message) {
  Bytes f = {static_cast<uint8_t>(message.size() >> 8), static_cast<uint8_t>(message.size())};
  f.insert(f.end(), message.begin(), message.end());
  return f;
}

TEST_CASE("channel: messages of every size through random byte splits, both ways") {
  const std::vector<size_t> sizes = {0, 1, 65510, 65511, 65535, 65536, 3 * 1024 * 1024 + 7};
  for (uint64_t seed : {1u, 2u, 3u, 20261127u}) {
    CAPTURE(seed);
    std::mt19937_64 rng(seed);
    Pair p;
    Wire ab{&rng}, ba{&rng};
    std::vector<Bytes> sent_ab, sent_ba;
    // The first half is queued before the handshake completes.
    for (size_t i = 0; i < sizes.size(); ++i) {
      if (i == sizes.size() / 2) Pump(p.a, p.b, ab, ba);
      sent_ab.push_back(Pattern(sizes[i], seed * 100 + i));
      sent_ba.push_back(Pattern(sizes[sizes.size() - 1 - i], seed * 1000 + i));
      REQUIRE(p.a.Send(sent_ab.back()).ok());
      REQUIRE(p.b.Send(sent_ba.back()).ok());
    }
    Pump(p.a, p.b, ab, ba);
    REQUIRE_MESSAGE(p.a.status().ok(), p.a.status().ToString());
    REQUIRE_MESSAGE(p.b.status().ok(), p.b.status().ToString());
    CHECK(p.a.IsEstablished());
    CHECK(p.b.IsEstablished());
    CHECK(Drain(p.b) == sent_ab);
    CHECK(Drain(p.a) == sent_ba);
    REQUIRE(p.a.peer_identity().has_value());
    CHECK(*p.a.peer_identity() == p.id_b.public_key());
    CHECK(*p.b.peer_identity() == p.id_a.public_key());
    CHECK(p.a.session_hash().size() == 64);
    CHECK(p.a.session_hash() == p.b.session_hash());
    CHECK_FALSE(p.a.HasPartialInput());
    CHECK(p.a.EndOfStream().ok());
    CHECK(p.a.pending_send_bytes() == 0);
  }
}

TEST_CASE("channel: independent sessions have different session hashes") {
  Pair p, q;
  Pump(p.a, p.b);
  Pump(q.a, q.b);
  REQUIRE(p.a.IsEstablished());
  REQUIRE(q.a.IsEstablished());
  CHECK(p.a.session_hash() != q.a.session_hash());
}

TEST_CASE("channel: a responder whose key is not pinned gets no application data") {
  const SiteIdentity id_a = NewIdentity(), id_b = NewIdentity(), other = NewIdentity();
  SecureChannel a = MustCreate(ChannelRole::kInitiator, id_a, Pin({other.public_key()}), Options());
  SecureChannel b = MustCreate(ChannelRole::kResponder, id_b, Pin({id_a.public_key()}), Options());
  REQUIRE(a.Send(AsBytes("patient-level secret").ToBytes()).ok());
  Wire ab, ba;
  Pump(a, b, ab, ba);
  CHECK(a.HasFailed());
  CHECK(a.status().code() == StatusCode::kFailedPrecondition);
  CHECK(a.status().message().find("not pinned") != std::string::npos);
  CHECK(a.status().message().find(PublicKeyToText(id_b.public_key())) != std::string::npos);
  // The initiator sent its first handshake message and nothing after it.
  CHECK(ab.carried == kFrameHeaderLen + 32);
  CHECK(Drain(b).empty());
  CHECK_FALSE(b.IsEstablished());
  // Failed is final.
  CHECK(a.Send(AsBytes("x").ToBytes()).code() == StatusCode::kFailedPrecondition);
  CHECK(a.GetBytesToSend().empty());
}

TEST_CASE("channel: an initiator whose key is not pinned is refused before its data is read") {
  const SiteIdentity id_a = NewIdentity(), id_b = NewIdentity(), other = NewIdentity();
  SecureChannel a = MustCreate(ChannelRole::kInitiator, id_a, Pin({id_b.public_key()}), Options());
  SecureChannel b = MustCreate(ChannelRole::kResponder, id_b, Pin({other.public_key()}), Options());
  REQUIRE(a.Send(AsBytes("from a").ToBytes()).ok());
  REQUIRE(b.Send(AsBytes("from b").ToBytes()).ok());
  Wire ab, ba;
  Pump(a, b, ab, ba);
  CHECK(b.HasFailed());
  CHECK(b.status().code() == StatusCode::kFailedPrecondition);
  CHECK(Drain(b).empty());
  // The responder sent only its handshake message: 32 + 48 + 112 bytes.
  CHECK(ba.carried == kFrameHeaderLen + 192);
  CHECK(Drain(a).empty());
}

TEST_CASE("channel: wrong consortium id or protocol version fails the handshake") {
  SUBCASE("consortium") {
    Pair p(Options("nordic-cardiology"), Options("nordic-oncology"));
    Pump(p.a, p.b);
    CHECK(p.a.HasFailed());
    CHECK(p.a.status().code() == StatusCode::kCorruption);
    CHECK(p.a.status().message().find(
              "handshake failed: wrong consortium id or protocol version, or tampered") == 0);
    CHECK_FALSE(p.b.IsEstablished());
  }
  SUBCASE("protocol version") {
    SecureChannelOptions v2 = Options();
    v2.protocol_version = 2;
    Pair p(v2, Options());
    Pump(p.a, p.b);
    CHECK(p.a.HasFailed());
    CHECK(p.a.status().message().find("wrong consortium id or protocol version") !=
          std::string::npos);
  }
  SUBCASE("same settings work") {
    Pair p;
    Pump(p.a, p.b);
    CHECK(p.a.IsEstablished());
    CHECK(p.b.IsEstablished());
  }
}

const std::vector<Bytes>& TamperMessages() {
  static const std::vector<Bytes> msgs = {AsBytes("first message").ToBytes(), Pattern(100, 1),
                                          Pattern(70000, 2), Pattern(70000, 3)};
  return msgs;
}

struct Exchange {
  std::vector<Bytes> delivered;  // to the receiving side of the tampered direction
  bool a_failed = false;
  bool b_failed = false;
  bool receiver_failed = false;
  size_t carried = 0;  // bytes carried in the tampered direction
};

// Both sides send TamperMessages(); one byte of one direction is flipped
// (none when position is SIZE_MAX).
Exchange RunExchange(bool tamper_a_to_b, size_t position, uint8_t mask) {
  Pair p;
  for (const Bytes& m : TamperMessages()) {
    REQUIRE(p.a.Send(m).ok());
    REQUIRE(p.b.Send(m).ok());
  }
  Wire ab, ba;
  Wire& tampered = tamper_a_to_b ? ab : ba;
  tampered.tamper_at = position;
  tampered.tamper_mask = mask;
  Pump(p.a, p.b, ab, ba);
  SecureChannel& receiver = tamper_a_to_b ? p.b : p.a;
  Exchange e;
  e.delivered = Drain(receiver);
  e.a_failed = p.a.HasFailed();
  e.b_failed = p.b.HasFailed();
  e.receiver_failed = receiver.HasFailed();
  e.carried = tampered.carried;
  return e;
}

TEST_CASE("channel: a flipped byte anywhere in the first frames closes the session") {
  // Initiator -> responder: message 1 (34), message 3 (162), the first two
  // records (37 + 127) and the start of the third. Responder -> initiator:
  // message 2 (194), the same records.
  const size_t ab_span = 34 + 162 + 37 + 127 + 40;
  const size_t ba_span = 194 + 37 + 127 + 40;
  // Control: untouched, everything arrives and both streams are longer than
  // the spans tampered below.
  for (bool dir : {true, false}) {
    const Exchange clean = RunExchange(dir, SIZE_MAX, 0);
    CHECK(clean.delivered == TamperMessages());
    CHECK_FALSE(clean.a_failed);
    CHECK_FALSE(clean.b_failed);
    CHECK(clean.carried > (dir ? ab_span : ba_span) + 65537);
  }
  for (bool dir : {true, false}) {
    for (size_t pos = 0; pos < (dir ? ab_span : ba_span); ++pos) {
      CAPTURE(dir);
      CAPTURE(pos);
      const uint8_t mask = static_cast<uint8_t>(dir ? 1u << (pos % 8) : 0x80u >> (pos % 8));
      const Exchange e = RunExchange(dir, pos, mask);
      CHECK(e.delivered.size() < TamperMessages().size());
      for (size_t i = 0; i < e.delivered.size(); ++i) CHECK(e.delivered[i] == TamperMessages()[i]);
      CHECK((e.a_failed || e.b_failed));
      // Past the unauthenticated first handshake message, the receiver
      // itself notices (a flipped ephemeral key in message 1 is noticed by
      // the initiator when message 2 fails to decrypt).
      if (!dir || pos >= kFrameHeaderLen + 32) CHECK(e.receiver_failed);
    }
  }
}

TEST_CASE("channel: a stream that ends mid-frame delivers nothing of that frame") {
  Pair p;
  Pump(p.a, p.b);
  REQUIRE(p.b.IsEstablished());
  REQUIRE(p.a.Send(AsBytes("complete").ToBytes()).ok());
  REQUIRE(p.a.Send(AsBytes("cut").ToBytes()).ok());
  ByteView out = p.a.GetBytesToSend();
  REQUIRE(p.b.ReceivedBytes(out.Sub(0, out.size() - 1)).ok());
  const std::vector<Bytes> got = Drain(p.b);
  REQUIRE(got.size() == 1);
  CHECK(got[0] == AsBytes("complete").ToBytes());
  CHECK(p.b.HasPartialInput());
  const Status end = p.b.EndOfStream();
  CHECK(end.code() == StatusCode::kCorruption);
  CHECK(end.message().find("inside a frame") != std::string::npos);
  CHECK(p.b.HasFailed());
  CHECK(Drain(p.b).empty());
}

TEST_CASE("channel: a stream that ends between the records of a message") {
  Pair p;
  Pump(p.a, p.b);
  REQUIRE(p.a.Send(Pattern(200000, 5)).ok());
  std::vector<Bytes> frames = TakeFrames(p.a);
  REQUIRE(frames.size() == 4);
  for (size_t i = 0; i < 3; ++i) REQUIRE(p.b.ReceivedBytes(Frame(frames[i])).ok());
  CHECK(Drain(p.b).empty());
  CHECK(p.b.HasPartialInput());
  CHECK(p.b.EndOfStream().message().find("inside a multi-record message") != std::string::npos);
}

TEST_CASE("channel: replayed and reordered frames are refused") {
  Pair p;
  Pump(p.a, p.b);
  for (const char* m : {"one", "two", "three"}) REQUIRE(p.a.Send(AsBytes(m).ToBytes()).ok());
  const std::vector<Bytes> frames = TakeFrames(p.a);
  REQUIRE(frames.size() == 3);

  SUBCASE("replay") {
    REQUIRE(p.b.ReceivedBytes(Frame(frames[0])).ok());
    const Status s = p.b.ReceivedBytes(Frame(frames[0]));
    CHECK(s.code() == StatusCode::kCorruption);
    CHECK(s.message().find("failed authentication") != std::string::npos);
    CHECK(p.b.HasFailed());
    CHECK(Drain(p.b).empty());  // the queue is dropped with the session
    CHECK(p.b.ReceivedBytes(Frame(frames[1])).code() == StatusCode::kCorruption);
  }
  SUBCASE("reorder") {
    CHECK(p.b.ReceivedBytes(Frame(frames[1])).code() == StatusCode::kCorruption);
    CHECK(p.b.HasFailed());
    CHECK(p.b.ReceivedBytes(Frame(frames[0])).code() == StatusCode::kCorruption);
    CHECK(Drain(p.b).empty());
  }
  SUBCASE("in order, control") {
    for (const Bytes& f : frames) REQUIRE(p.b.ReceivedBytes(Frame(f)).ok());
    CHECK(Drain(p.b).size() == 3);
  }
}

TEST_CASE("channel: handshake timeout is reported at the deadline, in caller time") {
  Pair p;
  CHECK(p.a.deadline() == kT0 + seconds(10));
  CHECK(p.a.CheckDeadline(kT0 + seconds(10) - milliseconds(1)).ok());
  const Status s = p.a.CheckDeadline(kT0 + seconds(10));
  CHECK(s.code() == StatusCode::kUnavailable);
  CHECK(s.message().find("handshake not complete within 10000 ms") != std::string::npos);
  CHECK(p.a.HasFailed());
  CHECK(p.a.Send(AsBytes("x").ToBytes()).code() == StatusCode::kUnavailable);
  CHECK(p.a.ReceivedBytes(AsBytes("xyz").ToBytes()).code() == StatusCode::kUnavailable);

  // An established session has no deadline.
  Pair q;
  Pump(q.a, q.b);
  REQUIRE(q.b.IsEstablished());
  CHECK(q.b.CheckDeadline(kT0 + std::chrono::hours(1)).ok());
  CHECK(q.a.CheckDeadline(kT0 + std::chrono::hours(1)).ok());
}

TEST_CASE("channel: rekeying after the record or byte budget, traffic continues") {
  SecureChannelOptions oa = Options(), ob = Options();
  oa.rekey_after_records = 3;
  ob.rekey_after_bytes = 100000;
  Pair p(oa, ob);
  Pump(p.a, p.b);
  std::vector<Bytes> sent;
  for (int i = 0; i < 20; ++i) {
    sent.push_back(Pattern(50 + i, i));
    REQUIRE(p.a.Send(sent.back()).ok());
  }
  const Bytes big = Pattern(1 << 20, 99);
  REQUIRE(p.b.Send(big).ok());
  Pump(p.a, p.b);
  REQUIRE(p.a.status().ok());
  REQUIRE(p.b.status().ok());
  CHECK(Drain(p.b) == sent);
  const std::vector<Bytes> back = Drain(p.a);
  REQUIRE(back.size() == 1);
  CHECK(back[0] == big);
  // 20 one-record messages, a rekey every 3rd record.
  CHECK(p.a.rekeys_sent() == 6);
  CHECK(p.b.rekeys_received() == 6);
  // 1 MiB goes in 17 frames (65510 bytes, then 65518 a frame), each full
  // frame 65537 bytes on the wire, so the 100000-byte budget is reached on
  // every second frame.
  CHECK(p.b.rekeys_sent() == 8);
  CHECK(p.a.rekeys_received() == p.b.rekeys_sent());
}

TEST_CASE("channel: Send refuses oversized messages and a full buffer without closing") {
  SecureChannelOptions o = Options();
  o.max_message_bytes = 100000;
  o.max_send_buffer_bytes = SecureChannel::EncodedSize(100000);
  Pair p(o, o);
  Pump(p.a, p.b);
  REQUIRE(p.a.IsEstablished());
  CHECK(p.a.Send(Pattern(100001, 1)).code() == StatusCode::kInvalidArgument);
  REQUIRE(p.a.Send(Pattern(100000, 1)).ok());
  CHECK(p.a.pending_send_bytes() == SecureChannel::EncodedSize(100000));
  CHECK(p.a.GetBytesToSend().size() == SecureChannel::EncodedSize(100000));
  const Status full = p.a.Send(AsBytes("x").ToBytes());
  CHECK(full.code() == StatusCode::kUnavailable);
  CHECK_FALSE(p.a.HasFailed());
  Pump(p.a, p.b);
  CHECK(p.a.pending_send_bytes() == 0);
  CHECK(p.a.Send(AsBytes("x").ToBytes()).ok());
  Pump(p.a, p.b);
  CHECK(Drain(p.b).size() == 2);
}

TEST_CASE("channel: Create validates its options") {
  const SiteIdentity id = NewIdentity();
  const PinnedKeyCheck pin = Pin({});
  SecureChannelOptions o = Options("");
  CHECK(SecureChannel::Create(ChannelRole::kInitiator, id, pin, o, kT0).status().code() ==
        StatusCode::kInvalidArgument);
  o = Options(std::string(256, 'c'));
  CHECK_FALSE(SecureChannel::Create(ChannelRole::kInitiator, id, pin, o, kT0).ok());
  o = Options();
  o.max_send_buffer_bytes = 1000;
  CHECK_FALSE(SecureChannel::Create(ChannelRole::kInitiator, id, pin, o, kT0).ok());
  o = Options();
  o.rekey_after_records = 0;
  CHECK_FALSE(SecureChannel::Create(ChannelRole::kInitiator, id, pin, o, kT0).ok());
  CHECK_FALSE(SecureChannel::Create(ChannelRole::kInitiator, id, nullptr, Options(), kT0).ok());
  CHECK(SecureChannel::Create(ChannelRole::kInitiator, id, pin, Options(), kT0).ok());
}

TEST_CASE("channel: encoded size matches what is written") {
  Pair p;
  Pump(p.a, p.b);
  for (size_t n : {size_t{0}, size_t{1}, size_t{65510}, size_t{65511}, size_t{131028},
                   size_t{131029}, size_t{1000000}}) {
    CAPTURE(n);
    REQUIRE(p.a.Send(Pattern(n, n)).ok());
    CHECK(p.a.GetBytesToSend().size() == SecureChannel::EncodedSize(n));
    p.a.MarkBytesSent(p.a.GetBytesToSend().size());
  }
}

TEST_CASE("channel: random bytes never crash it and never yield a message") {
  // A small seeded stand-in for the fuzz target: garbage to a fresh
  // responder, a fresh initiator and an established session.
  for (uint64_t seed = 1; seed <= 150; ++seed) {
    CAPTURE(seed);
    std::mt19937_64 rng(seed);
    Pair p;
    Pump(p.a, p.b);
    REQUIRE(p.b.IsEstablished());
    const SiteIdentity id = NewIdentity();
    SecureChannel fresh_resp = MustCreate(ChannelRole::kResponder, id, Pin({}), Options());
    SecureChannel fresh_init = MustCreate(ChannelRole::kInitiator, id, Pin({}), Options());
    const Bytes garbage = Pattern(rng() % 3000, seed);
    // Give the garbage a plausible handshake header half of the time.
    Bytes framed = Frame(garbage.size() > 32 ? ByteView(garbage).Sub(0, 32) : ByteView(garbage));
    framed.insert(framed.end(), garbage.begin(), garbage.end());
    const Bytes& input = seed % 2 ? framed : garbage;
    for (SecureChannel* ch : {&fresh_resp, &fresh_init, &p.b}) {
      size_t pos = 0;
      while (pos < input.size() && !ch->HasFailed()) {
        const size_t n = 1 + rng() % std::min<size_t>(input.size() - pos, 700);
        (void)ch->ReceivedBytes(ByteView(input).Sub(pos, n));
        pos += n;
      }
      CHECK(Drain(*ch).empty());
      CHECK_FALSE((ch != &p.b && ch->IsEstablished()));
    }
  }
}

// ---------------------------------------------------------------- raw peer

// An authenticated responder that speaks the documented wire format by hand
// from the Noise objects, so tests can send records a SecureChannel never
// would.
struct RawResponder {
  SiteIdentity id = NewIdentity();
  noise::KeyPair static_key;
  std::optional<noise::HandshakeState> hs;
  std::optional<noise::CipherState> send;
  std::optional<noise::CipherState> receive;

  explicit RawResponder(const std::string& consortium) {
    Result<noise::KeyPair> s = noise::KeyPair::Generate();
    REQUIRE(s.ok());
    static_key = *s;
    noise::HandshakeConfig config;
    config.role = noise::Role::kResponder;
    config.prologue = ChannelPrologue(kChannelProtocolVersion, consortium);
    config.local_static = static_key;
    Result<noise::HandshakeState> created = noise::HandshakeState::Create(std::move(config));
    REQUIRE(created.ok());
    hs.emplace(std::move(created).value());
  }

  // Plays the handshake against `a`. `corrupt_proof` signs the wrong hash.
  void Handshake(SecureChannel& a, bool corrupt_proof = false) {
    std::vector<Bytes> frames = TakeFrames(a);
    REQUIRE(frames.size() == 1);
    Result<Bytes> p1 = hs->ReadMessage(frames[0]);
    REQUIRE(p1.ok());
    CHECK(p1->empty());
    Bytes h = hs->handshake_hash().view().ToBytes();
    if (corrupt_proof) h[0] ^= 1;
    const Ed25519Signature sig = id.Sign(IdentityProofMessage('R', static_key.public_key, h));
    Bytes proof(id.public_key().begin(), id.public_key().end());
    proof.insert(proof.end(), sig.begin(), sig.end());
    Result<Bytes> m2 = hs->WriteMessage(proof);
    REQUIRE(m2.ok());
    (void)a.ReceivedBytes(Frame(*m2));
    if (a.HasFailed()) return;
    frames = TakeFrames(a);
    REQUIRE(frames.size() == 1);
    const Bytes h2 = hs->handshake_hash().view().ToBytes();
    Result<Bytes> p3 = hs->ReadMessage(frames[0]);
    REQUIRE(p3.ok());
    // The initiator's proof, checked from the outside against the format.
    REQUIRE(p3->size() == kIdentityProofLen);
    Ed25519PublicKey key{};
    Ed25519Signature their_sig{};
    std::copy(p3->begin(), p3->begin() + 32, key.begin());
    std::copy(p3->begin() + 32, p3->end(), their_sig.begin());
    REQUIRE(hs->remote_static().has_value());
    CHECK(VerifySignature(key, IdentityProofMessage('I', *hs->remote_static(), h2), their_sig));
    Result<noise::TransportCiphers> ciphers = hs->Split();
    REQUIRE(ciphers.ok());
    send = std::move(ciphers->send);
    receive = std::move(ciphers->receive);
  }

  Bytes Record(uint8_t flags, std::optional<uint64_t> total, ByteView chunk) {
    Bytes r = {flags};
    if (total) {
      for (int i = 7; i >= 0; --i) r.push_back(static_cast<uint8_t>(*total >> (8 * i)));
    }
    r.insert(r.end(), chunk.begin(), chunk.end());
    Result<Bytes> c = send->EncryptWithAd(ByteView(), r);
    REQUIRE(c.ok());
    return Frame(*c);
  }
};

struct RawSetup {
  SecureChannelOptions options = Options();
  RawResponder raw{options.consortium_id};
  SiteIdentity id_a = NewIdentity();
  std::optional<SecureChannel> a;

  explicit RawSetup(uint64_t cap = uint64_t{1} << 20, bool corrupt_proof = false) {
    options.max_message_bytes = cap;
    a.emplace(MustCreate(ChannelRole::kInitiator, id_a, Pin({raw.id.public_key()}), options));
    raw.Handshake(*a, corrupt_proof);
  }
};

TEST_CASE("channel: a declared size over the cap is refused before allocation") {
  RawSetup s;
  REQUIRE(s.a->IsEstablished());
  const Bytes chunk = AsBytes("abc").ToBytes();
  const Status st = s.a->ReceivedBytes(s.raw.Record(kRecordFirst, uint64_t{1} << 40, chunk));
  CHECK(st.code() == StatusCode::kCorruption);
  CHECK(st.message().find("1099511627776 bytes, over the cap of 1048576") != std::string::npos);
  CHECK(s.a->HasFailed());
  CHECK(Drain(*s.a).empty());
}

TEST_CASE("channel: the cap itself is allowed, one byte more is not") {
  RawSetup ok;
  REQUIRE(
      ok.a->ReceivedBytes(ok.raw.Record(kRecordFirst, uint64_t{1} << 20, Pattern(1000, 1))).ok());
  CHECK(ok.a->HasPartialInput());
  RawSetup over;
  CHECK(
      over.a
          ->ReceivedBytes(over.raw.Record(kRecordFirst, (uint64_t{1} << 20) + 1, Pattern(1000, 1)))
          .code() == StatusCode::kCorruption);
}

TEST_CASE("channel: malformed records close the session") {
  const Bytes chunk = AsBytes("abc").ToBytes();
  struct Case {
    const char* what;
    std::vector<std::pair<uint8_t, std::optional<uint64_t>>> records;  // each with `chunk`
    const char* reason;
  };
  const std::vector<Case> cases = {
      {"unknown flag", {{0x04 | kRecordFirst, 3}}, "unknown flags"},
      {"continuation first", {{0, std::nullopt}}, "continuation record without a message"},
      {"chunk beyond total", {{kRecordFirst, 2}}, "overruns"},
      {"second first record",
       {{kRecordFirst, 10}, {kRecordFirst, 10}},
       "before the previous one ended"},
      {"continuation overrun", {{kRecordFirst, 5}, {0, std::nullopt}}, "overruns"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    RawSetup s;
    Status st;
    for (const auto& [flags, total] : c.records)
      st = s.a->ReceivedBytes(s.raw.Record(flags, total, chunk));
    CHECK(st.code() == StatusCode::kCorruption);
    CHECK(st.message().find(c.reason) != std::string::npos);
    CHECK(Drain(*s.a).empty());
  }
  SUBCASE("empty continuation") {
    RawSetup s;
    REQUIRE(s.a->ReceivedBytes(s.raw.Record(kRecordFirst, 5, chunk)).ok());
    CHECK(s.a->ReceivedBytes(s.raw.Record(0, std::nullopt, ByteView())).code() ==
          StatusCode::kCorruption);
  }
  SUBCASE("the raw peer's well-formed records are accepted (control)") {
    RawSetup s;
    REQUIRE(s.a->ReceivedBytes(s.raw.Record(kRecordFirst, 6, chunk)).ok());
    REQUIRE(s.a->ReceivedBytes(s.raw.Record(0, std::nullopt, chunk)).ok());
    REQUIRE(s.a->ReceivedBytes(s.raw.Record(kRecordFirst, 0, ByteView())).ok());
    const std::vector<Bytes> got = Drain(*s.a);
    REQUIRE(got.size() == 2);
    CHECK(got[0] == AsBytes("abcabc").ToBytes());
    CHECK(got[1].empty());
  }
}

TEST_CASE("channel: an identity proof over the wrong handshake hash is refused") {
  RawSetup s(uint64_t{1} << 20, /*corrupt_proof=*/true);
  CHECK(s.a->HasFailed());
  CHECK(s.a->status().message().find("identity signature does not verify") != std::string::npos);
}

TEST_CASE("channel: a marked record really rekeys the sender's cipher") {
  // The channel is the initiator here; it sends, the raw peer decrypts.
  SecureChannelOptions o = Options();
  o.rekey_after_records = 2;
  RawResponder raw(o.consortium_id);
  const SiteIdentity id = NewIdentity();
  SecureChannel a = MustCreate(ChannelRole::kInitiator, id, Pin({raw.id.public_key()}), o);
  raw.Handshake(a);
  REQUIRE(a.IsEstablished());
  for (const char* m : {"one", "two", "three"}) REQUIRE(a.Send(AsBytes(m).ToBytes()).ok());
  const std::vector<Bytes> frames = TakeFrames(a);
  REQUIRE(frames.size() == 3);
  Result<Bytes> r1 = raw.receive->DecryptWithAd(ByteView(), frames[0]);
  REQUIRE(r1.ok());
  CHECK((*r1)[0] == kRecordFirst);
  Result<Bytes> r2 = raw.receive->DecryptWithAd(ByteView(), frames[1]);
  REQUIRE(r2.ok());
  CHECK((*r2)[0] == (kRecordFirst | kRecordRekey));
  noise::CipherState not_rekeyed = *raw.receive;
  CHECK_FALSE(not_rekeyed.DecryptWithAd(ByteView(), frames[2]).ok());
  REQUIRE(raw.receive->Rekey().ok());
  Result<Bytes> r3 = raw.receive->DecryptWithAd(ByteView(), frames[2]);
  REQUIRE(r3.ok());
  CHECK(Bytes(r3->begin() + kFirstRecordHeaderLen, r3->end()) == AsBytes("three").ToBytes());
}

}  // namespace
}  // namespace dpnode::crypto

namespace dpnode::crypto {
namespace {

TEST_CASE("channel: tiny encrypt-ahead windows and shared sends give the same messages") {
  for (size_t window : {size_t{1}, size_t{1000}, size_t{70000}}) {
    CAPTURE(window);
    SecureChannelOptions o = Options();
    o.encrypt_ahead_bytes = window;
    o.rekey_after_records = 5;  // rekeys land inside lazily encrypted messages
    std::mt19937_64 rng(window);
    Pair p(o, o);
    Wire ab{&rng}, ba{&rng};
    Pump(p.a, p.b, ab, ba);
    std::vector<Bytes> sent;
    for (size_t n : {size_t{0}, size_t{200000}, size_t{3}, size_t{1 << 20}}) {
      sent.push_back(Pattern(n, n + window));
      if (sent.size() % 2 == 0) {
        REQUIRE(p.a.Send(std::make_shared<const Bytes>(sent.back())).ok());
      } else {
        REQUIRE(p.a.Send(sent.back()).ok());
      }
      // What is not yet encrypted still counts against the send buffer.
      CHECK(p.a.pending_send_bytes() >= sent.back().size());
    }
    Pump(p.a, p.b, ab, ba);
    REQUIRE_MESSAGE(p.b.status().ok(), p.b.status().ToString());
    CHECK(Drain(p.b) == sent);
    CHECK(p.a.pending_send_bytes() == 0);
    CHECK(p.a.rekeys_sent() > 0);
    CHECK(p.b.rekeys_received() == p.a.rekeys_sent());
  }
}

}  // namespace
}  // namespace dpnode::crypto
