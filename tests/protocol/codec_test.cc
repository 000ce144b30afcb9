// Encode/Decode: round trips, framing refusals, per-type limits and the
// hostile frames (aliasing, zero-sized elements) the limits exist for.
#include "protocol/codec.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "protocol/dpnode.capnp.h"
#include "tests/protocol/raw_frame.h"
#include "tests/protocol/test_messages.h"

namespace dpnode::protocol {
namespace {

using namespace testing;  // NOLINT: test helpers

Bytes MustEncode(const Message& m, const Limits& limits = {}) {
  Result<Bytes> frame = Encode(m, limits);
  REQUIRE_MESSAGE(frame.ok(), frame.status().ToString());
  return std::move(frame).value();
}

void CheckRoundTrip(const Message& m, const Limits& limits = {}) {
  Bytes frame = MustEncode(m, limits);
  CHECK(frame.size() % 8 == 0);
  CHECK(frame.size() <= LimitsFor(TypeOf(m), limits).max_frame_bytes);
  Result<Message> back = Decode(frame, limits);
  REQUIRE_MESSAGE(back.ok(), back.status().ToString());
  CHECK(SameMessage(m, *back));
}

bool Contains(const Status& s, const std::string& needle) {
  return s.message().find(needle) != std::string::npos;
}

TEST_CASE("every sample message round-trips") {
  for (const Message& m : SampleMessages()) {
    CAPTURE(MessageTypeName(TypeOf(m)));
    CheckRoundTrip(m);
  }
}

TEST_CASE("hello round-trips edge values") {
  Hello h = SampleHello();
  h.protocol_version = std::numeric_limits<uint32_t>::max();
  h.consortium_id = std::string(kMaxConsortiumIdBytes, '~');
  h.site_name = std::string(kMaxSiteNameBytes - 2, 'x') + "\xc3\xa9";  // ends in é
  h.capabilities = ~uint64_t{0};
  h.model_fingerprint = Fingerprint(0xff);
  CheckRoundTrip(h);
  h.consortium_id = "c";
  h.site_name = "\xe7\x97\x85\xe9\x99\xa2";  // 病院
  h.capabilities = 0;
  h.protocol_version = 1;
  CheckRoundTrip(h);
}

TEST_CASE("peer record round-trips edge values") {
  PeerRecord r = SamplePeerRecord();
  r.addresses.clear();
  r.sequence = 0;
  CheckRoundTrip(r);
  r.sequence = std::numeric_limits<uint64_t>::max();
  for (size_t i = 0; i < kMaxAddresses; ++i) {
    r.addresses.push_back({std::string(kMaxHostBytes, static_cast<char>('a' + i)),
                           static_cast<uint16_t>(i == 0 ? 1 : 65535)});
  }
  CheckRoundTrip(r);
  // The largest legal peer record fits its frame cap with room to spare.
  CHECK(MustEncode(r).size() <= LimitsFor(MessageType::kPeerRecord).max_frame_bytes);
}

TEST_CASE("gossip share round-trips edge values") {
  GossipShare s = SampleShare();
  s.weight = std::numeric_limits<double>::denorm_min();
  s.epsilon_spent = 0;
  s.round = std::numeric_limits<uint64_t>::max();
  s.local_steps = std::numeric_limits<uint64_t>::max();
  // rank 8, every dimension 1: one element
  s.tensors.push_back({"deep", std::vector<uint64_t>(kMaxTensorRank, 1), DType::kFloat64,
                       Float64Data({std::numeric_limits<double>::max()})});
  s.tensors.push_back({std::string(kMaxTensorNameBytes, 'n'),
                       {1, 5},
                       DType::kFloat32,
                       Float32Data({std::numeric_limits<float>::lowest(),
                                    std::numeric_limits<float>::denorm_min(), 0, -0.f, 1})});
  CheckRoundTrip(s);
  s.weight = std::numeric_limits<double>::max();
  CheckRoundTrip(s);
}

TEST_CASE("probe, ack and goodbye round-trip edge values") {
  CheckRoundTrip(Probe{0, 0});
  CheckRoundTrip(Probe{~uint64_t{0}, ~uint64_t{0}});
  CheckRoundTrip(ProbeAck{0, ~uint64_t{0}});
  for (int r = 0; r <= static_cast<int>(GoodbyeReason::kTrainingDone); ++r) {
    CheckRoundTrip(Goodbye{static_cast<GoodbyeReason>(r), ""});
  }
  std::string text;
  while (text.size() + 3 <= kMaxGoodbyeTextBytes) text += "\xe2\x80\xa6";  // …
  CheckRoundTrip(Goodbye{GoodbyeReason::kProtocolViolation, text});
}

TEST_CASE("a gossip share encodes to exactly the bytes of messageToFlatArray") {
  // Encode builds shares in place to save copies; the result must still be
  // the standard single-segment framing any capnp reader understands.
  const GossipShare s = SampleShare();
  capnp::MallocMessageBuilder builder(1 << 16);
  auto share = builder.initRoot<wire::Envelope>().initGossipShare();
  share.setRound(s.round);
  share.setWeight(s.weight);
  share.setLocalSteps(s.local_steps);
  share.setEpsilonSpent(s.epsilon_spent);
  auto tensors = share.initTensors(static_cast<unsigned>(s.tensors.size()));
  for (unsigned i = 0; i < s.tensors.size(); ++i) {
    const Tensor& t = s.tensors[i];
    tensors[i].setName(t.name);
    auto shape = tensors[i].initShape(static_cast<unsigned>(t.shape.size()));
    for (unsigned d = 0; d < t.shape.size(); ++d) shape.set(d, t.shape[d]);
    tensors[i].setDtype(t.dtype == DType::kFloat64 ? wire::DType::FLOAT64 : wire::DType::FLOAT32);
    tensors[i].setData(kj::arrayPtr(t.data.data(), t.data.size()));
  }
  REQUIRE(builder.getSegmentsForOutput().size() == 1);
  kj::Array<capnp::word> flat = capnp::messageToFlatArray(builder);
  const Bytes expected(flat.asBytes().begin(), flat.asBytes().end());
  CHECK(MustEncode(s) == expected);
}

TEST_CASE("small messages encode to exactly the bytes of messageToFlatArray") {
  const Probe p = SampleProbe();
  capnp::MallocMessageBuilder builder;
  auto probe = builder.initRoot<wire::Envelope>().initProbe();
  probe.setNonce(p.nonce);
  probe.setSequence(p.sequence);
  kj::Array<capnp::word> flat = capnp::messageToFlatArray(builder);
  CHECK(MustEncode(p) == Bytes(flat.asBytes().begin(), flat.asBytes().end()));
}

TEST_CASE("trailing bytes, partial words and empty frames are refused") {
  for (const Message& m : SampleMessages()) {
    CAPTURE(MessageTypeName(TypeOf(m)));
    Bytes frame = MustEncode(m);
    Bytes padded = frame;
    padded.insert(padded.end(), 8, 0);
    Result<Message> r = Decode(padded);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kCorruption);
    CHECK(Contains(r.status(), "8 trailing bytes"));
    for (size_t extra = 1; extra < 8; ++extra) {
      Bytes odd = frame;
      odd.insert(odd.end(), extra, 0);
      Result<Message> o = Decode(odd);
      REQUIRE_FALSE(o.ok());
      CHECK(Contains(o.status(), "8-byte words"));
    }
  }
  Result<Message> empty = Decode(ByteView());
  REQUIRE_FALSE(empty.ok());
  CHECK(empty.status().code() == StatusCode::kCorruption);
}

TEST_CASE("every truncation of a small message is refused") {
  for (const Message& m :
       {Message(SampleHello()), Message(SamplePeerRecord()), Message(SampleProbe()),
        Message(SampleGoodbye()), Message(SampleShare())}) {
    CAPTURE(MessageTypeName(TypeOf(m)));
    const Bytes frame = MustEncode(m);
    for (size_t len = 0; len < frame.size(); ++len) {
      CAPTURE(len);
      // Copy so that reading past `len` would be caught by ASan.
      const Bytes prefix(frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(len));
      Result<Message> r = Decode(prefix);
      REQUIRE_FALSE(r.ok());
      CHECK(r.status().code() == StatusCode::kCorruption);
    }
  }
}

TEST_CASE("an unaligned frame decodes through an aligned copy") {
  for (const Message& m : SampleMessages()) {
    const Bytes frame = MustEncode(m);
    Bytes shifted(frame.size() + 3);
    std::copy(frame.begin(), frame.end(), shifted.begin() + 3);
    ByteView view(shifted.data() + 3, frame.size());
    REQUIRE(reinterpret_cast<uintptr_t>(view.data()) % 8 != 0);
    Result<Message> r = Decode(view);
    REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    CHECK(SameMessage(m, *r));
  }
}

TEST_CASE("each type has its own frame limit") {
  const Limits limits;
  CHECK(LimitsFor(MessageType::kProbe).max_frame_bytes == 256);
  CHECK(LimitsFor(MessageType::kGossipShare).max_frame_bytes == limits.max_gossip_share_bytes);
  CHECK(MaxFrameBytes() == limits.max_gossip_share_bytes);
  for (size_t i = 0; i < kMessageTypeCount; ++i) {
    const TypeLimits t = LimitsFor(static_cast<MessageType>(i));
    CHECK(t.max_frame_bytes % 8 == 0);
    CHECK(t.traversal_limit_words * 8 == t.max_frame_bytes);
    CHECK(t.nesting_limit >= 2);
  }

  // A Hello whose site name is far too long is well under the gossip limit
  // but over the hello limit: refused on size before any field is read.
  Hello h = SampleHello();
  h.site_name = std::string(2500, 'x');
  Result<Bytes> big = EncodeUncheckedForTesting(h);
  REQUIRE(big.ok());
  Result<Message> r = Decode(*big);
  REQUIRE_FALSE(r.ok());
  CHECK(Contains(r.status(), "hello: frame of"));
  CHECK(Contains(r.status(), "exceeds the limit of 2048"));
  // Encode refuses it for the field before it gets to size.
  CHECK_FALSE(Encode(h).ok());

  // A Probe struct with room for fields a newer peer appended is fine while
  // it fits the probe cap, and refused beyond it.
  auto probe_frame = [](uint16_t data_words) {
    std::vector<uint64_t> seg = {StructPtr(0, 1, 1), 3 /* probe */, StructPtr(0, data_words, 0)};
    seg.push_back(11);  // nonce
    seg.push_back(12);  // sequence
    for (uint16_t i = 2; i < data_words; ++i) seg.push_back(0);
    return SingleSegmentFrame(seg);
  };
  Result<Message> newer = Decode(probe_frame(6));
  REQUIRE_MESSAGE(newer.ok(), newer.status().ToString());
  CHECK(std::get<Probe>(*newer).nonce == 11);
  CHECK(std::get<Probe>(*newer).sequence == 12);
  Result<Message> huge = Decode(probe_frame(40));
  REQUIRE_FALSE(huge.ok());
  CHECK(Contains(huge.status(), "probe: frame of 352 bytes exceeds the limit of 256"));
}

TEST_CASE("the largest valid message of each fixed-size type fits its cap") {
  Hello h = SampleHello();
  h.consortium_id = std::string(kMaxConsortiumIdBytes, 'c');
  h.site_name = std::string(kMaxSiteNameBytes, 's');
  PeerRecord r = SamplePeerRecord();
  r.addresses.assign(kMaxAddresses, Address{std::string(kMaxHostBytes, 'h'), 65535});
  const Goodbye g{GoodbyeReason::kShutdown, std::string(kMaxGoodbyeTextBytes, 'g')};
  for (const Message& m : {Message(h), Message(r), Message(Probe{~uint64_t{0}, ~uint64_t{0}}),
                           Message(ProbeAck{1, 2}), Message(g)}) {
    CAPTURE(MessageTypeName(TypeOf(m)));
    const Bytes frame = MustEncode(m);
    // Room for fields a newer revision may append: at least 1.5x.
    CHECK(frame.size() * 3 <= LimitsFor(TypeOf(m)).max_frame_bytes * 2);
    CHECK(Decode(frame).ok());
  }
}

TEST_CASE("a gossip share over the configured cap is refused both ways") {
  Limits small;
  small.max_gossip_share_bytes = 4096;
  GossipShare s = SampleShare();
  s.tensors.push_back({"big", {1024}, DType::kFloat32, Float32Data(std::vector<float>(1024, 1))});
  Result<Bytes> enc = Encode(s, small);
  REQUIRE_FALSE(enc.ok());
  CHECK(enc.status().code() == StatusCode::kInvalidArgument);
  const Bytes frame = MustEncode(s);  // fine under the default 64 MiB
  Result<Message> dec = Decode(frame, small);
  REQUIRE_FALSE(dec.ok());
  CHECK(dec.status().code() == StatusCode::kCorruption);
  CHECK(Contains(dec.status(), "gossip_share: frame of"));
  CHECK(Contains(dec.status(), "exceeds the limit of 4096"));
  CHECK(Decode(frame).ok());
}

// A PeerRecord whose address list claims `count` zero-sized elements: one
// tag word on the wire, but capnp charges a word per element it lets us
// visit. Only the traversal limit stands between this and a long loop.
Bytes ZeroSizedAddresses(uint32_t count) {
  std::vector<uint64_t> seg(13, 0);
  seg[0] = StructPtr(0, 1, 1);            // root -> Envelope at 1
  seg[1] = 1;                             // peerRecord
  seg[2] = StructPtr(0, 1, 3);            // -> PeerRecord at 3 (seq @3, ptrs @4..6)
  seg[3] = 5;                             // sequence
  seg[4] = ListPtr(Offset(4, 8), 2, 32);  // site key: 32 bytes at 8..11
  seg[5] = ListPtr(Offset(5, 7), 7, 0);   // addresses: composite, 0 words of elements
  seg[6] = 0;                             // signature: null
  seg[7] = StructPtr(static_cast<int32_t>(count), 0, 0);  // tag: count elements of 0 words
  return SingleSegmentFrame(seg);
}

TEST_CASE("a message exceeding its type's traversal limit is refused") {
  // Within the traversal limit, the count check speaks.
  Result<Message> many = Decode(ZeroSizedAddresses(17));
  REQUIRE_FALSE(many.ok());
  CHECK(Contains(many.status(), "17 addresses, at most 16"));
  // 1,000,000 elements is far beyond the peer record's 1024-word budget,
  // though the frame is 112 bytes.
  const Bytes frame = ZeroSizedAddresses(1000000);
  CHECK(frame.size() == 112);
  Result<Message> r = Decode(frame);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kCorruption);
  CHECK(Contains(r.status(), "traversal limit"));
}

