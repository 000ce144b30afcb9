// Fuzz target: the secure channel's framer and record layer, fed by a hostile
// peer. Input layout (docs/fuzzing.md):
//   byte 0, mode (low 2 bits):
//     0, 1  raw: the rest of the input goes straight to a fresh responder (0)
//           or initiator (1), in chunks of byte 1 bytes (0: all at once).
//           Nothing unauthenticated may ever establish a session.
//     2     established: the harness completes a real XX handshake with a
//           responder (playing the initiator with the raw Noise API and the
//           fixed test keys), then runs ops until the input ends:
//             op%6 == 0  M  well-formed message: u16 len (bit 15: a pattern of
//                           len&0x7fff bytes from a u8 seed; else len%(cap+1)
//                           literal bytes), u8 chunk size (0: maximal), u8
//                           mask of records (first 8) that carry the rekey flag
//             op%6 == 1  R  a raw record: u8 len, then that plaintext,
//                           encrypted with the right key and nonce
//             op%6 == 2  T  raw bytes on the wire: u8 len, bytes
//             op%6 == 3  F  flip bit u8%8 of pending wire byte u16
//             op%6 == 4  D  deliver the next u16 pending wire bytes in one
//                           ReceivedBytes call (the fuzzer's byte split)
//             op%6 == 5  E  EndOfStream now
//           then everything still pending is delivered.
//     3     proof: the harness plays the honest peer of a fresh initiator
//           (byte 1 bit 0 set) or responder, but proves an identity chosen by
//           byte 2 (bit 0: an unpinned key, bit 1: the wrong role tag) and XORs
//           its 96-byte proof with up to 96 input bytes. The session must
//           establish exactly when the proof is untouched, correctly tagged
//           and by the pinned key; an unpinned key is kFailedPrecondition,
//           anything else kCorruption.
// Oracles (abort on violation), besides ASan/UBSan:
//   - while only M ops ran, every message arrives intact and in order, and
//     the first over-cap message fails the session with kCorruption;
//   - no message over the cap (4096 bytes) is ever delivered; the framer
//     buffers at most one frame and one capped message, so libFuzzer's
//     -malloc_limit_mb (scripts/fuzz.sh) catches any allocation sized by a
//     declared length;
//   - once failed, the session stays failed with the same status, delivers
//     nothing and sends nothing.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "crypto/noise_handshake.h"
#include "crypto/secure_channel.h"
#include "tests/fuzz/channel_fixture.h"
#include "tests/fuzz/fuzz_util.h"

namespace dpnode::fuzz {
namespace {

using crypto::ChannelRole;
using crypto::SecureChannel;
using crypto::SecureChannelOptions;

constexpr uint64_t kCap = 4096;  // max_message_bytes: small, so over-cap inputs are cheap

enum Op : uint8_t { kMessage = 0, kRawRecord, kRawBytes, kFlip, kDeliver, kEnd, kOpCount };

SecureChannelOptions Options() {
  SecureChannelOptions options;
  options.consortium_id = kFuzzConsortium;
  options.max_message_bytes = kCap;
  options.max_send_buffer_bytes = size_t{1} << 16;
  return options;
}

bool SameStatus(const Status& a, const Status& b) {
  return a.code() == b.code() && a.message() == b.message();
}

void AppendFrame(ByteView body, Bytes* wire) {
  FUZZ_CHECK(body.size() <= 0xffff, "frame body of %zu bytes", body.size());
  wire->push_back(static_cast<uint8_t>(body.size() >> 8));
  wire->push_back(static_cast<uint8_t>(body.size()));
  wire->insert(wire->end(), body.begin(), body.end());
}

void PutU64(uint64_t v, Bytes* out) {
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<uint8_t>(v >> (8 * i)));
}

// A channel under attack, and the invariants checked after every call on it.
class Target {
 public:
  explicit Target(SecureChannel channel) : channel_(std::move(channel)) {}

