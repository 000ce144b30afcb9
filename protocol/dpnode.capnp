# dpnode's wire messages: what one site says to another inside the secure
# channel. Serialization only (no capnp RPC). Every frame carries exactly one
# Envelope. The C++ side never hands these generated types to the rest of
# dpnode: protocol/codec.h converts them to the plain structs of
# protocol/messages.h and validates them (limits and rules: docs/protocol.md).
#
# Versioning: fields are only ever appended (new ordinals), never renumbered
# or retyped, and a breaking change bumps kProtocolVersion (messages.h).

@0xf3a7618a30df031f;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("dpnode::protocol::wire");

# First message on a session, both ways. A peer that speaks another protocol
# version, belongs to another consortium or trains another model gets a
# Goodbye saying so.
struct Hello {
  protocolVersion @0 :UInt32;
  consortiumId @1 :Text;
  modelFingerprint @2 :Data;    # 32 bytes (BLAKE2b-256 of the model definition)
  siteName @3 :Text;
  capabilities @4 :UInt64;      # bitset; unknown bits are ignored
}

struct Address {
  host @0 :Text;                # DNS name or IP literal
  port @1 :UInt16;
}

# Where a site can be reached, signed by the site's Ed25519 identity key.
# The signature covers a canonical byte string (protocol/peer_record.h), not
# these capnp bytes, so re-encoding never invalidates it.
struct PeerRecord {
  siteKey @0 :Data;             # 32-byte Ed25519 public key
  addresses @1 :List(Address);
  sequence @2 :UInt64;          # higher replaces lower for the same key
  signature @3 :Data;           # 64-byte Ed25519 signature
}

enum DType {
  float32 @0;
  float64 @1;
}

# One named model tensor; data is the row-major values in little-endian.
struct Tensor {
  name @0 :Text;
  shape @1 :List(UInt64);
  dtype @2 :DType;
  data @3 :Data;
}

# A push-sum share of the sender's model state.
struct GossipShare {
  round @0 :UInt64;
  weight @1 :Float64;           # push-sum weight, finite and > 0
  localSteps @2 :UInt64;        # DP-SGD steps the sender has taken
  epsilonSpent @3 :Float64;     # sender's ε so far (informational)
  tensors @4 :List(Tensor);
}

# Liveness (SWIM-like): a ProbeAck echoes the Probe's nonce and sequence.
struct Probe {
  nonce @0 :UInt64;
  sequence @1 :UInt64;
}

struct ProbeAck {
  nonce @0 :UInt64;
  sequence @1 :UInt64;
}

enum GoodbyeReason {
  unspecified @0;
  shutdown @1;
  versionMismatch @2;
  consortiumMismatch @3;
  modelMismatch @4;
  protocolViolation @5;
  trainingDone @6;
}

struct Goodbye {
  reason @0 :GoodbyeReason;
  text @1 :Text;
}

struct Envelope {
  union {
    hello @0 :Hello;
    peerRecord @1 :PeerRecord;
    gossipShare @2 :GossipShare;
    probe @3 :Probe;
    probeAck @4 :ProbeAck;
    goodbye @5 :Goodbye;
  }
}