// A GossipShare of `n` tensors that all point at one 4 KiB data blob, one
// name and one shape.
Bytes AliasedShare(uint32_t n) {
  const size_t list_tag = 8;
  const size_t first = 9;
  const size_t base = first + 4 * n;  // name at base, shape at base+1, data at base+2
  std::vector<uint64_t> seg(base + 2 + 512, 0);
  seg[0] = StructPtr(0, 1, 1);
  seg[1] = 2;  // gossipShare
  seg[2] = StructPtr(0, 4, 1);
  seg[3] = 1;                // round
  seg[4] = DoubleBits(1.0);  // weight
  seg[5] = 0;                // local steps
  seg[6] = DoubleBits(0.0);  // epsilon
  seg[7] = ListPtr(Offset(7, list_tag), 7, 4 * n);
  seg[list_tag] = StructPtr(static_cast<int32_t>(n), 1, 3);
  for (size_t i = 0; i < n; ++i) {
    const size_t t = first + 4 * i;
    seg[t] = 0;                                              // dtype float32
    seg[t + 1] = ListPtr(Offset(t + 1, base), 2, 2);         // "t\0"
    seg[t + 2] = ListPtr(Offset(t + 2, base + 1), 5, 1);     // shape [1024]
    seg[t + 3] = ListPtr(Offset(t + 3, base + 2), 2, 4096);  // 4096 bytes
  }
  seg[base] = 't';
  seg[base + 1] = 1024;
  return SingleSegmentFrame(seg);
}

