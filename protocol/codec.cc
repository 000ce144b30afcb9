// Encode/Decode between messages.h structs and Cap'n Proto frames (contract in codec.h).
#include "protocol/codec.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/array.h>
#include <kj/exception.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "base/check.h"
#include "protocol/dpnode.capnp.h"

namespace dpnode::protocol {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "tensor data is sent in host byte order, which must be little-endian");

constexpr uint64_t kWordBytes = sizeof(capnp::word);

// Legitimate encoders use a handful of segments; each table entry would cost
// us a 16-byte ArrayPtr in FlatArrayMessageReader, so cap them.
constexpr uint32_t kMaxSegments = 512;

// Words needed to decide the message type: the root pointer and an Envelope.
constexpr uint64_t kPeekTraversalWords = 8;
constexpr int kPeekNestingLimit = 1;

// Fixed frame caps, in bytes. Each is the largest legitimate message of its
// type (computed in docs/protocol.md) rounded up with room for fields a newer
// minor revision may append.
constexpr uint64_t kHelloFrameBytes = 2 * 1024;       // largest valid: 376
constexpr uint64_t kPeerRecordFrameBytes = 8 * 1024;  // largest valid: 4,520
constexpr uint64_t kProbeFrameBytes = 256;            // every valid: 48
constexpr uint64_t kGoodbyeFrameBytes = 2 * 1024;     // largest valid: 1,080

// Depth of the deepest pointer chain a valid message of each type has, as
// capnp counts it: the root Envelope is level 1, each struct and each list
// below it one more, while Text/Data blobs need no level of their own. The
// schema is not recursive, so these are exact (found by lowering each by one
// until round trips failed); a frame that needs more is not ours.
constexpr int kHelloNesting = 2;        // Envelope > Hello (> text)
constexpr int kPeerRecordNesting = 4;   // Envelope > PeerRecord > addresses > Address (> host)
constexpr int kGossipShareNesting = 5;  // Envelope > GossipShare > tensors > Tensor > shape
constexpr int kProbeNesting = 2;        // Envelope > Probe
constexpr int kGoodbyeNesting = 2;      // Envelope > Goodbye (> text)

void CheckLimits(const Limits& limits) {
  DPNODE_CHECK(
      limits.max_gossip_share_bytes >= 4096 && limits.max_gossip_share_bytes % kWordBytes == 0,
      "Limits::max_gossip_share_bytes=%llu must be a multiple of 8 and >= 4096",
      static_cast<unsigned long long>(limits.max_gossip_share_bytes));
  DPNODE_CHECK(limits.max_tensors >= 1, "Limits::max_tensors must be >= 1");
}

Status Corrupt(const std::string& msg) { return Status::Corruption(msg); }

kj::ArrayPtr<const kj::byte> KjBytes(const Bytes& b) { return kj::arrayPtr(b.data(), b.size()); }

// ---- structs -> capnp builders ---------------------------------------------

void Fill(wire::Hello::Builder b, const Hello& m) {
  b.setProtocolVersion(m.protocol_version);
  b.setConsortiumId(m.consortium_id);
  b.setModelFingerprint(KjBytes(m.model_fingerprint));
  b.setSiteName(m.site_name);
  b.setCapabilities(m.capabilities);
}

void Fill(wire::PeerRecord::Builder b, const PeerRecord& m) {
  b.setSiteKey(kj::arrayPtr(m.site_key.data(), m.site_key.size()));
  auto addresses = b.initAddresses(static_cast<unsigned>(m.addresses.size()));
  for (size_t i = 0; i < m.addresses.size(); ++i) {
    addresses[static_cast<unsigned>(i)].setHost(m.addresses[i].host);
    addresses[static_cast<unsigned>(i)].setPort(m.addresses[i].port);
  }
  b.setSequence(m.sequence);
  b.setSignature(kj::arrayPtr(m.signature.data(), m.signature.size()));
}

