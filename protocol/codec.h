// Turns Messages into the bytes of one frame and back, with bounded decoding.
//
// Wire format: one Cap'n Proto message in the standard flat-array framing
// (segment table, then segments; the bytes capnp::messageToFlatArray makes),
// whose root is a dpnode.capnp Envelope carrying exactly one message.
//
// Decoding is where a hostile peer meets our memory, so it is bounded twice
// per message type (table in docs/protocol.md): the frame may be no larger
// than the largest legitimate message of its type, and Cap'n Proto's
// ReaderOptions (traversal limit in words, nesting limit) are set from that
// same size, so pointer tricks cannot make a small frame expensive. Then the
// content is converted to the structs of messages.h and Validate()d. Any
// failure is a Status; no exception leaves Decode.
//
// Sans-I/O and allocation-bounded: nothing here touches the network, clock
// or threads. Functions are thread-compatible (no shared state).
#ifndef DPNODE_PROTOCOL_CODEC_H_
#define DPNODE_PROTOCOL_CODEC_H_

#include <cstdint>

#include "base/status.h"
#include "protocol/messages.h"

namespace dpnode::protocol {

// The Cap'n Proto limits used to decode one message type.
struct TypeLimits {
  uint64_t max_frame_bytes = 0;        // whole frame, multiple of 8
  uint64_t traversal_limit_words = 0;  // capnp::ReaderOptions::traversalLimitInWords
  int nesting_limit = 0;               // capnp::ReaderOptions::nestingLimit
};

// Limits for `type`; only kGossipShare depends on `limits`.
// Precondition: `limits` obeys the rules in messages.h (checked).
TypeLimits LimitsFor(MessageType type, const Limits& limits = {});

// The largest frame Decode can accept under `limits`: what the transport may
// allow as a declared message size before allocating.
uint64_t MaxFrameBytes(const Limits& limits = {});

// Encodes `message` as one frame. Refuses (InvalidArgument, naming the field)
// a message that Validate() rejects or whose encoding would exceed its
// type's frame limit, so we never send what a peer with the same limits
// would refuse. For a GossipShare the tensor data is copied exactly once,
// straight into the returned buffer.
Result<Bytes> Encode(const Message& message, const Limits& limits = {});
// The same for each message type; these avoid copying a struct into a
// Message first (for a share that would be a full copy of its tensors).
Result<Bytes> Encode(const Hello& hello, const Limits& limits = {});
Result<Bytes> Encode(const PeerRecord& record, const Limits& limits = {});
Result<Bytes> Encode(const GossipShare& share, const Limits& limits = {});
Result<Bytes> Encode(const Probe& probe, const Limits& limits = {});
Result<Bytes> Encode(const ProbeAck& ack, const Limits& limits = {});
Result<Bytes> Encode(const Goodbye& goodbye, const Limits& limits = {});

// Encode without Validate() or the frame limit: for tests and fuzzers that
// need well-formed Cap'n Proto carrying invalid content. Never for sending.
Result<Bytes> EncodeUncheckedForTesting(const Message& message);

// Decodes one frame. The frame must hold exactly one message (no trailing
// bytes, size a multiple of 8 bytes). Failures are kCorruption with
// the offending field or capnp's reason in the message (kInternal only if
// memory runs out within the limits). `frame` need not be
// aligned (an unaligned frame is copied into an aligned buffer first); the
// returned Message owns its data and does not refer to `frame`.
Result<Message> Decode(ByteView frame, const Limits& limits = {});

}  // namespace dpnode::protocol

#endif  // DPNODE_PROTOCOL_CODEC_H_
