// SymmetricState: HKDF chaining and transcript hashing for the handshake.
#include "crypto/noise_symmetric_state.h"

namespace dpnode::crypto::noise {
namespace {

SymmetricKey Truncate(const HashOutput& temp_k) {
  return SymmetricKey(temp_k.view().Sub(0, kKeyLen));
}

}  // namespace

SymmetricState::SymmetricState(std::string_view protocol_name) {
  if (protocol_name.size() <= kHashLen) {
    std::copy(protocol_name.begin(), protocol_name.end(), h_.data());  // rest stays zero
  } else {
    h_ = Blake2b512(AsBytes(protocol_name));
  }
  ck_ = h_;
}

void SymmetricState::MixKey(ByteView input_key_material) {
  HashOutput temp_k;
  NoiseHkdf(ck_, input_key_material, &ck_, &temp_k, nullptr);
  cipher_.InitializeKey(Truncate(temp_k));
}

void SymmetricState::MixHash(ByteView data) { h_ = Blake2b512(h_, data); }

void SymmetricState::MixKeyAndHash(ByteView input_key_material) {
  HashOutput temp_h;
  HashOutput temp_k;
  NoiseHkdf(ck_, input_key_material, &ck_, &temp_h, &temp_k);
  MixHash(temp_h);
  cipher_.InitializeKey(Truncate(temp_k));
}

Result<Bytes> SymmetricState::EncryptAndHash(ByteView plaintext) {
  Result<Bytes> ciphertext = cipher_.EncryptWithAd(h_, plaintext);
  if (ciphertext.ok()) MixHash(*ciphertext);
  return ciphertext;
}

Result<Bytes> SymmetricState::DecryptAndHash(ByteView ciphertext) {
  Result<Bytes> plaintext = cipher_.DecryptWithAd(h_, ciphertext);
  if (plaintext.ok()) MixHash(ciphertext);
  return plaintext;
}

std::pair<CipherState, CipherState> SymmetricState::Split() const {
  HashOutput temp_k1;
  HashOutput temp_k2;
  NoiseHkdf(ck_, ByteView(), &temp_k1, &temp_k2, nullptr);
  return {CipherState(Truncate(temp_k1)), CipherState(Truncate(temp_k2))};
}

}  // namespace dpnode::crypto::noise