void Fill(wire::GossipShare::Builder b, const GossipShare& m) {
  b.setRound(m.round);
  b.setWeight(m.weight);
  b.setLocalSteps(m.local_steps);
  b.setEpsilonSpent(m.epsilon_spent);
  auto tensors = b.initTensors(static_cast<unsigned>(m.tensors.size()));
  for (size_t i = 0; i < m.tensors.size(); ++i) {
    const Tensor& t = m.tensors[i];
    auto tb = tensors[static_cast<unsigned>(i)];
    tb.setName(t.name);
    auto shape = tb.initShape(static_cast<unsigned>(t.shape.size()));
    for (size_t d = 0; d < t.shape.size(); ++d) shape.set(static_cast<unsigned>(d), t.shape[d]);
    tb.setDtype(t.dtype == DType::kFloat64 ? wire::DType::FLOAT64 : wire::DType::FLOAT32);
    // The one copy of the tensor bytes on the way out.
    tb.setData(KjBytes(t.data));
  }
}

void Fill(wire::Probe::Builder b, const Probe& m) {
  b.setNonce(m.nonce);
  b.setSequence(m.sequence);
}

void Fill(wire::ProbeAck::Builder b, const ProbeAck& m) {
  b.setNonce(m.nonce);
  b.setSequence(m.sequence);
}

void Fill(wire::Goodbye::Builder b, const Goodbye& m) {
  b.setReason(static_cast<wire::GoodbyeReason>(static_cast<uint16_t>(m.reason)));
  b.setText(m.text);
}

// One overload per message type, so no caller converts a struct into a
// Message (a variant holds its own copy: 40 MB for a big share).
void FillEnvelope(wire::Envelope::Builder env, const Hello& m) { Fill(env.initHello(), m); }
void FillEnvelope(wire::Envelope::Builder env, const PeerRecord& m) {
  Fill(env.initPeerRecord(), m);
}
void FillEnvelope(wire::Envelope::Builder env, const GossipShare& m) {
  Fill(env.initGossipShare(), m);
}
void FillEnvelope(wire::Envelope::Builder env, const Probe& m) { Fill(env.initProbe(), m); }
void FillEnvelope(wire::Envelope::Builder env, const ProbeAck& m) { Fill(env.initProbeAck(), m); }
void FillEnvelope(wire::Envelope::Builder env, const Goodbye& m) { Fill(env.initGoodbye(), m); }

constexpr MessageType TypeOfStruct(const Hello&) { return MessageType::kHello; }
constexpr MessageType TypeOfStruct(const PeerRecord&) { return MessageType::kPeerRecord; }
constexpr MessageType TypeOfStruct(const GossipShare&) { return MessageType::kGossipShare; }
constexpr MessageType TypeOfStruct(const Probe&) { return MessageType::kProbe; }
constexpr MessageType TypeOfStruct(const ProbeAck&) { return MessageType::kProbeAck; }
constexpr MessageType TypeOfStruct(const Goodbye&) { return MessageType::kGoodbye; }

Status ValidateStruct(const GossipShare& m, const Limits& limits) { return Validate(m, limits); }
template <typename T>
Status ValidateStruct(const T& m, const Limits&) {
  return Validate(m);
}

uint64_t WordsFor(uint64_t bytes) { return (bytes + kWordBytes - 1) / kWordBytes; }

// Exact size in words of the single segment a GossipShare encodes to: root
// pointer, Envelope (1+1), GossipShare (4+1), the tensor list's tag word and
// one Tensor (1+3) per element, then each tensor's name (with its NUL), shape
// and data, all padded to words.
uint64_t GossipShareSegmentWords(const GossipShare& m) {
  uint64_t words = 1 + 2 + 5 + 1;
  for (const Tensor& t : m.tensors) {
    words += 4 + WordsFor(t.name.size() + 1) + t.shape.size() + WordsFor(t.data.size());
  }
  return words;
}

// A MessageBuilder whose first segment is memory the caller owns (the frame
// being built). Unlike MallocMessageBuilder with a caller-supplied segment,
// it never zeroes that memory on destruction. Later segments, needed only if
// the size estimate was short, come from the heap.
class InPlaceBuilder final : public capnp::MessageBuilder {
 public:
  explicit InPlaceBuilder(kj::ArrayPtr<capnp::word> first) : first_(first) {}

  kj::ArrayPtr<capnp::word> allocateSegment(unsigned minimum_words) override {
    if (!first_given_ && minimum_words <= first_.size()) {
      first_given_ = true;
      return first_;
    }
    const size_t words = std::max<size_t>(minimum_words, 1024);
    kj::Array<capnp::word> segment = kj::heapArray<capnp::word>(words);
    std::memset(segment.begin(), 0, words * kWordBytes);  // capnp needs zeroed segments
    kj::ArrayPtr<capnp::word> out = segment;
    spill_.push_back(std::move(segment));
    return out;
  }