TEST_CASE("tensors sharing one blob cannot make us copy more than the frame") {
  // Sanity: the hand-built frame is right, since one tensor decodes.
  Result<Message> one = Decode(AliasedShare(1));
  REQUIRE_MESSAGE(one.ok(), one.status().ToString());
  const auto& share = std::get<GossipShare>(*one);
  REQUIRE(share.tensors.size() == 1);
  CHECK(share.tensors[0].name == "t");
  CHECK(share.tensors[0].data.size() == 4096);

  Result<Message> r = Decode(AliasedShare(64));
  REQUIRE_FALSE(r.ok());
  CHECK(Contains(r.status(), "tensors claim more bytes than the frame holds"));
}

TEST_CASE("unknown message types and dtypes are refused, unknown goodbye reasons kept") {
  Result<Message> unknown = Decode(SingleSegmentFrame({StructPtr(0, 1, 1), 9, 0}));
  REQUIRE_FALSE(unknown.ok());
  CHECK(Contains(unknown.status(), "unknown message type 9"));

  // The aliased-share layout with one tensor and dtype 7.
  Bytes frame = AliasedShare(1);
  frame[8 * (1 + 9)] = 7;
  Result<Message> dtype = Decode(frame);
  REQUIRE_FALSE(dtype.ok());
  CHECK(Contains(dtype.status(), "gossip_share.tensors[0].dtype: unknown dtype 7"));

  // Goodbye with reason 40 from some future version.
  Result<Message> bye =
      Decode(SingleSegmentFrame({StructPtr(0, 1, 1), 5, StructPtr(0, 1, 1), 40, 0}));
  REQUIRE_MESSAGE(bye.ok(), bye.status().ToString());
  CHECK(std::get<Goodbye>(*bye).reason == GoodbyeReason::kUnspecified);
}

