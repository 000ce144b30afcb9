// Every validation rule of messages.h: Validate names the field, Encode
// refuses to send it (InvalidArgument), and Decode refuses to accept it from
// a well-formed frame (Corruption), naming the same field.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "protocol/codec.h"
#include "protocol/messages.h"
#include "tests/protocol/test_messages.h"

namespace dpnode::protocol {
namespace {

using namespace testing;  // NOLINT: test helpers

struct Case {
  std::string name;
  Message message;
  std::string field;  // must appear in every refusal
};

Message HelloWith(const std::function<void(Hello&)>& edit) {
  Hello h = SampleHello();
  edit(h);
  return h;
}
Message RecordWith(const std::function<void(PeerRecord&)>& edit) {
  PeerRecord r = SamplePeerRecord();
  edit(r);
  return r;
}
Message ShareWith(const std::function<void(GossipShare&)>& edit) {
  GossipShare s = SampleShare();
  edit(s);
  return s;
}

std::vector<Case> RefusalCases() {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  return {
      {"protocol version 0", HelloWith([](Hello& h) { h.protocol_version = 0; }),
       "hello.protocol_version"},
      {"empty consortium", HelloWith([](Hello& h) { h.consortium_id.clear(); }),
       "hello.consortium_id: is empty"},
      {"long consortium",
       HelloWith([](Hello& h) { h.consortium_id = std::string(kMaxConsortiumIdBytes + 1, 'c'); }),
       "hello.consortium_id: 129 bytes"},
      {"consortium with space", HelloWith([](Hello& h) { h.consortium_id = "a b"; }),
       "hello.consortium_id: must be printable ASCII"},
      {"short fingerprint", HelloWith([](Hello& h) { h.model_fingerprint.resize(31); }),
       "hello.model_fingerprint: 31 bytes, expected 32"},
      {"long fingerprint", HelloWith([](Hello& h) { h.model_fingerprint.resize(33); }),
       "hello.model_fingerprint"},
      {"empty site name", HelloWith([](Hello& h) { h.site_name.clear(); }),
       "hello.site_name: is empty"},
      {"long site name",
       HelloWith([](Hello& h) { h.site_name = std::string(kMaxSiteNameBytes + 1, 's'); }),
       "hello.site_name: 129 bytes"},
      {"site name with newline", HelloWith([](Hello& h) { h.site_name = "a\nb"; }),
       "hello.site_name: must be valid UTF-8"},
      {"site name bad utf8", HelloWith([](Hello& h) { h.site_name = "a\xff"; }),
       "hello.site_name: must be valid UTF-8"},
      {"too many addresses", RecordWith([](PeerRecord& r) {
         r.addresses.assign(kMaxAddresses + 1, {"h", 1});
       }),
       "peer_record.addresses: 17 addresses"},
      {"empty host", RecordWith([](PeerRecord& r) { r.addresses[1].host.clear(); }),
       "peer_record.addresses[1].host: is empty"},
      {"long host",
       RecordWith([](PeerRecord& r) { r.addresses[0].host = std::string(kMaxHostBytes + 1, 'h'); }),
       "peer_record.addresses[0].host: 254 bytes"},
      {"host with control char", RecordWith([](PeerRecord& r) { r.addresses[0].host = "a\tb"; }),
       "peer_record.addresses[0].host: must be printable"},
      {"port 0", RecordWith([](PeerRecord& r) { r.addresses[1].port = 0; }),
       "peer_record.addresses[1].port: is 0"},
      {"weight 0", ShareWith([](GossipShare& s) { s.weight = 0; }), "gossip_share.weight"},
      {"weight negative", ShareWith([](GossipShare& s) { s.weight = -1; }), "gossip_share.weight"},
      {"weight NaN", ShareWith([nan](GossipShare& s) { s.weight = nan; }), "gossip_share.weight"},
      {"weight inf", ShareWith([inf](GossipShare& s) { s.weight = inf; }), "gossip_share.weight"},
      {"epsilon negative", ShareWith([](GossipShare& s) { s.epsilon_spent = -0.1; }),
       "gossip_share.epsilon_spent"},
      {"epsilon NaN", ShareWith([nan](GossipShare& s) { s.epsilon_spent = nan; }),
       "gossip_share.epsilon_spent"},
      {"no tensors", ShareWith([](GossipShare& s) { s.tensors.clear(); }),
       "gossip_share.tensors: is empty"},
      {"empty tensor name", ShareWith([](GossipShare& s) { s.tensors[1].name.clear(); }),
       "gossip_share.tensors[1].name: is empty"},
      {"long tensor name", ShareWith([](GossipShare& s) {
         s.tensors[0].name = std::string(kMaxTensorNameBytes + 1, 'n');
       }),
       "gossip_share.tensors[0].name: 257 bytes"},
      {"tensor name with space", ShareWith([](GossipShare& s) { s.tensors[0].name = "a b"; }),
       "gossip_share.tensors[0].name: must be printable"},
      {"duplicate tensor name", ShareWith([](GossipShare& s) { s.tensors[2].name = "fc1.weight"; }),
       "gossip_share.tensors[2].name: duplicate name"},
      {"rank 9",
       ShareWith([](GossipShare& s) { s.tensors[2].shape.assign(kMaxTensorRank + 1, 1); }),
       "gossip_share.tensors[2].shape: rank 9"},
      {"zero dimension", ShareWith([](GossipShare& s) {
         s.tensors[0].shape = {3, 0};
         s.tensors[0].data.clear();
       }),
       "gossip_share.tensors[0].shape[1]: dimension is 0"},
      {"element count overflows", ShareWith([](GossipShare& s) {
         s.tensors[0].shape = {uint64_t{1} << 32, uint64_t{1} << 32};
       }),
       "gossip_share.tensors[0].shape: element count overflows"},
      {"byte size overflows", ShareWith([](GossipShare& s) {
         s.tensors[0].shape = {uint64_t{1} << 31, uint64_t{1} << 32};
       }),
       "gossip_share.tensors[0].shape: byte size overflows"},
      {"data too short", ShareWith([](GossipShare& s) { s.tensors[0].data.pop_back(); }),
       "gossip_share.tensors[0].data: 23 bytes, shape and float32 need 24"},
      {"data too long", ShareWith([](GossipShare& s) { s.tensors[1].data.push_back(0); }),
       "gossip_share.tensors[1].data: 25 bytes, shape and float64 need 24"},
      {"NaN in float32 data", ShareWith([](GossipShare& s) {
         s.tensors[0].data = Float32Data({1, 2, 3, 4, std::nanf(""), 6});
       }),
       "gossip_share.tensors[0].data: contains NaN"},
      {"inf in float64 data", ShareWith([inf](GossipShare& s) {
         s.tensors[1].data = Float64Data({1, -inf, 3});
       }),
       "gossip_share.tensors[1].data: contains NaN or infinity"},
      {"goodbye text too long",
       Goodbye{GoodbyeReason::kShutdown, std::string(kMaxGoodbyeTextBytes + 1, 'g')},
       "goodbye.text: 1025 bytes"},
      {"goodbye text with escape", Goodbye{GoodbyeReason::kShutdown, "\x1b[2J"},
       "goodbye.text: must be valid UTF-8"},
  };
}

TEST_CASE("every validation rule refuses, naming the field, on both sides") {
  for (const Case& c : RefusalCases()) {
    CAPTURE(c.name);
    const Status v = Validate(c.message, Limits{});
    REQUIRE_FALSE(v.ok());
    CHECK(v.code() == StatusCode::kInvalidArgument);
    CHECK_MESSAGE(v.message().find(c.field) != std::string::npos, v.message());

    Result<Bytes> sent = Encode(c.message);
    REQUIRE_FALSE(sent.ok());
    CHECK(sent.status().code() == StatusCode::kInvalidArgument);

    Result<Bytes> raw = EncodeUncheckedForTesting(c.message);
    REQUIRE(raw.ok());
    Result<Message> got = Decode(*raw);
    REQUIRE_FALSE(got.ok());
    CHECK(got.status().code() == StatusCode::kCorruption);
    CHECK_MESSAGE(got.status().message().find(c.field) != std::string::npos,
                  got.status().message());
  }
}

TEST_CASE("the tensor count limit is configurable") {
  Limits limits;
  limits.max_tensors = 2;
  const GossipShare s = SampleShare();  // 3 tensors
  CHECK(Validate(s, Limits{}).ok());
  const Status v = Validate(s, limits);
  REQUIRE_FALSE(v.ok());
  CHECK(v.message().find("3 tensors, at most 2") != std::string::npos);
  Result<Bytes> frame = Encode(s);
  REQUIRE(frame.ok());
  Result<Message> got = Decode(*frame, limits);
  REQUIRE_FALSE(got.ok());
  CHECK(got.status().message().find("3 tensors, at most 2") != std::string::npos);
}

TEST_CASE("unknown goodbye reasons do not validate when we are the sender") {
  const Status v = Validate(Goodbye{static_cast<GoodbyeReason>(99), ""});
  REQUIRE_FALSE(v.ok());
  CHECK(v.message().find("goodbye.reason") != std::string::npos);
}

TEST_CASE("text checks") {
  CHECK(IsPrintableAsciiToken("node-1.example.org:7400"));
  CHECK_FALSE(IsPrintableAsciiToken("a b"));
  CHECK_FALSE(IsPrintableAsciiToken(std::string("a\0b", 3)));
  CHECK_FALSE(IsPrintableAsciiToken("caf\xc3\xa9"));
  CHECK(IsCleanUtf8(""));
  CHECK(IsCleanUtf8("H\xc3\xb4pital St-Luc \xe7\x97\x85\xe9\x99\xa2 \xf0\x9f\x8f\xa5"));
  CHECK_FALSE(IsCleanUtf8(std::string("a\0b", 3)));
  CHECK_FALSE(IsCleanUtf8("a\x7f"));             // DEL
  CHECK_FALSE(IsCleanUtf8("\xc2\x85"));          // C1 control (NEL)
  CHECK_FALSE(IsCleanUtf8("\xc0\xaf"));          // overlong '/'
  CHECK_FALSE(IsCleanUtf8("\xe0\x80\xaf"));      // overlong, 3 bytes
  CHECK_FALSE(IsCleanUtf8("\xed\xa0\x80"));      // surrogate half
  CHECK_FALSE(IsCleanUtf8("\xf4\x90\x80\x80"));  // beyond U+10FFFF
  CHECK_FALSE(IsCleanUtf8("\xe2\x80"));          // truncated sequence
  CHECK_FALSE(IsCleanUtf8("\x80"));              // lone continuation
}

TEST_CASE("shape element counts") {
  CHECK(*ShapeElements({}) == 1);
  CHECK(*ShapeElements({2, 3, 4}) == 24);
  CHECK(*ShapeElements({uint64_t{1} << 32, (uint64_t{1} << 32) - 1}) ==
        (uint64_t{1} << 32) * ((uint64_t{1} << 32) - 1));
  CHECK_FALSE(ShapeElements({uint64_t{1} << 32, uint64_t{1} << 32}).ok());
}

}  // namespace
}  // namespace dpnode::protocol