 private:
  kj::ArrayPtr<capnp::word> first_;
  bool first_given_ = false;
  std::vector<kj::Array<capnp::word>> spill_;
};

// Builds a GossipShare directly inside the returned frame: the frame's first
// word is the segment table and the rest is capnp's first segment, so the
// tensor bytes are copied once, into their final place.
Bytes EncodeGossipShareInPlace(const GossipShare& share) {
  const uint64_t segment_words = GossipShareSegmentWords(share);
  // std::vector's storage comes from operator new, aligned for any scalar
  // type, so every word boundary in it is 8-byte aligned.
  Bytes frame((1 + segment_words) * kWordBytes, 0);  // capnp needs a zeroed segment
  auto* words = reinterpret_cast<capnp::word*>(frame.data());
  InPlaceBuilder builder(kj::arrayPtr(words + 1, segment_words));
  FillEnvelope(builder.initRoot<wire::Envelope>(), share);
  auto segments = builder.getSegmentsForOutput();
  if (segments.size() == 1 && segments[0].begin() == words + 1) {
    const uint64_t used = segments[0].size();
    const uint32_t table[2] = {0, static_cast<uint32_t>(used)};
    std::memcpy(frame.data(), table, sizeof(table));
    frame.resize((1 + used) * kWordBytes);
    return frame;
  }
  // The estimate was short and capnp spilled into another segment: still a
  // valid message, serialized the ordinary way (extra copies, never wrong).
  kj::Array<capnp::word> flat = capnp::messageToFlatArray(builder);
  auto bytes = flat.asBytes();
  return Bytes(bytes.begin(), bytes.end());
}

// ---- capnp readers -> structs ----------------------------------------------

Status CheckSize(const char* field, size_t size, size_t max) {
  if (size > max) {
    return Corrupt(std::string(field) + ": " + std::to_string(size) + " bytes, at most " +
                   std::to_string(max) + " allowed");
  }
  return Status::Ok();
}

// Text is size-checked before it is copied, so a peer cannot make us copy
// more than the field's bound.
Status ReadText(const char* field, capnp::Text::Reader text, size_t max, std::string* out) {
  DPNODE_RETURN_IF_ERROR(CheckSize(field, text.size(), max));
  out->assign(text.begin(), text.size());
  return Status::Ok();
}

template <size_t N>
Status ReadFixed(const char* field, capnp::Data::Reader data, std::array<uint8_t, N>* out) {
  if (data.size() != N) {
    return Corrupt(std::string(field) + ": " + std::to_string(data.size()) + " bytes, expected " +
                   std::to_string(N));
  }
  std::memcpy(out->data(), data.begin(), N);
  return Status::Ok();
}

Result<Message> Read(wire::Hello::Reader r) {
  Hello m;
  m.protocol_version = r.getProtocolVersion();
  DPNODE_RETURN_IF_ERROR(ReadText("hello.consortium_id", r.getConsortiumId(), kMaxConsortiumIdBytes,
                                  &m.consortium_id));
  capnp::Data::Reader fingerprint = r.getModelFingerprint();
  DPNODE_RETURN_IF_ERROR(
      CheckSize("hello.model_fingerprint", fingerprint.size(), kModelFingerprintSize));
  m.model_fingerprint.assign(fingerprint.begin(), fingerprint.end());
  DPNODE_RETURN_IF_ERROR(
      ReadText("hello.site_name", r.getSiteName(), kMaxSiteNameBytes, &m.site_name));
  m.capabilities = r.getCapabilities();
  return Message(std::move(m));
}

Result<Message> Read(wire::PeerRecord::Reader r) {
  PeerRecord m;
  DPNODE_RETURN_IF_ERROR(ReadFixed("peer_record.site_key", r.getSiteKey(), &m.site_key));
  auto addresses = r.getAddresses();
  if (addresses.size() > kMaxAddresses) {
    return Corrupt("peer_record.addresses: " + std::to_string(addresses.size()) +
                   " addresses, at most " + std::to_string(kMaxAddresses));
  }
  m.addresses.resize(addresses.size());
  for (unsigned i = 0; i < addresses.size(); ++i) {
    auto a = addresses[i];
    const std::string field = "peer_record.addresses[" + std::to_string(i) + "].host";
    DPNODE_RETURN_IF_ERROR(
        ReadText(field.c_str(), a.getHost(), kMaxHostBytes, &m.addresses[i].host));
    m.addresses[i].port = a.getPort();
  }
  m.sequence = r.getSequence();
  DPNODE_RETURN_IF_ERROR(ReadFixed("peer_record.signature", r.getSignature(), &m.signature));
  return Message(std::move(m));
}

