// CipherState: nonce bookkeeping and refusals around ChaChaPoly.
#include "crypto/noise_cipher_state.h"

#include <sodium.h>

#include <array>
#include <cstring>
#include <string>

namespace dpnode::crypto::noise {
namespace {

// ChaChaPoly's Noise nonce: 32 zero bits, then n as a little-endian u64.
std::array<uint8_t, crypto_aead_chacha20poly1305_ietf_NPUBBYTES> NonceBytes(uint64_t n) {
  std::array<uint8_t, crypto_aead_chacha20poly1305_ietf_NPUBBYTES> nonce{};
  for (int i = 0; i < 8; ++i) nonce[4 + i] = static_cast<uint8_t>(n >> (8 * i));
  return nonce;
}

}  // namespace

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

Status CipherState::EncryptInPlace(ByteView ad, uint8_t* buffer, size_t plaintext_len) {
  if (!has_key_) {
    if (plaintext_len > kMaxMessageLen) {
      return Status::InvalidArgument("plaintext of " + std::to_string(plaintext_len) +
                                     " bytes exceeds the Noise message limit of 65535");
    }
    return Status::Ok();
  }
  if (plaintext_len > kMaxMessageLen - kTagLen) {
    return Status::InvalidArgument("plaintext of " + std::to_string(plaintext_len) +
                                   " bytes exceeds the Noise limit of 65519 (65535 - tag)");
  }
  if (nonce_ == kMaxNonce) {
    return Status::OutOfRange("nonce space exhausted (n = 2^64-1 is reserved)");
  }
  const auto npub = NonceBytes(nonce_);
  unsigned long long mac_len = 0;
  // Detached, so the tag lands right after the ciphertext with no copy;
  // libsodium allows the ciphertext to overwrite the plaintext.
  crypto_aead_chacha20poly1305_ietf_encrypt_detached(buffer, buffer + plaintext_len, &mac_len,
                                                     buffer, plaintext_len, ad.data(), ad.size(),
                                                     nullptr, npub.data(), key_.data());
  DPNODE_CHECK(mac_len == kTagLen, "AEAD tag of %llu bytes", mac_len);
  ++nonce_;
  return Status::Ok();
}

Status CipherState::DecryptInto(ByteView ad, ByteView ciphertext, uint8_t* out) {
  if (ciphertext.size() > kMaxMessageLen) {
    return Status::InvalidArgument("ciphertext of " + std::to_string(ciphertext.size()) +
                                   " bytes exceeds the Noise message limit of 65535");
  }
  if (!has_key_) {
    if (out != ciphertext.data() && !ciphertext.empty()) {
      std::memmove(out, ciphertext.data(), ciphertext.size());
    }
    return Status::Ok();
  }
  if (nonce_ == kMaxNonce) {
    return Status::OutOfRange("nonce space exhausted (n = 2^64-1 is reserved)");
  }
  if (ciphertext.size() < kTagLen) {
    return Status::Corruption("ciphertext of " + std::to_string(ciphertext.size()) +
                              " bytes is shorter than the authentication tag");
  }
  const size_t len = ciphertext.size() - kTagLen;
  const auto npub = NonceBytes(nonce_);
  // Detached: libsodium checks the tag before writing any plaintext.
  if (crypto_aead_chacha20poly1305_ietf_decrypt_detached(
          out, nullptr, ciphertext.data(), len, ciphertext.data() + len, ad.data(), ad.size(),
          npub.data(), key_.data()) != 0) {
    return Status::Corruption("authentication failed (bad tag, wrong key or wrong nonce)");
  }
  ++nonce_;
  return Status::Ok();
}

Status CipherState::Rekey() {
  if (!has_key_) return Status::FailedPrecondition("Rekey() on a CipherState without a key");
  key_ = ChaChaPolyRekey(key_);
  return Status::Ok();
}

}  // namespace dpnode::crypto::noise
