// Fuzz target: protocol::Decode on hostile frames. The whole input is one
// frame (no harness header), so any captured frame is a valid seed.
// Properties checked (abort on violation), besides ASan/UBSan:
//   - Decode never crashes, throws or allocates beyond what its limits allow
//     (scripts/fuzz.sh runs this target with -malloc_limit_mb);
//   - decoding under small limits (4 KiB shares, 8 tensors) succeeding
//     implies decoding under the default limits succeeds with the same
//     message (limits only ever refuse);
//   - whatever decodes re-encodes: Encode(m) succeeds (or is refused only for
//     its size, see below), Decode(Encode(m)) == m field by field, and
//     Encode is deterministic: Encode(Decode(Encode(m))) == Encode(m).
// Encode may refuse a decoded message for size alone: a hostile frame can
// make tensors share bytes (the decoder charges each copy against the
// frame size), and a fresh encoding of the copies can be a little larger.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "protocol/codec.h"
#include "protocol/messages.h"
#include "tests/fuzz/fuzz_util.h"

namespace dpnode::fuzz {
namespace {

using protocol::Message;

protocol::Limits SmallLimits() {
  protocol::Limits limits;
  limits.max_gossip_share_bytes = 4096;
  limits.max_tensors = 8;
  return limits;
}

bool SameDouble(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

bool Same(const protocol::Hello& a, const protocol::Hello& b) {
  return a.protocol_version == b.protocol_version && a.consortium_id == b.consortium_id &&
         a.model_fingerprint == b.model_fingerprint && a.site_name == b.site_name &&
         a.capabilities == b.capabilities;
}
bool Same(const protocol::PeerRecord& a, const protocol::PeerRecord& b) {
  if (a.site_key != b.site_key || a.sequence != b.sequence || a.signature != b.signature ||
      a.addresses.size() != b.addresses.size()) {
    return false;
  }
  for (size_t i = 0; i < a.addresses.size(); ++i) {
    if (a.addresses[i].host != b.addresses[i].host || a.addresses[i].port != b.addresses[i].port)
      return false;
  }
  return true;
}
bool Same(const protocol::GossipShare& a, const protocol::GossipShare& b) {
  if (a.round != b.round || !SameDouble(a.weight, b.weight) || a.local_steps != b.local_steps ||
      !SameDouble(a.epsilon_spent, b.epsilon_spent) || a.tensors.size() != b.tensors.size()) {
    return false;
  }
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    const protocol::Tensor& x = a.tensors[i];
    const protocol::Tensor& y = b.tensors[i];
    if (x.name != y.name || x.shape != y.shape || x.dtype != y.dtype || x.data != y.data)
      return false;
  }
  return true;
}
bool Same(const protocol::Probe& a, const protocol::Probe& b) {
  return a.nonce == b.nonce && a.sequence == b.sequence;
}
bool Same(const protocol::ProbeAck& a, const protocol::ProbeAck& b) {
  return a.nonce == b.nonce && a.sequence == b.sequence;
}
bool Same(const protocol::Goodbye& a, const protocol::Goodbye& b) {
  return a.reason == b.reason && a.text == b.text;
}
bool SameMessage(const Message& a, const Message& b) {
  if (a.index() != b.index()) return false;
  return std::visit([&b](const auto& x) { return Same(x, std::get<std::decay_t<decltype(x)>>(b)); },
                    a);
}

void CheckRoundTrip(const Message& m, const protocol::Limits& limits, size_t frame_size) {
  FUZZ_CHECK(protocol::Validate(m, limits).ok(), "decoded message fails Validate: %s",
             protocol::Validate(m, limits).ToString().c_str());
  Result<Bytes> encoded = protocol::Encode(m, limits);
  if (!encoded.ok()) {
    // Only the size limit may refuse (see the header comment).
    FUZZ_CHECK(encoded.status().code() == StatusCode::kInvalidArgument &&
                   encoded.status().message().find("encodes to") != std::string::npos,
               "a %zu-byte frame decoded but does not re-encode: %s", frame_size,
               encoded.status().ToString().c_str());
    return;
  }
  Result<Message> again = protocol::Decode(*encoded, limits);
  FUZZ_CHECK(again.ok(), "Encode produced a frame Decode refuses: %s",
             again.status().ToString().c_str());
  FUZZ_CHECK(SameMessage(m, *again), "Decode(Encode(m)) differs from m (%s)",
             protocol::MessageTypeName(protocol::TypeOf(m)));
  Result<Bytes> encoded_again = protocol::Encode(*again, limits);
  FUZZ_CHECK(encoded_again.ok() && *encoded_again == *encoded, "Encode is not deterministic");
}

}  // namespace

std::vector<Seed> SeedInputs() {
  using namespace protocol;  // NOLINT: seed construction reads better unqualified
  std::vector<Message> valid;
  Hello hello;
  hello.consortium_id = "fuzz-consortium";
  hello.model_fingerprint = Bytes(kModelFingerprintSize, 0xab);
  hello.site_name = "St Fuzz";
  hello.capabilities = kCapabilityPushSum | (uint64_t{1} << 40);
  valid.push_back(hello);
  PeerRecord record;
  for (size_t i = 0; i < record.site_key.size(); ++i) record.site_key[i] = static_cast<uint8_t>(i);
  record.addresses = {{"node1.example.org", 7400}, {"10.0.0.5", 65535}};
  record.sequence = 42;
  record.signature.fill(0x5a);
  valid.push_back(record);
  GossipShare share;
  share.round = 3;
  share.weight = 0.5;
  share.local_steps = 10;
  share.epsilon_spent = 0.25;
  share.tensors.push_back({"fc.weight", {2, 3}, DType::kFloat32, Bytes(24, 0)});
  share.tensors.push_back({"fc.bias", {3}, DType::kFloat64, Bytes(24, 0)});
  share.tensors.push_back({"scale", {}, DType::kFloat32, Bytes(4, 0)});
  valid.push_back(share);
  valid.push_back(Probe{7, 8});
  valid.push_back(ProbeAck{7, 8});
  valid.push_back(Goodbye{GoodbyeReason::kModelMismatch, "model fingerprint differs"});

  std::vector<Seed> seeds;
  for (const Message& m : valid) {
    Result<Bytes> frame = Encode(m);
    FUZZ_CHECK(frame.ok(), "seed does not encode: %s", frame.status().ToString().c_str());
    seeds.push_back({std::string("valid_") + MessageTypeName(TypeOf(m)), *frame});
  }
  // Well-formed Cap'n Proto with invalid content: each must be refused.
  std::vector<std::pair<std::string, Message>> invalid;
  Hello bad_hello = hello;
  bad_hello.consortium_id = "has space";
  invalid.push_back({"bad_hello_consortium", bad_hello});
  GossipShare bad_share = share;
  bad_share.tensors[0].shape = {2, 0};
  invalid.push_back({"bad_share_zero_dim", bad_share});
  bad_share = share;
  bad_share.tensors[1].name = "fc.weight";
  invalid.push_back({"bad_share_duplicate_name", bad_share});
  bad_share = share;
  bad_share.weight = -1;
  invalid.push_back({"bad_share_weight", bad_share});
  PeerRecord bad_record = record;
  bad_record.addresses[0].port = 0;
  invalid.push_back({"bad_record_port", bad_record});
  for (const auto& [name, m] : invalid) {
    Result<Bytes> frame = EncodeUncheckedForTesting(m);
    FUZZ_CHECK(frame.ok(), "seed does not encode: %s", frame.status().ToString().c_str());
    seeds.push_back({name, *frame});
  }
  return seeds;
}

}  // namespace dpnode::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dpnode;  // NOLINT
  const crypto::ByteView frame(data, size);
  const protocol::Limits default_limits;
  const protocol::Limits small_limits = fuzz::SmallLimits();
  Result<protocol::Message> with_default = protocol::Decode(frame, default_limits);
  Result<protocol::Message> with_small = protocol::Decode(frame, small_limits);
  if (with_small.ok()) {
    FUZZ_CHECK(with_default.ok(), "decodes under small limits but not the defaults: %s",
               with_default.status().ToString().c_str());
    FUZZ_CHECK(fuzz::SameMessage(*with_small, *with_default), "limits changed the decoded message");
    fuzz::CheckRoundTrip(*with_small, small_limits, size);
  }
  if (with_default.ok()) {
    fuzz::CheckRoundTrip(*with_default, default_limits, size);
  } else {
    const StatusCode code = with_default.status().code();
    FUZZ_CHECK(code == StatusCode::kCorruption || code == StatusCode::kInternal,
               "Decode failed with an undocumented code: %s",
               with_default.status().ToString().c_str());
  }
  return 0;
}
