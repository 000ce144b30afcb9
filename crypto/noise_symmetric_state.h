// SymmetricState of the Noise spec (rev 34, section 5.2): the chaining key ck,
// the handshake hash h and the CipherState they key. HandshakeState drives it
// token by token; it is public so tests can exercise the pieces.
//
// HASHLEN is 64 and ChaChaPoly keys are 32 bytes, so every temp_k taken from
// HKDF is truncated to its first 32 bytes, as the spec requires. Secrets are
// wiped on destruction. Not thread-safe.
#ifndef DPNODE_CRYPTO_NOISE_SYMMETRIC_STATE_H_
#define DPNODE_CRYPTO_NOISE_SYMMETRIC_STATE_H_

#include <string_view>
#include <utility>

#include "base/status.h"
#include "crypto/bytes.h"
#include "crypto/noise_cipher_state.h"
#include "crypto/noise_primitives.h"

namespace dpnode::crypto::noise {

class SymmetricState {
 public:
  // InitializeSymmetric(protocol_name): h = name zero-padded to 64 bytes if it
  // fits, else HASH(name); ck = h; empty key.
  explicit SymmetricState(std::string_view protocol_name);

  void MixKey(ByteView input_key_material);
  void MixHash(ByteView data);
  void MixKeyAndHash(ByteView input_key_material);  // for psk tokens

  // h: binds everything said so far; after the handshake it identifies the
  // session (channel binding, e.g. what a signature should cover).
  const HashOutput& handshake_hash() const { return h_; }
  bool HasKey() const { return cipher_.HasKey(); }

  // ciphertext = EncryptWithAd(h, plaintext); MixHash(ciphertext).
  Result<Bytes> EncryptAndHash(ByteView plaintext);
  // plaintext = DecryptWithAd(h, ciphertext); MixHash(ciphertext). On failure
  // h is unchanged, but the handshake must be abandoned anyway.
  Result<Bytes> DecryptAndHash(ByteView ciphertext);

  // The two transport CipherStates: first for initiator -> responder, second
  // for responder -> initiator.
  std::pair<CipherState, CipherState> Split() const;

 private:
  HashOutput ck_;
  HashOutput h_;
  CipherState cipher_;
};

}  // namespace dpnode::crypto::noise

#endif  // DPNODE_CRYPTO_NOISE_SYMMETRIC_STATE_H_
