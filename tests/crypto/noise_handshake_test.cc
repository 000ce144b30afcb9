// HandshakeState with random keys: the XX handshake dpnode uses, transport
// after Split(), and every refusal the secure channel relies on (tampering,
// wrong prologue, out-of-order use, oversize messages, bad configs,
// low-order keys).
#include "crypto/noise_handshake.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "tests/crypto/noise_test_util.h"

namespace dpnode::crypto::noise {
namespace {

using testing::CompleteHandshake;
using testing::MustCreate;
using testing::RandomKeyPair;
using testing::Text;

constexpr char kXX[] = "Noise_XX_25519_ChaChaPoly_BLAKE2b";

struct XXPair {
  KeyPair init_static = RandomKeyPair();
  KeyPair resp_static = RandomKeyPair();
  HandshakeConfig init_config;
  HandshakeConfig resp_config;

  XXPair() {
    init_config.protocol_name = kXX;
    init_config.role = Role::kInitiator;
    init_config.prologue = Text("dpnode/1 consortium-test");
    init_config.local_static = init_static;
    resp_config = init_config;
    resp_config.role = Role::kResponder;
    resp_config.local_static = resp_static;
  }
};

// The three XX messages written and read in order; `tamper_at` (message,
// byte) flips one bit of that message in transit. Returns the index of the
// first message whose ReadMessage failed, or -1.
int RunXXWithTamper(int tamper_message, size_t tamper_byte, StatusCode* code) {
  XXPair keys;
  HandshakeState init = MustCreate(keys.init_config);
  HandshakeState resp = MustCreate(keys.resp_config);
  for (int i = 0; i < 3; ++i) {
    HandshakeState& writer = i % 2 == 0 ? init : resp;
    HandshakeState& reader = i % 2 == 0 ? resp : init;
    Result<Bytes> message = writer.WriteMessage(Text("payload " + std::to_string(i)));
    if (!message.ok()) {
      *code = message.status().code();
      return i;
    }
    Bytes wire = *message;
    if (i == tamper_message) wire[tamper_byte] ^= 0x01;
    Result<Bytes> read = reader.ReadMessage(wire);
    if (!read.ok()) {
      *code = read.status().code();
      CHECK(reader.HasFailed());
      return i;
    }
  }
  return -1;
}

TEST_CASE("XX handshake with random keys authenticates both statics and agrees on h") {
  XXPair keys;
  HandshakeState init = MustCreate(keys.init_config);
  HandshakeState resp = MustCreate(keys.resp_config);
  CHECK(init.IsMyTurn());
  CHECK_FALSE(resp.IsMyTurn());

  Result<Bytes> m1 = init.WriteMessage(Text("hello"));
  REQUIRE(m1.ok());
  CHECK(m1->size() == 32 + 5);  // e, then the payload in the clear (no key yet)
  REQUIRE(resp.ReadMessage(*m1).ok());
  CHECK_FALSE(resp.remote_static().has_value());

  Result<Bytes> m2 = resp.WriteMessage(Text("responder id"));
  REQUIRE(m2.ok());
  CHECK(m2->size() == 32 + 48 + 12 + 16);  // e, encrypted s, encrypted payload
  Result<Bytes> p2 = init.ReadMessage(*m2);
  REQUIRE(p2.ok());
  CHECK(*p2 == Text("responder id"));
  REQUIRE(init.remote_static().has_value());
  CHECK(*init.remote_static() == keys.resp_static.public_key);

  Result<Bytes> m3 = init.WriteMessage(Text("initiator id"));
  REQUIRE(m3.ok());
  CHECK(m3->size() == 48 + 12 + 16);
  REQUIRE(resp.ReadMessage(*m3).ok());
  REQUIRE(resp.remote_static().has_value());
  CHECK(*resp.remote_static() == keys.init_static.public_key);

  CHECK(init.IsComplete());
  CHECK(resp.IsComplete());
  CHECK_FALSE(init.IsMyTurn());
  CHECK(ConstantTimeEqual(init.handshake_hash(), resp.handshake_hash()));

  // A second, independent handshake with the same statics has a different h
  // (fresh ephemerals).
  HandshakeState init2 = MustCreate(keys.init_config);
  HandshakeState resp2 = MustCreate(keys.resp_config);
  CompleteHandshake(&init2, &resp2);
  CHECK_FALSE(ConstantTimeEqual(init.handshake_hash(), init2.handshake_hash()));
}

TEST_CASE("transport after XX: both directions round-trip, keys differ per direction") {
  XXPair keys;
  HandshakeState init = MustCreate(keys.init_config);
  HandshakeState resp = MustCreate(keys.resp_config);
  CompleteHandshake(&init, &resp);
  Result<TransportCiphers> ic = init.Split();
  Result<TransportCiphers> rc = resp.Split();
  REQUIRE(ic.ok());
  REQUIRE(rc.ok());
  REQUIRE((ic->send && ic->receive && rc->send && rc->receive));
  CHECK(init.Split().status().code() == StatusCode::kFailedPrecondition);  // only once

  for (int i = 0; i < 20; ++i) {
    Bytes a = Text("to responder " + std::to_string(i));
    Bytes b = Text("to initiator " + std::to_string(i));
    Result<Bytes> ca = ic->send->EncryptWithAd(ByteView(), a);
    Result<Bytes> cb = rc->send->EncryptWithAd(ByteView(), b);
    REQUIRE(ca.ok());
    REQUIRE(cb.ok());
    Result<Bytes> pa = rc->receive->DecryptWithAd(ByteView(), *ca);
    Result<Bytes> pb = ic->receive->DecryptWithAd(ByteView(), *cb);
    REQUIRE(pa.ok());
    REQUIRE(pb.ok());
    CHECK(*pa == a);
    CHECK(*pb == b);
  }
  // A message reflected back to its sender does not decrypt: directions use
  // different keys.
  Bytes reflected = *ic->send->EncryptWithAd(ByteView(), Text("reflect me"));
  CHECK(ic->receive->DecryptWithAd(ByteView(), reflected).status().code() ==
        StatusCode::kCorruption);
  // Replay of an earlier transport message is refused.
  Bytes once = *ic->send->EncryptWithAd(ByteView(), Text("once"));
  CipherState& r = *rc->receive;
  // The reflected message consumed a sender nonce the receiver never saw.
  r.SetNonce(r.nonce() + 1);
  REQUIRE(r.DecryptWithAd(ByteView(), once).ok());
  CHECK(r.DecryptWithAd(ByteView(), once).status().code() == StatusCode::kCorruption);
}

TEST_CASE("a flipped bit anywhere in XX messages 2 and 3 is refused on read") {
  for (int message = 1; message <= 2; ++message) {
    const size_t size = message == 1 ? 32 + 48 + 9 + 16 : 48 + 9 + 16;  // "payload N" is 9 bytes
    for (size_t byte = 0; byte < size; ++byte) {
      CAPTURE(message);
      CAPTURE(byte);
      StatusCode code = StatusCode::kOk;
      CHECK(RunXXWithTamper(message, byte, &code) == message);
      CHECK(code == StatusCode::kCorruption);
    }
  }
}

TEST_CASE("a flipped bit in XX message 1 (unauthenticated) is caught at message 2") {
  // Message 1 is e plus a clear payload: nothing to verify yet. Changing e
  // changes the responder's ee and h; changing the payload changes h. Either
  // way the initiator cannot decrypt message 2.
  for (size_t byte = 0; byte < 32 + 9; ++byte) {
    CAPTURE(byte);
    StatusCode code = StatusCode::kOk;
    CHECK(RunXXWithTamper(0, byte, &code) == 1);
    CHECK(code == StatusCode::kCorruption);
  }
}

TEST_CASE("truncated or extended handshake messages are refused") {
  for (int delta : {-1, +1}) {
    XXPair keys;
    HandshakeState init = MustCreate(keys.init_config);
    HandshakeState resp = MustCreate(keys.resp_config);
    REQUIRE(resp.ReadMessage(*init.WriteMessage(ByteView())).ok());
    Bytes m2 = *resp.WriteMessage(Text("p"));
    m2.resize(m2.size() + delta);
    CHECK(init.ReadMessage(m2).status().code() == StatusCode::kCorruption);
  }
  XXPair keys;
  HandshakeState resp = MustCreate(keys.resp_config);
  CHECK(resp.ReadMessage(Bytes(31)).status().code() == StatusCode::kCorruption);
}

TEST_CASE("a wrong prologue is refused at the first authenticated message") {
  SUBCASE("XX: at message 2") {
    XXPair keys;
    keys.resp_config.prologue = Text("dpnode/1 another-consortium");
    HandshakeState init = MustCreate(keys.init_config);
    HandshakeState resp = MustCreate(keys.resp_config);
    REQUIRE(resp.ReadMessage(*init.WriteMessage(ByteView())).ok());
    Result<Bytes> m2 = resp.WriteMessage(ByteView());
    REQUIRE(m2.ok());
    CHECK(init.ReadMessage(*m2).status().code() == StatusCode::kCorruption);
    CHECK(init.HasFailed());
  }
  SUBCASE("IK: at message 1") {
    KeyPair init_static = RandomKeyPair();
    KeyPair resp_static = RandomKeyPair();
    HandshakeConfig ic;
    ic.protocol_name = "Noise_IK_25519_ChaChaPoly_BLAKE2b";
    ic.prologue = Text("version 1");
    ic.local_static = init_static;
    ic.remote_static = resp_static.public_key;
    HandshakeConfig rc;
    rc.protocol_name = ic.protocol_name;
    rc.role = Role::kResponder;
    rc.prologue = Text("version 2");
    rc.local_static = resp_static;
    HandshakeState init = MustCreate(ic);
    HandshakeState resp = MustCreate(rc);
    CHECK(resp.ReadMessage(*init.WriteMessage(Text("x"))).status().code() ==
          StatusCode::kCorruption);
  }
}

TEST_CASE("out-of-order use is refused and leaves the state usable") {
  XXPair keys;
  HandshakeState init = MustCreate(keys.init_config);
  HandshakeState resp = MustCreate(keys.resp_config);
  CHECK(init.ReadMessage(Bytes(64)).status().code() == StatusCode::kFailedPrecondition);
  CHECK(resp.WriteMessage(ByteView()).status().code() == StatusCode::kFailedPrecondition);
  CHECK(init.Split().status().code() == StatusCode::kFailedPrecondition);
  CHECK_FALSE(init.HasFailed());
  CHECK_FALSE(resp.HasFailed());
  CompleteHandshake(&init, &resp);
  CHECK(init.WriteMessage(ByteView()).status().code() == StatusCode::kFailedPrecondition);
  CHECK(resp.ReadMessage(Bytes(64)).status().code() == StatusCode::kFailedPrecondition);
}

TEST_CASE("after a failed read the handshake stays dead") {
  XXPair keys;
  HandshakeState init = MustCreate(keys.init_config);
  HandshakeState resp = MustCreate(keys.resp_config);
  REQUIRE(resp.ReadMessage(*init.WriteMessage(ByteView())).ok());
  Bytes m2 = *resp.WriteMessage(ByteView());
  Bytes bad = m2;
  bad.back() ^= 0x80;
  CHECK(init.ReadMessage(bad).status().code() == StatusCode::kCorruption);
  CHECK(init.HasFailed());
  CHECK_FALSE(init.IsMyTurn());
  // Even the genuine message is no longer accepted: h has moved on.
  CHECK(init.ReadMessage(m2).status().code() == StatusCode::kFailedPrecondition);
  CHECK(init.WriteMessage(ByteView()).status().code() == StatusCode::kFailedPrecondition);
}

TEST_CASE("handshake messages over 65535 bytes are refused before any state change") {
  XXPair keys;
  HandshakeState init = MustCreate(keys.init_config);
  HandshakeState resp = MustCreate(keys.resp_config);
  // Message 1 is 32 bytes of e plus the clear payload.
  CHECK(init.WriteMessage(Bytes(kMaxMessageLen - 32 + 1)).status().code() ==
        StatusCode::kInvalidArgument);
  CHECK_FALSE(init.HasFailed());
  Result<Bytes> largest = init.WriteMessage(Bytes(kMaxMessageLen - 32));
  REQUIRE(largest.ok());
  CHECK(largest->size() == kMaxMessageLen);
  REQUIRE(resp.ReadMessage(*largest).ok());
  // Message 2 carries e, s + tag and payload + tag.
  CHECK(resp.WriteMessage(Bytes(kMaxMessageLen - 32 - 48 - 16 + 1)).status().code() ==
        StatusCode::kInvalidArgument);
  Result<Bytes> m2 = resp.WriteMessage(Bytes(kMaxMessageLen - 32 - 48 - 16));
  REQUIRE(m2.ok());
  CHECK(m2->size() == kMaxMessageLen);
  REQUIRE(init.ReadMessage(*m2).ok());

  HandshakeState fresh = MustCreate(keys.resp_config);
  CHECK(fresh.ReadMessage(Bytes(kMaxMessageLen + 1)).status().code() ==
        StatusCode::kInvalidArgument);
  CHECK_FALSE(fresh.HasFailed());
}

TEST_CASE("a low-order ephemeral key from the peer is refused") {
  XXPair keys;
  HandshakeState resp = MustCreate(keys.resp_config);
  REQUIRE(resp.ReadMessage(Bytes(32, 0)).ok());  // e = 0: nothing to check yet
  CHECK(resp.WriteMessage(ByteView()).status().code() == StatusCode::kCorruption);  // ee fails
  CHECK(resp.HasFailed());
}

TEST_CASE("configs that do not fit the pattern are refused by Create") {
  KeyPair s = RandomKeyPair();
  HandshakeConfig c;
  c.protocol_name = kXX;
  SUBCASE("XX initiator without a static key") {
    CHECK(HandshakeState::Create(c).status().code() == StatusCode::kInvalidArgument);
  }
  SUBCASE("XX with a remote static key it would overwrite") {
    c.local_static = s;
    c.remote_static = s.public_key;
    CHECK(HandshakeState::Create(c).status().code() == StatusCode::kInvalidArgument);
  }
  SUBCASE("NK initiator without the responder's key") {
    c.protocol_name = "Noise_NK_25519_ChaChaPoly_BLAKE2b";
    CHECK(HandshakeState::Create(c).status().code() == StatusCode::kInvalidArgument);
  }
  SUBCASE("psk count must match the pattern") {
    c.protocol_name = "Noise_XXpsk3_25519_ChaChaPoly_BLAKE2b";
    c.local_static = s;
    CHECK(HandshakeState::Create(c).status().code() == StatusCode::kInvalidArgument);
    c.psks.emplace_back();
    CHECK(HandshakeState::Create(c).ok());
    c.psks.emplace_back();
    CHECK(HandshakeState::Create(c).status().code() == StatusCode::kInvalidArgument);
  }
  SUBCASE("unsupported protocols") {
    c.local_static = s;
    for (const char* name :
         {"Noise_XX_25519_AESGCM_SHA256", "Noise_XXfallback_25519_ChaChaPoly_BLAKE2b",
          "Noise_ZZ_25519_ChaChaPoly_BLAKE2b", "Noise_XX_448_ChaChaPoly_BLAKE2b"}) {
      CAPTURE(name);
      c.protocol_name = name;
      CHECK(HandshakeState::Create(c).status().code() == StatusCode::kNotFound);
    }
    c.protocol_name = "XX_25519_ChaChaPoly_BLAKE2b";
    CHECK(HandshakeState::Create(c).status().code() == StatusCode::kInvalidArgument);
  }
}

TEST_CASE("a wrong PSK is refused") {
  KeyPair resp_static = RandomKeyPair();
  KeyPair init_static = RandomKeyPair();
  HandshakeConfig ic;
  ic.protocol_name = "Noise_XXpsk3_25519_ChaChaPoly_BLAKE2b";
  ic.local_static = init_static;
  ic.psks.emplace_back(testing::Hex(std::string(64, '1')));
  HandshakeConfig rc = ic;
  rc.role = Role::kResponder;
  rc.local_static = resp_static;
  rc.psks[0] = SymmetricKey(testing::Hex(std::string(64, '2')));
  HandshakeState init = MustCreate(ic);
  HandshakeState resp = MustCreate(rc);
  REQUIRE(resp.ReadMessage(*init.WriteMessage(ByteView())).ok());
  REQUIRE(init.ReadMessage(*resp.WriteMessage(ByteView())).ok());
  // The psk is mixed in at the end of message 3.
  CHECK(resp.ReadMessage(*init.WriteMessage(ByteView())).status().code() ==
        StatusCode::kCorruption);
}

}  // namespace
}  // namespace dpnode::crypto::noise
