// Fuzz target: two honest secure channels (initiator A, responder B, fixed
// test identities and static keys) talking through fuzzer-chosen byte
// splits, each sending fuzzer-chosen messages, before and after the
// handshake completes, with fuzzer-chosen rekey budgets. Input layout
// (docs/fuzzing.md):
//   u8  rekey_after_records = 1 + u8 % 16
//   u16 rekey_after_bytes   = 64 + 64 * u16
//   u8  send buffer: bit 0 set = exactly one max-size message (so "buffer
//       full" happens), clear = four of them
//   then ops until the input ends:
//     op%7 == 0/1  A/B sends a literal message: u8 len, bytes
//     op%7 == 2/3  A/B sends a pattern message: u24 len % (cap + cap/16 + 1)
//                  (so sometimes over the cap), u8 pattern seed
//     op%7 == 4/5  move u24 bytes A->B / B->A in one ReceivedBytes call
//                  (0: everything pending)
//     op%7 == 6    CheckDeadline at the fixed time
//   then everything pending is moved both ways until both are idle.
// Oracles (abort on violation), besides ASan/UBSan: honest traffic never
// fails a session; every accepted Send arrives intact, exactly once and in
// order; over-cap sends are refused with kInvalidArgument and a full buffer
// with kUnavailable, neither closing the session; at the end both sides are
// established with the same session hash, agree on each other's identity
// and on rekey counts, and hold no partial input.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "crypto/secure_channel.h"
#include "tests/fuzz/channel_fixture.h"
#include "tests/fuzz/fuzz_util.h"

