// CipherState of the Noise spec (rev 34, section 5.1): a ChaChaPoly key k
// (possibly empty) and a 64-bit counter nonce n. The handshake uses one inside
// SymmetricState; after Split() each direction of a transport session owns one.
//
// Differences from the spec's pseudocode, all refusals rather than behaviour:
//   - nonce 2^64-1 is never used: EncryptWithAd/DecryptWithAd return
//     kOutOfRange once n reaches it (the session must end or rekey-and-reset
//     out of band; Rekey() does not reset n, as in the spec);
//   - a ciphertext longer than 65535 bytes (a Noise message) is refused.
// A failed DecryptWithAd leaves n unchanged (spec 5.1), so a replayed,
// reordered or forged transport message fails and the next genuine one still
// decrypts; the secure channel closes the session on the first failure anyway.
// Not thread-safe; the key is wiped on destruction.
#ifndef DPNODE_CRYPTO_NOISE_CIPHER_STATE_H_
#define DPNODE_CRYPTO_NOISE_CIPHER_STATE_H_

#include <cstdint>

#include "base/status.h"
#include "crypto/bytes.h"
#include "crypto/noise_primitives.h"

namespace dpnode::crypto::noise {

class CipherState {
 public:
  CipherState() = default;  // empty key: EncryptWithAd passes plaintext through
  explicit CipherState(const SymmetricKey& key) { InitializeKey(key); }

  // Sets k = key and n = 0.
  void InitializeKey(const SymmetricKey& key);
  bool HasKey() const { return has_key_; }

  // Out-of-band nonce control (spec 5.1 SetNonce); tests use it to reach the
  // end of the nonce space.
  void SetNonce(uint64_t nonce) { nonce_ = nonce; }
  uint64_t nonce() const { return nonce_; }

  // With a key: ENCRYPT(k, n++, ad, plaintext), plaintext.size() + 16 bytes.
  // Without a key: a copy of plaintext. Fails with kOutOfRange when n is
  // 2^64-1 and kInvalidArgument when the result would exceed 65535 bytes.
  Result<Bytes> EncryptWithAd(ByteView ad, ByteView plaintext);
  // With a key: DECRYPT(k, n, ad, ciphertext) and n++ on success only.
  // kCorruption on authentication failure. Without a key: a copy.
  Result<Bytes> DecryptWithAd(ByteView ad, ByteView ciphertext);

  // The same operations without allocating, for bulk transport data (the
  // secure channel's records). Same refusals and nonce rules as above.
  //
  // EncryptInPlace: `buffer` holds `plaintext_len` bytes of plaintext and has
  // room for kTagLen more; on success it holds ciphertext || tag
  // (plaintext_len + kTagLen bytes). Without a key it is left as is and the
  // result is plaintext_len bytes (nothing is appended).
  Status EncryptInPlace(ByteView ad, uint8_t* buffer, size_t plaintext_len);
  // DecryptInto: writes the ciphertext.size() - kTagLen plaintext bytes
  // (ciphertext.size() without a key) to `out`, which may be exactly
  // ciphertext.data() (in place) or must not overlap it. On failure `out` is
  // left unspecified and n unchanged.
  Status DecryptInto(ByteView ad, ByteView ciphertext, uint8_t* out);

  // k = REKEY(k); n is unchanged. kFailedPrecondition without a key.
  Status Rekey();

 private:
  SymmetricKey key_;
  bool has_key_ = false;
  uint64_t nonce_ = 0;
};

}  // namespace dpnode::crypto::noise

#endif  // DPNODE_CRYPTO_NOISE_CIPHER_STATE_H_