  SecureChannel& channel() { return channel_; }
  std::vector<Bytes>& delivered() { return delivered_; }

  // One ReceivedBytes call, then every message it completed is drained.
  void Feed(ByteView bytes) {
    After(channel_.ReceivedBytes(bytes));
    while (std::optional<Bytes> m = channel_.NextMessage()) {
      FUZZ_CHECK(!channel_.HasFailed(), "a failed session delivered a message");
      FUZZ_CHECK(m->size() <= kCap, "delivered a message of %zu bytes, cap %llu", m->size(),
                 static_cast<unsigned long long>(kCap));
      delivered_.push_back(std::move(*m));
    }
  }

  void EndOfStream() { After(channel_.EndOfStream()); }

  // A failed session must stay exactly as it failed.
  void CheckFailedForGood() {
    if (!failure_) return;
    const Bytes probe{0, 17, 1};
    After(channel_.ReceivedBytes(probe));
    After(channel_.Send(probe));
    After(channel_.EndOfStream());
    After(channel_.CheckDeadline(kFixedNow));
    FUZZ_CHECK(!channel_.IsEstablished(), "a failed session reports established");
  }

  const std::optional<Status>& failure() const { return failure_; }

 private:
  void After(const Status& returned) {
    if (failure_) {
      FUZZ_CHECK(channel_.HasFailed(), "a failed session came back");
      FUZZ_CHECK(SameStatus(returned, *failure_), "status changed after failure: '%s' then '%s'",
                 failure_->ToString().c_str(), returned.ToString().c_str());
      FUZZ_CHECK(!channel_.NextMessage().has_value(), "a failed session delivered a message");
      FUZZ_CHECK(channel_.GetBytesToSend().empty(), "a failed session has bytes to send");
      FUZZ_CHECK(channel_.pending_send_bytes() == 0, "a failed session has output pending");
    } else if (channel_.HasFailed()) {
      FUZZ_CHECK(!returned.ok(), "session failed but the call returned OK");
      FUZZ_CHECK(SameStatus(returned, channel_.status()), "returned %s, status() is %s",
                 returned.ToString().c_str(), channel_.status().ToString().c_str());
      failure_ = returned;
      FUZZ_CHECK(channel_.GetBytesToSend().empty(), "a failed session has bytes to send");
    } else {
      FUZZ_CHECK(returned.ok(), "call failed (%s) but the session did not",
                 returned.ToString().c_str());
    }
  }