Result<Message> Read(wire::GossipShare::Reader r, uint64_t frame_bytes, const Limits& limits) {
  GossipShare m;
  m.round = r.getRound();
  m.weight = r.getWeight();
  m.local_steps = r.getLocalSteps();
  m.epsilon_spent = r.getEpsilonSpent();
  auto tensors = r.getTensors();
  if (tensors.size() > limits.max_tensors) {
    return Corrupt("gossip_share.tensors: " + std::to_string(tensors.size()) +
                   " tensors, at most " + std::to_string(limits.max_tensors));
  }
  m.tensors.resize(tensors.size());
  // Blob reads are not all charged to capnp's traversal limit, and several
  // tensors could point at the same bytes; what we copy out may never exceed
  // what the peer actually sent.
  uint64_t copied = 0;
  for (unsigned i = 0; i < tensors.size(); ++i) {
    auto t = tensors[i];
    Tensor& out = m.tensors[i];
    const std::string field = "gossip_share.tensors[" + std::to_string(i) + "]";
    DPNODE_RETURN_IF_ERROR(
        ReadText((field + ".name").c_str(), t.getName(), kMaxTensorNameBytes, &out.name));
    auto shape = t.getShape();
    if (shape.size() > kMaxTensorRank) {
      return Corrupt(field + ".shape: rank " + std::to_string(shape.size()) + ", at most " +
                     std::to_string(kMaxTensorRank));
    }
    out.shape.resize(shape.size());
    for (unsigned d = 0; d < shape.size(); ++d) out.shape[d] = shape[d];
    const auto dtype = static_cast<uint16_t>(t.getDtype());
    if (dtype > static_cast<uint16_t>(DType::kFloat64)) {
      return Corrupt(field + ".dtype: unknown dtype " + std::to_string(dtype));
    }
    out.dtype = static_cast<DType>(dtype);
    capnp::Data::Reader data = t.getData();
    copied += data.size();
    if (copied > frame_bytes) {
      return Corrupt(field + ".data: tensors claim more bytes than the frame holds");
    }
    // Check size against the shape before copying, so a lying shape costs
    // nothing. Overflow and zero dims are reported by Validate below.
    Result<uint64_t> elements = ShapeElements(out.shape);
    if (elements.ok() && *elements <= UINT64_MAX / DTypeSize(out.dtype) &&
        *elements * DTypeSize(out.dtype) != data.size()) {
      return Corrupt(field + ".data: " + std::to_string(data.size()) + " bytes, shape and " +
                     DTypeName(out.dtype) + " need " +
                     std::to_string(*elements * DTypeSize(out.dtype)));
    }
    // The one copy of the tensor bytes on the way in.
    out.data.assign(data.begin(), data.end());
  }
  return Message(std::move(m));
}

Result<Message> Read(wire::Probe::Reader r) {
  return Message(Probe{r.getNonce(), r.getSequence()});
}

Result<Message> Read(wire::ProbeAck::Reader r) {
  return Message(ProbeAck{r.getNonce(), r.getSequence()});
}

Result<Message> Read(wire::Goodbye::Reader r) {
  Goodbye m;
  const auto reason = static_cast<uint16_t>(r.getReason());
  // A reason from a newer peer is still a goodbye; we just cannot name it.
  m.reason = reason <= static_cast<uint16_t>(GoodbyeReason::kTrainingDone)
                 ? static_cast<GoodbyeReason>(reason)
                 : GoodbyeReason::kUnspecified;
  DPNODE_RETURN_IF_ERROR(ReadText("goodbye.text", r.getText(), kMaxGoodbyeTextBytes, &m.text));
  return Message(std::move(m));
}

