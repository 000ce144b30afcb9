// CipherState: nonce bookkeeping and refusals around ChaChaPoly.
#include "crypto/noise_cipher_state.h"

#include <string>

namespace dpnode::crypto::noise {

void CipherState::InitializeKey(const SymmetricKey& key) {
  key_ = key;
  has_key_ = true;
  nonce_ = 0;
}

Result<Bytes> CipherState::EncryptWithAd(ByteView ad, ByteView plaintext) {
  if (!has_key_) {
    if (plaintext.size() > kMaxMessageLen) {
      return Status::InvalidArgument("plaintext of " + std::to_string(plaintext.size()) +
                                     " bytes exceeds the Noise message limit of 65535");
    }
    return plaintext.ToBytes();
  }
  if (plaintext.size() > kMaxMessageLen - kTagLen) {
    return Status::InvalidArgument("plaintext of " + std::to_string(plaintext.size()) +
                                   " bytes exceeds the Noise limit of 65519 (65535 - tag)");
  }
  if (nonce_ == kMaxNonce) {
    return Status::OutOfRange("nonce space exhausted (n = 2^64-1 is reserved)");
  }
  Bytes out = ChaChaPolyEncrypt(key_, nonce_, ad, plaintext);
  ++nonce_;
  return out;
}

Result<Bytes> CipherState::DecryptWithAd(ByteView ad, ByteView ciphertext) {
  if (ciphertext.size() > kMaxMessageLen) {
    return Status::InvalidArgument("ciphertext of " + std::to_string(ciphertext.size()) +
                                   " bytes exceeds the Noise message limit of 65535");
  }
  if (!has_key_) return ciphertext.ToBytes();
  if (nonce_ == kMaxNonce) {
    return Status::OutOfRange("nonce space exhausted (n = 2^64-1 is reserved)");
  }
  Result<Bytes> plaintext = ChaChaPolyDecrypt(key_, nonce_, ad, ciphertext);
  if (!plaintext.ok()) return plaintext.status();
  ++nonce_;
  return plaintext;
}

Status CipherState::Rekey() {
  if (!has_key_) return Status::FailedPrecondition("Rekey() on a CipherState without a key");
  key_ = ChaChaPolyRekey(key_);
  return Status::Ok();
}

}  // namespace dpnode::crypto::noise