  SecureChannel channel_;
  std::vector<Bytes> delivered_;
  std::optional<Status> failure_;
};

void RunRaw(ChannelRole role, FuzzInput& in) {
  const crypto::SiteIdentity me = FixedIdentity(
      role == ChannelRole::kResponder ? kResponderIdentitySeed : kInitiatorIdentitySeed);
  const uint8_t my_static =
      role == ChannelRole::kResponder ? kResponderStaticSeed : kInitiatorStaticSeed;
  Result<SecureChannel> created = SecureChannel::Create(
      role, me, [](const crypto::Ed25519PublicKey&) { return true; }, Options(), kFixedNow,
      FixedKeyPair(my_static));
  FUZZ_CHECK(created.ok(), "%s", created.status().ToString().c_str());
  Target target(std::move(*created));
  const size_t chunk = in.U8();
  const Bytes stream = in.Rest();
  size_t pos = 0;
  do {
    const size_t n = chunk == 0 ? stream.size() - pos : std::min(chunk, stream.size() - pos);
    target.Feed(ByteView(stream.data() + pos, n));
    pos += n;
  } while (pos < stream.size());
  // Every peer key is "pinned" here, yet without our ephemeral's secret no
  // input can complete the handshake, let alone carry application data.
  FUZZ_CHECK(!target.channel().IsEstablished(), "raw bytes established a session");
  FUZZ_CHECK(target.delivered().empty(), "raw bytes delivered a message");
  target.EndOfStream();
  target.CheckFailedForGood();
}

// Completes the XX handshake against `responder` as its initiator, with the
// fixed test keys, and returns the initiator's sending CipherState.
crypto::noise::CipherState Handshake(Target& responder) {
  namespace noise = crypto::noise;
  const crypto::SiteIdentity me = FixedIdentity(kInitiatorIdentitySeed);
  const noise::KeyPair my_static = FixedKeyPair(kInitiatorStaticSeed);
  noise::HandshakeConfig config;
  config.role = noise::Role::kInitiator;
  config.prologue = crypto::ChannelPrologue(crypto::kChannelProtocolVersion, kFuzzConsortium);
  config.local_static = my_static;
  config.local_ephemeral = FixedKeyPair(kInitiatorEphemeralSeed);
  Result<noise::HandshakeState> hs = noise::HandshakeState::Create(std::move(config));
  FUZZ_CHECK(hs.ok(), "%s", hs.status().ToString().c_str());

  Bytes wire;
  Result<Bytes> m1 = hs->WriteMessage(ByteView());
  FUZZ_CHECK(m1.ok(), "%s", m1.status().ToString().c_str());
  AppendFrame(*m1, &wire);
  responder.Feed(wire);
  const ByteView out = responder.channel().GetBytesToSend();
  FUZZ_CHECK(out.size() > 2 && out.size() == 2 + ((size_t{out[0]} << 8) | out[1]),
             "responder wrote %zu bytes for message 2", out.size());
  Result<Bytes> proof2 = hs->ReadMessage(out.Sub(2, out.size() - 2));
  FUZZ_CHECK(proof2.ok(), "%s", proof2.status().ToString().c_str());
  const crypto::Ed25519PublicKey responder_key = FixedIdentity(kResponderIdentitySeed).public_key();
  FUZZ_CHECK(proof2->size() == crypto::kIdentityProofLen &&
                 std::equal(responder_key.begin(), responder_key.end(), proof2->begin()),
             "the responder proved a different identity");
  responder.channel().MarkBytesSent(out.size());

  const crypto::Ed25519Signature sig =
      me.Sign(crypto::IdentityProofMessage('I', my_static.public_key, hs->handshake_hash().view()));
  Bytes proof3(me.public_key().begin(), me.public_key().end());
  proof3.insert(proof3.end(), sig.begin(), sig.end());
  Result<Bytes> m3 = hs->WriteMessage(proof3);
  FUZZ_CHECK(m3.ok(), "%s", m3.status().ToString().c_str());
  wire.clear();
  AppendFrame(*m3, &wire);
  responder.Feed(wire);
  FUZZ_CHECK(responder.channel().IsEstablished(), "handshake with the fixed keys failed: %s",
             responder.channel().status().ToString().c_str());
  Result<noise::TransportCiphers> ciphers = hs->Split();
  FUZZ_CHECK(ciphers.ok() && ciphers->send.has_value(), "Split after message 3 failed");
  return std::move(*ciphers->send);
}

void RunEstablished(FuzzInput& in) {
  const crypto::Ed25519PublicKey initiator_key = FixedIdentity(kInitiatorIdentitySeed).public_key();
  Result<SecureChannel> created = SecureChannel::Create(
      ChannelRole::kResponder, FixedIdentity(kResponderIdentitySeed),
      [initiator_key](const crypto::Ed25519PublicKey& k) { return k == initiator_key; }, Options(),
      kFixedNow, FixedKeyPair(kResponderStaticSeed));
  FUZZ_CHECK(created.ok(), "%s", created.status().ToString().c_str());
  Target target(std::move(*created));
  crypto::noise::CipherState send = Handshake(target);

  Bytes wire;
  size_t wire_sent = 0;
  // The oracle holds while only well-formed messages were sent.
  bool predictable = true;
  bool expect_failure = false;
  std::deque<Bytes> expected;
  size_t checked = 0;  // delivered messages already compared

  auto encrypt_record = [&](const Bytes& record) {
    Result<Bytes> ciphertext = send.EncryptWithAd(ByteView(), record);
    FUZZ_CHECK(ciphertext.ok(), "%s", ciphertext.status().ToString().c_str());
    AppendFrame(*ciphertext, &wire);
    if (!record.empty() && (record[0] & crypto::kRecordRekey)) {
      FUZZ_CHECK(send.Rekey().ok(), "Rekey of the harness cipher failed");
    }
  };
  auto compare_delivered = [&]() {
    std::vector<Bytes>& got = target.delivered();
    for (; checked < got.size(); ++checked) {
      if (!predictable) continue;
      FUZZ_CHECK(!expected.empty(), "delivered a message that was never sent (%zu bytes)",
                 got[checked].size());
      FUZZ_CHECK(got[checked] == expected.front(), "message %zu altered: %zu bytes, sent %zu",
                 checked, got[checked].size(), expected.front().size());
      expected.pop_front();
    }
  };
  auto deliver = [&](size_t n) {
    n = std::min(n, wire.size() - wire_sent);
    target.Feed(ByteView(wire.data() + wire_sent, n));
    wire_sent += n;
    compare_delivered();
  };

  while (!in.empty()) {
    switch (in.U8() % kOpCount) {
      case kMessage: {
        const uint16_t len_word = in.U16();
        Bytes data;
        if (len_word & 0x8000) {
          data = PatternBytes(len_word & 0x7fff, in.U8());
        } else {
          data = in.Take(len_word % (kCap + 1));
        }
        const size_t chunk_choice = in.U8();
        const uint8_t rekey_mask = in.U8();
        const bool over_cap = data.size() > kCap;
        if (predictable && !expect_failure) {
          if (over_cap) {
            expect_failure = true;
          } else {
            expected.push_back(data);
          }
        }
        size_t offset = 0;
        for (size_t i = 0; i == 0 || offset < data.size(); ++i) {
          Bytes record;
          size_t max_chunk;
          if (i == 0) {
            record.push_back(crypto::kRecordFirst);
            PutU64(data.size(), &record);
            max_chunk = crypto::kMaxRecordPlaintext - crypto::kFirstRecordHeaderLen;
          } else {
            record.push_back(0);
            max_chunk = crypto::kMaxRecordPlaintext - 1;
          }
          const size_t chunk = std::min(
              {chunk_choice == 0 ? max_chunk : chunk_choice, max_chunk, data.size() - offset});
          if (i < 8 && ((rekey_mask >> i) & 1)) record[0] |= crypto::kRecordRekey;
          record.insert(record.end(), data.begin() + static_cast<std::ptrdiff_t>(offset),
                        data.begin() + static_cast<std::ptrdiff_t>(offset + chunk));
          offset += chunk;
          encrypt_record(record);
          // The receiver must refuse at the first record; the rest of an
          // over-cap message would only cost time.
          if (over_cap) break;
        }
        break;
      }
      case kRawRecord:
        encrypt_record(in.Take(in.U8()));
        predictable = false;
        break;
      case kRawBytes: {
        const Bytes raw = in.Take(in.U8());
        wire.insert(wire.end(), raw.begin(), raw.end());
        predictable = false;
        break;
      }
      case kFlip: {
        const size_t at = in.U16();
        const uint8_t bit = in.U8() % 8;
        if (wire.size() > wire_sent) {
          wire[wire_sent + at % (wire.size() - wire_sent)] ^= static_cast<uint8_t>(1u << bit);
          predictable = false;
        }
        break;
      }
      case kDeliver:
        deliver(in.U16());
        break;
      case kEnd: {
        const bool partial = target.channel().HasPartialInput();
        const bool was_failed = target.channel().HasFailed();
        target.EndOfStream();
        if (!was_failed) {
          FUZZ_CHECK(target.channel().HasFailed() == partial,
                     "EndOfStream with%s partial input left the session %s", partial ? "" : "out",
                     target.channel().HasFailed() ? "failed" : "open");
        }
        if (partial) predictable = false;
        break;
      }
    }
  }
  deliver(wire.size() - wire_sent);

  if (predictable) {
    if (expect_failure) {
      FUZZ_CHECK(target.channel().HasFailed() &&
                     target.channel().status().code() == StatusCode::kCorruption,
                 "an over-cap message was not refused: %s",
                 target.channel().status().ToString().c_str());
    } else {
      FUZZ_CHECK(!target.channel().HasFailed(), "well-formed traffic failed the session: %s",
                 target.channel().status().ToString().c_str());
      FUZZ_CHECK(expected.empty(), "%zu sent messages never arrived", expected.size());
      FUZZ_CHECK(!target.channel().HasPartialInput(), "partial input after whole messages");
      target.EndOfStream();
      FUZZ_CHECK(!target.channel().HasFailed(), "EndOfStream between messages failed: %s",
                 target.channel().status().ToString().c_str());
    }
  }
  target.CheckFailedForGood();
}

// Plays the honest peer of a channel in the handshake, but with a
// fuzzer-chosen identity proof: signed by the pinned identity or another
// one, with the right or the wrong role tag, then XORed with up to 96
// fuzzer bytes. The channel must establish exactly when the proof is the
// untouched, correctly tagged one of the pinned identity.
void RunProof(FuzzInput& in) {
  namespace noise = crypto::noise;
  const bool attack_initiator = in.U8() & 1;
  const uint8_t choices = in.U8();
  const bool pinned_identity = !(choices & 1);
  const bool right_tag = !(choices & 2);
  const Bytes mask = in.Take(crypto::kIdentityProofLen);
  bool masked = false;
  for (uint8_t b : mask) masked = masked || b != 0;

  const ChannelRole victim_role =
      attack_initiator ? ChannelRole::kInitiator : ChannelRole::kResponder;
  const uint8_t victim_seed = attack_initiator ? kInitiatorIdentitySeed : kResponderIdentitySeed;
  const uint8_t peer_seed = attack_initiator ? kResponderIdentitySeed : kInitiatorIdentitySeed;
  const crypto::Ed25519PublicKey pinned = FixedIdentity(peer_seed).public_key();
  Result<SecureChannel> created = SecureChannel::Create(
      victim_role, FixedIdentity(victim_seed),
      [pinned](const crypto::Ed25519PublicKey& k) { return k == pinned; }, Options(), kFixedNow,
      FixedKeyPair(attack_initiator ? kInitiatorStaticSeed : kResponderStaticSeed));
  FUZZ_CHECK(created.ok(), "%s", created.status().ToString().c_str());
  Target victim(std::move(*created));

  const crypto::SiteIdentity me =
      FixedIdentity(pinned_identity ? peer_seed : kStrangerIdentitySeed);
  const noise::KeyPair my_static =
      FixedKeyPair(attack_initiator ? kResponderStaticSeed : kInitiatorStaticSeed);
  noise::HandshakeConfig config;
  config.role = attack_initiator ? noise::Role::kResponder : noise::Role::kInitiator;
  config.prologue = crypto::ChannelPrologue(crypto::kChannelProtocolVersion, kFuzzConsortium);
  config.local_static = my_static;
  config.local_ephemeral = FixedKeyPair(kInitiatorEphemeralSeed);
  Result<noise::HandshakeState> hs = noise::HandshakeState::Create(std::move(config));
  FUZZ_CHECK(hs.ok(), "%s", hs.status().ToString().c_str());

  auto read_frame_from_victim = [&victim, &hs]() {
    const ByteView out = victim.channel().GetBytesToSend();
    FUZZ_CHECK(out.size() > 2 && out.size() == 2 + ((size_t{out[0]} << 8) | out[1]),
               "the victim wrote %zu bytes for one handshake message", out.size());
    Result<Bytes> payload = hs->ReadMessage(out.Sub(2, out.size() - 2));
    FUZZ_CHECK(payload.ok(), "%s", payload.status().ToString().c_str());
    victim.channel().MarkBytesSent(out.size());
    return std::move(*payload);
  };
  Bytes wire;
  if (attack_initiator) {
    const Bytes payload1 = read_frame_from_victim();
    FUZZ_CHECK(payload1.empty(), "message 1 carried a payload");
  } else {
    Result<Bytes> m1 = hs->WriteMessage(ByteView());
    FUZZ_CHECK(m1.ok(), "%s", m1.status().ToString().c_str());
    AppendFrame(*m1, &wire);
    victim.Feed(wire);
    const Bytes proof2 = read_frame_from_victim();
    FUZZ_CHECK(proof2.size() == crypto::kIdentityProofLen, "responder proof of %zu bytes",
               proof2.size());
  }
  const char my_tag = (attack_initiator == right_tag) ? 'R' : 'I';
  const crypto::Ed25519Signature sig = me.Sign(
      crypto::IdentityProofMessage(my_tag, my_static.public_key, hs->handshake_hash().view()));
  Bytes proof(me.public_key().begin(), me.public_key().end());
  proof.insert(proof.end(), sig.begin(), sig.end());
  for (size_t i = 0; i < mask.size(); ++i) proof[i] ^= mask[i];
  Result<Bytes> m = hs->WriteMessage(proof);
  FUZZ_CHECK(m.ok(), "%s", m.status().ToString().c_str());
  wire.clear();
  AppendFrame(*m, &wire);
  victim.Feed(wire);

  const bool genuine = pinned_identity && right_tag && !masked;
  FUZZ_CHECK(victim.channel().IsEstablished() == genuine,
             "proof (pinned %d, right tag %d, altered %d) gave: %s", pinned_identity, right_tag,
             masked, victim.channel().status().ToString().c_str());
  if (genuine) {
    FUZZ_CHECK(victim.channel().peer_identity() == pinned, "established with the wrong identity");
    if (attack_initiator) {
      // The initiator answers with its own proof in message 3.
      const Bytes proof3 = read_frame_from_victim();
      FUZZ_CHECK(proof3.size() == crypto::kIdentityProofLen, "initiator proof of %zu bytes",
                 proof3.size());
    }
  } else {
    FUZZ_CHECK(victim.channel().HasFailed(), "a refused proof left the session open");
    // Only a valid signature by an unpinned key is kFailedPrecondition.
    const StatusCode expected_code = (!pinned_identity && right_tag && !masked)
                                         ? StatusCode::kFailedPrecondition
                                         : StatusCode::kCorruption;
    FUZZ_CHECK(victim.channel().status().code() == expected_code, "refused with %s",
               victim.channel().status().ToString().c_str());
  }
  victim.CheckFailedForGood();
}

}  // namespace