namespace dpnode::fuzz {
namespace {

using crypto::ChannelRole;
using crypto::SecureChannel;
using crypto::SecureChannelOptions;

constexpr uint64_t kCap = uint64_t{1} << 18;  // 256 KiB: multi-record messages stay cheap

enum Op : uint8_t {
  kSendLiteralA = 0,
  kSendLiteralB,
  kSendPatternA,
  kSendPatternB,
  kMoveAtoB,
  kMoveBtoA,
  kCheckDeadline,
  kOpCount
};

struct Side {
  const char* name;
  SecureChannel channel;
  std::deque<Bytes> expected_by_peer;  // accepted by Send, not yet received by the peer
  uint64_t max_send_buffer = 0;
};

void Send(Side& side, const Bytes& message) {
  const size_t pending = side.channel.pending_send_bytes();
  const Status s = side.channel.Send(message);
  FUZZ_CHECK(!side.channel.HasFailed(), "Send failed %s's session: %s", side.name,
             s.ToString().c_str());
  if (message.size() > kCap) {
    FUZZ_CHECK(s.code() == StatusCode::kInvalidArgument, "over-cap Send of %zu bytes: %s",
               message.size(), s.ToString().c_str());
    return;
  }
  if (s.ok()) {
    side.expected_by_peer.push_back(message);
    return;
  }
  FUZZ_CHECK(s.code() == StatusCode::kUnavailable, "Send: %s", s.ToString().c_str());
  FUZZ_CHECK(pending + SecureChannel::EncodedSize(message.size()) > side.max_send_buffer,
             "Send refused with room in the buffer: %zu pending, %zu-byte message", pending,
             message.size());
}

// Moves up to `n` bytes (0: all) from `from` to `to` in one call, then checks
// every message `to` completed against what `from` sent.
void Move(Side& from, Side& to, size_t n) {
  const ByteView out = from.channel.GetBytesToSend();
  const size_t k = n == 0 ? out.size() : std::min(n, out.size());
  const Status s = to.channel.ReceivedBytes(out.Sub(0, k));
  FUZZ_CHECK(s.ok(), "%s failed on honest bytes from %s: %s", to.name, from.name,
             s.ToString().c_str());
  from.channel.MarkBytesSent(k);
  while (std::optional<Bytes> m = to.channel.NextMessage()) {
    FUZZ_CHECK(!from.expected_by_peer.empty(), "%s received a message %s never sent", to.name,
               from.name);
    FUZZ_CHECK(*m == from.expected_by_peer.front(),
               "%s received an altered or reordered message: %zu bytes, %s sent %zu", to.name,
               m->size(), from.name, from.expected_by_peer.front().size());
    from.expected_by_peer.pop_front();
  }
}

}  // namespace

std::vector<Seed> SeedInputs() {
  std::vector<Seed> seeds;
  const Bytes hello = {'h', 'i'};
  {
    // Both send before the handshake; everything moves at the end.
    FuzzInputWriter w;
    w.U8(3).U16(100).U8(0);
    w.U8(kSendLiteralA).U8(2).Append(hello).U8(kSendLiteralB).U8(2).Append(hello);
    seeds.push_back({"queued_both_ways", w.bytes()});
  }
  {
    // Handshake byte by byte, then multi-record messages both ways, moved in
    // odd pieces, with a rekey after every record.
    FuzzInputWriter w;
    w.U8(0).U16(0).U8(0);
    for (int i = 0; i < 40; ++i) w.U8(kMoveAtoB).U24(1).U8(kMoveBtoA).U24(1);
    w.U8(kSendPatternA).U24(200000).U8(1).U8(kSendPatternB).U24(70000).U8(2);
    w.U8(kMoveAtoB).U24(65537).U8(kMoveBtoA).U24(3).U8(kMoveAtoB).U24(0);
    w.U8(kCheckDeadline);
    seeds.push_back({"bytewise_handshake_big_messages", w.bytes()});
  }
  {
    // Over the cap, and a buffer that fills up.
    FuzzInputWriter w;
    w.U8(15).U16(0xffff).U8(1);
    w.U8(kSendPatternA).U24(static_cast<uint32_t>(kCap + 1)).U8(3);
    w.U8(kSendPatternA).U24(static_cast<uint32_t>(kCap)).U8(4);
    w.U8(kSendLiteralA).U8(1).U8(9);
    w.U8(kMoveAtoB).U24(0).U8(kMoveBtoA).U24(0).U8(kMoveAtoB).U24(0);
    w.U8(kSendLiteralA).U8(1).U8(9);
    seeds.push_back({"over_cap_and_full_buffer", w.bytes()});
  }
  {
    FuzzInputWriter w;
    w.U8(1).U16(1).U8(0);
    for (int i = 0; i < 20; ++i) {
      w.U8(kSendLiteralA).U8(0).U8(kSendLiteralB).U8(3).U8(1).U8(2).U8(3);
      w.U8(kMoveAtoB).U24(7 + i).U8(kMoveBtoA).U24(11 + i);
    }
    seeds.push_back({"many_small_interleaved", w.bytes()});
  }
  return seeds;
}

}  // namespace dpnode::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dpnode;        // NOLINT
  using namespace dpnode::fuzz;  // NOLINT
  FuzzInput in(data, size);
  SecureChannelOptions options;
  options.consortium_id = kFuzzConsortium;
  options.max_message_bytes = kCap;
  options.rekey_after_records = 1 + in.U8() % 16;
  options.rekey_after_bytes = 64 + 64 * uint64_t{in.U16()};
  const uint64_t one_message = SecureChannel::EncodedSize(kCap);
  options.max_send_buffer_bytes =
      static_cast<size_t>((in.U8() & 1) ? one_message : 4 * one_message);

  const crypto::SiteIdentity id_a = FixedIdentity(kInitiatorIdentitySeed);
  const crypto::SiteIdentity id_b = FixedIdentity(kResponderIdentitySeed);
  const crypto::Ed25519PublicKey key_a = id_a.public_key();
  const crypto::Ed25519PublicKey key_b = id_b.public_key();
  Result<SecureChannel> a = SecureChannel::Create(
      ChannelRole::kInitiator, id_a,
      [key_b](const crypto::Ed25519PublicKey& k) { return k == key_b; }, options, kFixedNow,
      FixedKeyPair(kInitiatorStaticSeed));
  Result<SecureChannel> b = SecureChannel::Create(
      ChannelRole::kResponder, id_b,
      [key_a](const crypto::Ed25519PublicKey& k) { return k == key_a; }, options, kFixedNow,
      FixedKeyPair(kResponderStaticSeed));
  FUZZ_CHECK(a.ok() && b.ok(), "Create failed");
  Side side_a{"A", std::move(*a), {}, options.max_send_buffer_bytes};
  Side side_b{"B", std::move(*b), {}, options.max_send_buffer_bytes};

  while (!in.empty()) {
    switch (in.U8() % kOpCount) {
      case kSendLiteralA:
        Send(side_a, in.Take(in.U8()));
        break;
      case kSendLiteralB:
        Send(side_b, in.Take(in.U8()));
        break;
      case kSendPatternA: {
        const size_t len = in.U24() % (kCap + kCap / 16 + 1);
        Send(side_a, PatternBytes(len, in.U8()));
        break;
      }
      case kSendPatternB: {
        const size_t len = in.U24() % (kCap + kCap / 16 + 1);
        Send(side_b, PatternBytes(len, in.U8()));
        break;
      }
      case kMoveAtoB:
        Move(side_a, side_b, in.U24());
        break;
      case kMoveBtoA:
        Move(side_b, side_a, in.U24());
        break;
      case kCheckDeadline:
        FUZZ_CHECK(side_a.channel.CheckDeadline(kFixedNow).ok() &&
                       side_b.channel.CheckDeadline(kFixedNow).ok(),
                   "CheckDeadline before the deadline failed a session");
        break;
    }
  }
  // Drain: the handshake needs at most three moves, and each queued message
  // is already encrypted once both sides are established.
  for (int round = 0; round < 4; ++round) {
    Move(side_a, side_b, 0);
    Move(side_b, side_a, 0);
  }
  for (Side* s : {&side_a, &side_b}) {
    FUZZ_CHECK(s->channel.IsEstablished(), "%s not established: %s", s->name,
               s->channel.status().ToString().c_str());
    FUZZ_CHECK(s->channel.pending_send_bytes() == 0, "%s still has %zu bytes to send", s->name,
               s->channel.pending_send_bytes());
    FUZZ_CHECK(s->expected_by_peer.empty(), "%zu messages from %s never arrived",
               s->expected_by_peer.size(), s->name);
    FUZZ_CHECK(!s->channel.HasPartialInput(), "%s has partial input when idle", s->name);
    FUZZ_CHECK(s->channel.EndOfStream().ok(), "%s refused a clean end of stream", s->name);
  }
  FUZZ_CHECK(side_a.channel.session_hash() == side_b.channel.session_hash(),
             "the two ends disagree on the session hash");
  FUZZ_CHECK(side_a.channel.peer_identity() == key_b && side_b.channel.peer_identity() == key_a,
             "an end learned the wrong peer identity");
  FUZZ_CHECK(side_a.channel.rekeys_sent() == side_b.channel.rekeys_received() &&
                 side_b.channel.rekeys_sent() == side_a.channel.rekeys_received(),
             "rekey counts disagree");
  return 0;
}