TEST_CASE("frames claiming too many segments are refused before parsing") {
  Bytes frame = MustEncode(SampleProbe());
  const uint32_t segments_minus_one = 100000;
  std::memcpy(frame.data(), &segments_minus_one, sizeof segments_minus_one);
  Result<Message> r = Decode(frame);
  REQUIRE_FALSE(r.ok());
  CHECK(Contains(r.status(), "segments, at most 512"));
}

TEST_CASE("a 40 MB gossip share round-trips and its timing is printed") {
  constexpr size_t kFloats = 10 * 1000 * 1000;  // 40 MB of float32
  GossipShare s;
  s.round = 3;
  s.weight = 0.25;
  std::vector<float> values(kFloats / 4);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i % 1000) * 0.001f;
  for (int t = 0; t < 4; ++t) {
    s.tensors.push_back({"layer" + std::to_string(t) + ".weight",
                         {2500, 1000},
                         DType::kFloat32,
                         Float32Data(values)});
  }
  using Clock = std::chrono::steady_clock;
  auto ms = [](Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); };
  // Best of three, so one unlucky scheduling slice on a shared machine does
  // not become the reported figure.
  double encode_ms = 1e9, decode_ms = 1e9, validate_ms = 1e9, copy_ms = 1e9;
  for (int repeat = 0; repeat < 3; ++repeat) {
    const auto t0 = Clock::now();
    Result<Bytes> frame = Encode(s);
    const auto t1 = Clock::now();
    REQUIRE(frame.ok());
    Result<Message> back = Decode(*frame);
    const auto t2 = Clock::now();
    REQUIRE_MESSAGE(back.ok(), back.status().ToString());
    Bytes copy(frame->begin(), frame->end());  // reference: one plain copy
    const auto t3 = Clock::now();
    REQUIRE(Validate(s, Limits{}).ok());
    const auto t4 = Clock::now();
    encode_ms = std::min(encode_ms, ms(t1 - t0));
    decode_ms = std::min(decode_ms, ms(t2 - t1));
    copy_ms = std::min(copy_ms, ms(t3 - t2));
    validate_ms = std::min(validate_ms, ms(t4 - t3));
    CHECK(copy.size() == frame->size());
    CHECK(SameMessage(s, *back));
    // Built in place: one segment, so the segment table is a single word.
    uint32_t segments_minus_one = 1;
    std::memcpy(&segments_minus_one, frame->data(), sizeof segments_minus_one);
    CHECK(segments_minus_one == 0);
    // Framing overhead is a few words per tensor, nothing proportional to the data.
    CHECK(frame->size() - kFloats * 4 < 512);
  }
  std::printf(
      "[protocol] 40 MB gossip share, best of 3: encode %.1f ms, decode %.1f ms (both "
      "include Validate, alone %.1f ms); one plain copy into a new buffer %.1f ms\n",
      encode_ms, decode_ms, validate_ms, copy_ms);
}

}  // namespace
}  // namespace dpnode::protocol