std::vector<Seed> SeedInputs() {
  std::vector<Seed> seeds;
  // Raw: a well-formed message 1 (a real X25519 key) to a responder, whole
  // and byte by byte; garbage of message 2's size to an initiator; an
  // oversized header.
  const crypto::noise::KeyPair e = FixedKeyPair(kInitiatorEphemeralSeed);
  Bytes m1;
  AppendFrame(e.public_key, &m1);
  seeds.push_back({"raw_responder_m1", FuzzInputWriter().U8(0).U8(0).Append(m1).bytes()});
  seeds.push_back({"raw_responder_m1_bytewise", FuzzInputWriter().U8(0).U8(1).Append(m1).bytes()});
  Bytes m2_sized;
  AppendFrame(PatternBytes(32 + 48 + 112, 7), &m2_sized);
  seeds.push_back(
      {"raw_initiator_m2_garbage", FuzzInputWriter().U8(1).U8(5).Append(m2_sized).bytes()});
  seeds.push_back(
      {"raw_responder_huge_header", FuzzInputWriter().U8(0).U8(0).U16(0xffff).U8(1).bytes()});

  // Established: ops after a real handshake.
  const Bytes hello = {'h', 'e', 'l', 'l', 'o'};
  auto message = [](FuzzInputWriter& w, const Bytes& data, uint8_t chunk, uint8_t rekey_mask) {
    w.U8(kMessage).U16(static_cast<uint16_t>(data.size())).Append(data).U8(chunk).U8(rekey_mask);
  };
  {
    FuzzInputWriter w;
    w.U8(2);
    message(w, hello, 0, 0);
    w.U8(kDeliver).U16(0xffff);
    seeds.push_back({"est_one_message", w.bytes()});
  }
  {
    FuzzInputWriter w;
    w.U8(2);
    message(w, PatternBytes(300, 3), 7, 0x05);
    message(w, Bytes(), 0, 0x01);
    message(w, PatternBytes(kCap, 4), 0, 0x02);
    w.U8(kDeliver).U16(3).U8(kDeliver).U16(50).U8(kDeliver).U16(0xffff).U8(kEnd);
    seeds.push_back({"est_split_rekey", w.bytes()});
  }
  {
    FuzzInputWriter w;
    w.U8(2);
    message(w, hello, 0, 0);
    w.U8(kMessage).U16(0x8000 | (kCap + 1)).U8(9).U8(0).U8(0);
    w.U8(kDeliver).U16(0xffff);
    seeds.push_back({"est_over_cap", w.bytes()});
  }
  {
    // A first record declaring 2^64-1 bytes, unknown flags, a continuation
    // without a message, an empty record.
    Bytes huge{crypto::kRecordFirst};
    PutU64(~uint64_t{0}, &huge);
    huge.push_back(0xaa);
    for (const Bytes& record : {huge, Bytes{0x80, 1, 2}, Bytes{0x00, 1, 2}, Bytes{}}) {
      FuzzInputWriter w;
      w.U8(2).U8(kRawRecord).U8(static_cast<uint8_t>(record.size())).Append(record);
      w.U8(kDeliver).U16(0xffff);
      seeds.push_back({"est_raw_record_" + std::to_string(seeds.size()), w.bytes()});
    }
  }
  {
    FuzzInputWriter w;
    w.U8(2);
    message(w, hello, 0, 0);
    w.U8(kFlip).U16(10).U8(3).U8(kDeliver).U16(0xffff);
    seeds.push_back({"est_flip", w.bytes()});
  }
  {
    FuzzInputWriter w;
    w.U8(2);
    message(w, hello, 0, 0);
    w.U8(kDeliver).U16(4).U8(kEnd).U8(kRawBytes).U8(3).U8(0).U8(1).U8(2).U8(kDeliver).U16(9);
    seeds.push_back({"est_eof_inside_frame", w.bytes()});
  }
  // Proofs: genuine, unpinned, wrong tag, one flipped bit; against both roles.
  for (uint8_t victim = 0; victim < 2; ++victim) {
    for (uint8_t choices = 0; choices < 3; ++choices) {
      seeds.push_back({"proof_" + std::to_string(victim) + "_" + std::to_string(choices),
                       FuzzInputWriter().U8(3).U8(victim).U8(choices).bytes()});
    }
    Bytes mask(crypto::kIdentityProofLen, 0);
    mask[40] = 0x08;
    seeds.push_back({"proof_" + std::to_string(victim) + "_flipped",
                     FuzzInputWriter().U8(3).U8(victim).U8(0).Append(mask).bytes()});
  }
  return seeds;
}

}  // namespace dpnode::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  dpnode::fuzz::FuzzInput in(data, size);
  const uint8_t mode = in.U8() & 3;
  if (mode == 0) {
    dpnode::fuzz::RunRaw(dpnode::crypto::ChannelRole::kResponder, in);
  } else if (mode == 1) {
    dpnode::fuzz::RunRaw(dpnode::crypto::ChannelRole::kInitiator, in);
  } else if (mode == 2) {
    dpnode::fuzz::RunEstablished(in);
  } else {
    dpnode::fuzz::RunProof(in);
  }
  return 0;
}