Result<MessageType> TypeOfEnvelope(wire::Envelope::Which which) {
  switch (which) {
    case wire::Envelope::HELLO:
      return MessageType::kHello;
    case wire::Envelope::PEER_RECORD:
      return MessageType::kPeerRecord;
    case wire::Envelope::GOSSIP_SHARE:
      return MessageType::kGossipShare;
    case wire::Envelope::PROBE:
      return MessageType::kProbe;
    case wire::Envelope::PROBE_ACK:
      return MessageType::kProbeAck;
    case wire::Envelope::GOODBYE:
      return MessageType::kGoodbye;
  }
  return Corrupt("envelope: unknown message type " + std::to_string(static_cast<unsigned>(which)));
}

Result<Message> DecodeWords(kj::ArrayPtr<const capnp::word> words, const Limits& limits) {
  const uint64_t frame_bytes = words.size() * kWordBytes;
  uint32_t first_table_word;
  std::memcpy(&first_table_word, words.begin(), sizeof(first_table_word));
  if (first_table_word >= kMaxSegments) {
    return Corrupt("frame: " + std::to_string(uint64_t{first_table_word} + 1) +
                   " segments, at most " + std::to_string(kMaxSegments));
  }

  // Pass 1: learn the type under limits that fit every type, and check the
  // frame ends exactly where the message does.
  capnp::ReaderOptions peek_options;
  peek_options.traversalLimitInWords = kPeekTraversalWords;
  peek_options.nestingLimit = kPeekNestingLimit;
  capnp::FlatArrayMessageReader peek(words, peek_options);
  if (peek.getEnd() != words.end()) {
    return Corrupt("frame: " + std::to_string((words.end() - peek.getEnd()) * kWordBytes) +
                   " trailing bytes after the message");
  }
  Result<MessageType> type = TypeOfEnvelope(peek.getRoot<wire::Envelope>().which());
  if (!type.ok()) return type.status();

  // Pass 2: read it under the limits of that type.
  const TypeLimits type_limits = LimitsFor(*type, limits);
  if (frame_bytes > type_limits.max_frame_bytes) {
    return Corrupt(std::string(MessageTypeName(*type)) + ": frame of " +
                   std::to_string(frame_bytes) + " bytes exceeds the limit of " +
                   std::to_string(type_limits.max_frame_bytes));
  }
  capnp::ReaderOptions options;
  options.traversalLimitInWords = type_limits.traversal_limit_words;
  options.nestingLimit = type_limits.nesting_limit;
  capnp::FlatArrayMessageReader reader(words, options);
  wire::Envelope::Reader env = reader.getRoot<wire::Envelope>();
  Result<Message> message = Corrupt("unreachable");
  switch (*type) {
    case MessageType::kHello:
      message = Read(env.getHello());
      break;
    case MessageType::kPeerRecord:
      message = Read(env.getPeerRecord());
      break;
    case MessageType::kGossipShare:
      message = Read(env.getGossipShare(), frame_bytes, limits);
      break;
    case MessageType::kProbe:
      message = Read(env.getProbe());
      break;
    case MessageType::kProbeAck:
      message = Read(env.getProbeAck());
      break;
    case MessageType::kGoodbye:
      message = Read(env.getGoodbye());
      break;
  }
  if (!message.ok()) return message;
  Status valid = Validate(*message, limits);
  if (!valid.ok()) return Corrupt(valid.message());
  return message;
}

template <typename T>
Result<Bytes> EncodeUnchecked(const T& message) {
  try {
    if constexpr (std::is_same_v<T, GossipShare>) {
      return EncodeGossipShareInPlace(message);
    } else {
      capnp::MallocMessageBuilder builder;
      FillEnvelope(builder.initRoot<wire::Envelope>(), message);
      kj::Array<capnp::word> flat = capnp::messageToFlatArray(builder);
      auto bytes = flat.asBytes();
      return Bytes(bytes.begin(), bytes.end());
    }
  } catch (const kj::Exception& e) {
    return Status::Internal(std::string("encoding ") + MessageTypeName(TypeOfStruct(message)) +
                            ": " + e.getDescription().cStr());
  }
}

template <typename T>
Result<Bytes> EncodeChecked(const T& message, const Limits& limits) {
  CheckLimits(limits);
  DPNODE_RETURN_IF_ERROR(ValidateStruct(message, limits));
  Result<Bytes> frame = EncodeUnchecked(message);
  if (!frame.ok()) return frame;
  const MessageType type = TypeOfStruct(message);
  const uint64_t max = LimitsFor(type, limits).max_frame_bytes;
  if (frame->size() > max) {
    return Status::InvalidArgument(std::string(MessageTypeName(type)) + ": encodes to " +
                                   std::to_string(frame->size()) + " bytes, limit is " +
                                   std::to_string(max));
  }
  return frame;
}

}  // namespace

