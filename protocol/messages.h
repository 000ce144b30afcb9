// The messages one dpnode site sends another, as plain C++ values.
//
// These structs are what the rest of dpnode handles; the Cap'n Proto types
// generated from protocol/dpnode.capnp never leave protocol/codec.cc. A
// Message that came out of Decode() has passed Validate(): every size, count,
// shape and number below is within the documented bounds, so consumers may
// rely on the invariants written next to each field. Rules and the reasoning
// behind each bound: docs/protocol.md.
#ifndef DPNODE_PROTOCOL_MESSAGES_H_
#define DPNODE_PROTOCOL_MESSAGES_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/status.h"
#include "crypto/bytes.h"

namespace dpnode::protocol {

using crypto::Bytes;
using crypto::ByteView;

// The version this build speaks. Bumped on any change a peer of the previous
// version could misread; appending optional fields does not bump it.
inline constexpr uint32_t kProtocolVersion = 1;

inline constexpr size_t kModelFingerprintSize = 32;  // BLAKE2b-256
inline constexpr size_t kSiteKeySize = 32;           // Ed25519 public key
inline constexpr size_t kSignatureSize = 64;         // Ed25519 signature

// Text bounds, in bytes (not characters).
inline constexpr size_t kMaxConsortiumIdBytes = 128;
inline constexpr size_t kMaxSiteNameBytes = 128;
inline constexpr size_t kMaxHostBytes = 253;  // longest DNS name
inline constexpr size_t kMaxAddresses = 16;
inline constexpr size_t kMaxTensorNameBytes = 256;
inline constexpr size_t kMaxTensorRank = 8;
inline constexpr size_t kMaxGoodbyeTextBytes = 1024;

// Capability bits in Hello::capabilities. The protocol layer only carries
// them; the layers above decide what each means for a session. Unknown bits
// from newer peers are carried through untouched and ignored.
inline constexpr uint64_t kCapabilityPushSum = uint64_t{1} << 0;  // can run push-sum averaging

// Knobs for the one message whose legitimate size depends on the model.
struct Limits {
  // Largest encoded GossipShare accepted or produced, in bytes (the frame,
  // including Cap'n Proto framing). Must be a multiple of 8 and >= 4 KiB.
  uint64_t max_gossip_share_bytes = uint64_t{64} << 20;  // 64 MiB
  // Most tensors in one share (a model's named parameters and buffers).
  uint32_t max_tensors = 4096;
};

// hello: first message both ways on a session.
struct Hello {
  uint32_t protocol_version = kProtocolVersion;  // >= 1
  std::string consortium_id;  // 1..kMaxConsortiumIdBytes, printable ASCII, no spaces
  Bytes model_fingerprint;    // exactly kModelFingerprintSize bytes
  std::string site_name;      // 1..kMaxSiteNameBytes, UTF-8, no control characters
  uint64_t capabilities = 0;  // kCapability* bits
};

struct Address {
  std::string host;   // 1..kMaxHostBytes, printable ASCII, no spaces
  uint16_t port = 0;  // 1..65535
};

// Signed, sequence-numbered statement of where a site listens. Decode checks
// the shape only; whether the signature is valid and the key is pinned is
// for the receiver to check (protocol/peer_record.h).
struct PeerRecord {
  std::array<uint8_t, kSiteKeySize> site_key{};
  std::vector<Address> addresses;  // 0..kMaxAddresses (0: not reachable directly)
  uint64_t sequence = 0;
  std::array<uint8_t, kSignatureSize> signature{};
};

enum class DType : uint8_t { kFloat32 = 0, kFloat64 = 1 };
const char* DTypeName(DType dtype);  // "float32"
size_t DTypeSize(DType dtype);       // bytes per element

struct Tensor {
  std::string name;             // 1..kMaxTensorNameBytes printable ASCII, unique in a share
  std::vector<uint64_t> shape;  // rank 0..kMaxTensorRank (0 = scalar), every dim > 0
  DType dtype = DType::kFloat32;
  Bytes data;  // product(shape) * DTypeSize(dtype) bytes, little-endian, all values finite
};

// push-sum share of a model: receivers add weight and weight-scaled tensors.
struct GossipShare {
  uint64_t round = 0;
  double weight = 1.0;          // finite, > 0
  uint64_t local_steps = 0;     // DP-SGD steps the sender has taken
  double epsilon_spent = 0;     // finite, >= 0; informational, never trusted for accounting
  std::vector<Tensor> tensors;  // 1..Limits::max_tensors
};

struct Probe {
  uint64_t nonce = 0;
  uint64_t sequence = 0;
};

struct ProbeAck {
  uint64_t nonce = 0;     // echoes Probe::nonce
  uint64_t sequence = 0;  // echoes Probe::sequence
};

enum class GoodbyeReason : uint8_t {
  kUnspecified = 0,  // also what an unknown (newer) reason decodes to
  kShutdown = 1,
  kVersionMismatch = 2,
  kConsortiumMismatch = 3,
  kModelMismatch = 4,
  kProtocolViolation = 5,
  kTrainingDone = 6,
};
const char* GoodbyeReasonName(GoodbyeReason reason);  // "version mismatch"

struct Goodbye {
  GoodbyeReason reason = GoodbyeReason::kUnspecified;
  std::string text;  // 0..kMaxGoodbyeTextBytes, UTF-8, no control characters
};

// Exactly one of these per frame.
using Message = std::variant<Hello, PeerRecord, GossipShare, Probe, ProbeAck, Goodbye>;

enum class MessageType : uint8_t {
  kHello = 0,
  kPeerRecord = 1,
  kGossipShare = 2,
  kProbe = 3,
  kProbeAck = 4,
  kGoodbye = 5,
};
inline constexpr size_t kMessageTypeCount = 6;
MessageType TypeOf(const Message& message);
const char* MessageTypeName(MessageType type);  // "gossip_share"

// OK when the message obeys every rule above; otherwise
// Status::InvalidArgument naming the field ("gossip_share.tensors[3].shape[1]:
// dimension is 0"). Decode reports the same findings as kCorruption.
Status Validate(const Hello& hello);
Status Validate(const PeerRecord& record);
Status Validate(const GossipShare& share, const Limits& limits);
Status Validate(const Probe& probe);
Status Validate(const ProbeAck& ack);
Status Validate(const Goodbye& goodbye);
Status Validate(const Message& message, const Limits& limits);

// Element count of `shape` (1 for a scalar), or OutOfRange on uint64 overflow.
Result<uint64_t> ShapeElements(const std::vector<uint64_t>& shape);

// Checks shared by the validators, exposed for tests and for other layers
// that accept the same kinds of text.
bool IsPrintableAsciiToken(std::string_view s);  // 0x21..0x7e only
bool IsCleanUtf8(std::string_view s);            // valid UTF-8, no C0/C1 controls or DEL

}  // namespace dpnode::protocol

#endif  // DPNODE_PROTOCOL_MESSAGES_H_
