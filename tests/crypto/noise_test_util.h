// Helpers shared by the Noise unit tests: hex literals and driving two
// HandshakeStates against each other in memory.
#ifndef DPNODE_TESTS_CRYPTO_NOISE_TEST_UTIL_H_
#define DPNODE_TESTS_CRYPTO_NOISE_TEST_UTIL_H_

#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <utility>

#include "crypto/bytes.h"
#include "crypto/noise_handshake.h"

namespace dpnode::crypto::noise::testing {

inline Bytes Hex(std::string_view hex) {
  Result<Bytes> bytes = HexDecode(hex);
  REQUIRE(bytes.ok());
  return *bytes;
}

inline Bytes Text(std::string_view s) { return AsBytes(s).ToBytes(); }

inline KeyPair RandomKeyPair() {
  Result<KeyPair> pair = KeyPair::Generate();
  REQUIRE(pair.ok());
  return *pair;
}

inline HandshakeState MustCreate(HandshakeConfig config) {
  Result<HandshakeState> hs = HandshakeState::Create(std::move(config));
  REQUIRE_MESSAGE(hs.ok(), hs.status().ToString());
  return std::move(hs).value();
}

// Plays the handshake to completion, writer by writer, with payload
// "payload <i>" in message i; every step must succeed.
inline void CompleteHandshake(HandshakeState* init, HandshakeState* resp) {
  for (int i = 0; !init->IsComplete(); ++i) {
    REQUIRE(i < 10);
    const bool init_writes = init->IsMyTurn();
    REQUIRE(init_writes != resp->IsMyTurn());
    HandshakeState* writer = init_writes ? init : resp;
    HandshakeState* reader = init_writes ? resp : init;
    Bytes payload = Text("payload " + std::to_string(i));
    Result<Bytes> message = writer->WriteMessage(payload);
    REQUIRE_MESSAGE(message.ok(), message.status().ToString());
    Result<Bytes> read = reader->ReadMessage(*message);
    REQUIRE_MESSAGE(read.ok(), read.status().ToString());
    CHECK(*read == payload);
  }
  REQUIRE(resp->IsComplete());
}

}  // namespace dpnode::crypto::noise::testing

#endif  // DPNODE_TESTS_CRYPTO_NOISE_TEST_UTIL_H_
