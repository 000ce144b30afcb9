// HandshakeState of the Noise spec (rev 34, section 5.3) for
// Noise_<pattern>_25519_ChaChaPoly_BLAKE2b: a sans-I/O state machine. The
// caller moves bytes; this object never touches sockets, clocks, threads or
// globals. Keys, the prologue and PSKs come in through HandshakeConfig;
// ephemeral keys come from libsodium's CSPRNG unless the config fixes one
// (test vectors do).
//
//   auto hs = HandshakeState::Create(config);          // validates everything up front
//   while (!hs->IsComplete())
//     hs->IsMyTurn() ? send(hs->WriteMessage(payload)) : hs->ReadMessage(received);
//   auto transport = hs->Split();                      // two CipherStates
//
// Errors:
//   Create: kNotFound (unsupported protocol name), kInvalidArgument (a key or
//     PSK the pattern needs is missing, or one it cannot use is given).
//   WriteMessage/ReadMessage: kFailedPrecondition when used out of turn, after
//     completion or after a failure (state unchanged); kInvalidArgument for a
//     message over 65535 bytes (state unchanged); kCorruption for a message
//     that is too short, fails authentication or carries a low-order key.
//     After kCorruption the handshake is dead (HasFailed()): every later call
//     fails, because h and ck have already absorbed part of the bad message.
// The remote static key learned in a handshake is NOT authenticated against
// anything here: the caller must check remote_static() (e.g. against pinned
// keys) before trusting the session.
// Secrets (private keys, PSKs, ck, h, cipher keys) live in SecretArray and are
// zeroed when this object is destroyed. Not thread-safe.
#ifndef DPNODE_CRYPTO_NOISE_HANDSHAKE_H_
#define DPNODE_CRYPTO_NOISE_HANDSHAKE_H_

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "crypto/bytes.h"
#include "crypto/noise_cipher_state.h"
#include "crypto/noise_pattern.h"
#include "crypto/noise_primitives.h"
#include "crypto/noise_symmetric_state.h"

namespace dpnode::crypto::noise {

enum class Role { kInitiator, kResponder };

struct HandshakeConfig {
  std::string protocol_name = "Noise_XX_25519_ChaChaPoly_BLAKE2b";
  Role role = Role::kInitiator;
  // Bound into h before any message; both sides must pass identical bytes or
  // the first authenticated message fails.
  Bytes prologue;
  // s: required if the pattern sends or uses our static key.
  std::optional<KeyPair> local_static;
  // rs: only for patterns where the peer's static key is a pre-message
  // (e.g. NK, IK, KK); refused otherwise, since a key learned in-band would
  // silently replace it.
  std::optional<PublicKey> remote_static;
  // e: leave unset in production (a fresh CSPRNG key per handshake). Test
  // vectors fix it; reusing an ephemeral key across handshakes breaks Noise's
  // security, so never set it from anything persistent.
  std::optional<KeyPair> local_ephemeral;
  // re: only for patterns with the peer's ephemeral key as a pre-message.
  std::optional<PublicKey> remote_ephemeral;
  // One 32-byte PSK per psk token, in the order the tokens occur.
  std::vector<SymmetricKey> psks;
};

// The two transport directions after Split(). One-way patterns (N, K, X) have
// only initiator -> responder: the initiator has no `receive`, the responder
// no `send`.
struct TransportCiphers {
  std::optional<CipherState> send;
  std::optional<CipherState> receive;
};

class HandshakeState {
 public:
  static Result<HandshakeState> Create(HandshakeConfig config);

  HandshakeState(HandshakeState&&) = default;
  HandshakeState& operator=(HandshakeState&&) = default;
  HandshakeState(const HandshakeState&) = delete;
  HandshakeState& operator=(const HandshakeState&) = delete;

  // Produces the next handshake message carrying `payload` (encrypted once a
  // key is established, plaintext before). Precondition for success: IsMyTurn().
  Result<Bytes> WriteMessage(ByteView payload);
  // Consumes the peer's next handshake message and returns its payload.
  Result<Bytes> ReadMessage(ByteView message);

  bool IsMyTurn() const;  // false once complete or failed
  bool IsComplete() const { return complete_; }
  bool HasFailed() const { return failed_; }
  Role role() const { return role_; }
  const HandshakePattern& pattern() const { return pattern_; }
  // Messages processed so far (written or read).
  size_t message_index() const { return message_index_; }

  // h so far; after completion, the session's unique transcript hash.
  const HashOutput& handshake_hash() const { return symmetric_.handshake_hash(); }
  // rs: the peer's static key once known (pre-message or received), else empty.
  const std::optional<PublicKey>& remote_static() const { return remote_static_; }
  const std::optional<PublicKey>& remote_ephemeral() const { return remote_ephemeral_; }

  // Hands out the transport CipherStates, once, after completion;
  // kFailedPrecondition before completion or on a second call.
  Result<TransportCiphers> Split();

 private:
  HandshakeState(HandshakeConfig config, HandshakePattern pattern);

  bool IsInitiator() const { return role_ == Role::kInitiator; }
  Status MixDh(const std::optional<KeyPair>& local, const std::optional<PublicKey>& remote);
  Status ProcessDhOrPsk(Token token);
  Result<Bytes> Fail(Status status);
  void FinishMessage();

  HandshakePattern pattern_;
  Role role_;
  SymmetricState symmetric_;
  std::optional<KeyPair> local_static_;
  std::optional<KeyPair> local_ephemeral_;
  std::optional<PublicKey> remote_static_;
  std::optional<PublicKey> remote_ephemeral_;
  std::vector<SymmetricKey> psks_;
  size_t next_psk_ = 0;
  size_t message_index_ = 0;
  bool complete_ = false;
  bool failed_ = false;
  std::optional<TransportCiphers> transport_;
};

}  // namespace dpnode::crypto::noise

#endif  // DPNODE_CRYPTO_NOISE_HANDSHAKE_H_