TypeLimits LimitsFor(MessageType type, const Limits& limits) {
  CheckLimits(limits);
  auto make = [](uint64_t frame_bytes, int nesting) {
    // Traversal is charged per word of struct and list read; a valid message
    // reads each of its words once, so its own size in words is enough, and
    // a message whose pointers revisit the same words is refused.
    return TypeLimits{frame_bytes, frame_bytes / kWordBytes, nesting};
  };
  switch (type) {
    case MessageType::kHello:
      return make(kHelloFrameBytes, kHelloNesting);
    case MessageType::kPeerRecord:
      return make(kPeerRecordFrameBytes, kPeerRecordNesting);
    case MessageType::kGossipShare:
      return make(limits.max_gossip_share_bytes, kGossipShareNesting);
    case MessageType::kProbe:
      return make(kProbeFrameBytes, kProbeNesting);
    case MessageType::kProbeAck:
      return make(kProbeFrameBytes, kProbeNesting);
    case MessageType::kGoodbye:
      return make(kGoodbyeFrameBytes, kGoodbyeNesting);
  }
  DPNODE_CHECK(false, "LimitsFor unknown message type %d", static_cast<int>(type));
  return {};
}

uint64_t MaxFrameBytes(const Limits& limits) {
  uint64_t max = 0;
  for (size_t i = 0; i < kMessageTypeCount; ++i) {
    const uint64_t bytes = LimitsFor(static_cast<MessageType>(i), limits).max_frame_bytes;
    if (bytes > max) max = bytes;
  }
  return max;
}

Result<Bytes> Encode(const Message& message, const Limits& limits) {
  return std::visit([&limits](const auto& m) { return Encode(m, limits); }, message);
}
Result<Bytes> Encode(const Hello& m, const Limits& limits) { return EncodeChecked(m, limits); }
Result<Bytes> Encode(const PeerRecord& m, const Limits& limits) { return EncodeChecked(m, limits); }
Result<Bytes> Encode(const GossipShare& m, const Limits& limits) {
  return EncodeChecked(m, limits);
}
Result<Bytes> Encode(const Probe& m, const Limits& limits) { return EncodeChecked(m, limits); }
Result<Bytes> Encode(const ProbeAck& m, const Limits& limits) { return EncodeChecked(m, limits); }
Result<Bytes> Encode(const Goodbye& m, const Limits& limits) { return EncodeChecked(m, limits); }

Result<Bytes> EncodeUncheckedForTesting(const Message& message) {
  return std::visit([](const auto& m) { return EncodeUnchecked(m); }, message);
}

Result<Message> Decode(ByteView frame, const Limits& limits) {
  CheckLimits(limits);
  if (frame.empty()) return Corrupt("frame: empty");
  if (frame.size() % kWordBytes != 0) {
    return Corrupt("frame: " + std::to_string(frame.size()) +
                   " bytes is not a whole number of 8-byte words");
  }
  if (frame.size() > MaxFrameBytes(limits)) {
    return Corrupt("frame: " + std::to_string(frame.size()) +
                   " bytes exceeds the largest message (" + std::to_string(MaxFrameBytes(limits)) +
                   ")");
  }
  try {
    const size_t word_count = frame.size() / kWordBytes;
    if (reinterpret_cast<uintptr_t>(frame.data()) % alignof(capnp::word) == 0) {
      return DecodeWords(
          kj::arrayPtr(reinterpret_cast<const capnp::word*>(frame.data()), word_count), limits);
    }
    kj::Array<capnp::word> aligned = kj::heapArray<capnp::word>(word_count);
    std::memcpy(aligned.begin(), frame.data(), frame.size());
    return DecodeWords(kj::arrayPtr(aligned.begin(), aligned.size()), limits);
  } catch (const kj::Exception& e) {
    return Corrupt(std::string("capnp: ") + e.getDescription().cStr());
  } catch (const std::bad_alloc&) {
    return Status::Internal("out of memory decoding a frame");
  } catch (const std::exception& e) {
    return Corrupt(std::string("decoding: ") + e.what());
  } catch (...) {
    return Corrupt("decoding: unknown exception");
  }
}

}  // namespace dpnode::protocol
