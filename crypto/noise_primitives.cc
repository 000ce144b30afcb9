// libsodium-backed primitives for Noise_*_25519_ChaChaPoly_BLAKE2b.
#include "crypto/noise_primitives.h"

#include <sodium.h>

#include "base/check.h"

namespace dpnode::crypto::noise {
namespace {

// Streams parts into one BLAKE2b-512 digest.
class Blake2bHasher {
 public:
  Blake2bHasher() { crypto_generichash_init(&state_, nullptr, 0, kHashLen); }
  ~Blake2bHasher() { sodium_memzero(&state_, sizeof(state_)); }
  Blake2bHasher(const Blake2bHasher&) = delete;
  Blake2bHasher& operator=(const Blake2bHasher&) = delete;

  void Update(ByteView data) { crypto_generichash_update(&state_, data.data(), data.size()); }
  HashOutput Final() {
    HashOutput out;
    crypto_generichash_final(&state_, out.data(), kHashLen);
    return out;
  }

 private:
  crypto_generichash_state state_;
};

std::array<uint8_t, crypto_aead_chacha20poly1305_ietf_NPUBBYTES> NoiseNonce(uint64_t n) {
  std::array<uint8_t, crypto_aead_chacha20poly1305_ietf_NPUBBYTES> nonce{};
  for (int i = 0; i < 8; ++i) nonce[4 + i] = static_cast<uint8_t>(n >> (8 * i));
  return nonce;
}

static_assert(crypto_aead_chacha20poly1305_ietf_KEYBYTES == kKeyLen);
static_assert(crypto_aead_chacha20poly1305_ietf_ABYTES == kTagLen);
static_assert(crypto_scalarmult_BYTES == kDhLen && crypto_scalarmult_SCALARBYTES == kDhLen);

}  // namespace

Status EnsureSodiumInitialized() {
  if (sodium_init() < 0) return Status::Internal("libsodium failed to initialize");
  return Status::Ok();
}

Result<KeyPair> KeyPair::Generate() {
  DPNODE_RETURN_IF_ERROR(EnsureSodiumInitialized());
  PrivateKey private_key;
  randombytes_buf(private_key.data(), private_key.size());
  return FromPrivate(private_key);
}

KeyPair KeyPair::FromPrivate(const PrivateKey& private_key) {
  KeyPair pair;
  pair.private_key = private_key;
  // Only fails for an all-zero result, which clamping makes impossible.
  DPNODE_CHECK(crypto_scalarmult_base(pair.public_key.data(), private_key.data()) == 0,
               "crypto_scalarmult_base failed");
  return pair;
}

Status X25519(const PrivateKey& private_key, const PublicKey& public_key,
              SecretArray<kDhLen>* shared_secret) {
  // libsodium already returns -1 for low-order points and a zero result; the
  // explicit zero check keeps the guarantee if that ever changes.
  if (crypto_scalarmult(shared_secret->data(), private_key.data(), public_key.data()) != 0 ||
      sodium_is_zero(shared_secret->data(), kDhLen)) {
    shared_secret->Wipe();
    return Status::Corruption("X25519: peer public key is of low order (all-zero shared secret)");
  }
  return Status::Ok();
}

HashOutput Blake2b512(ByteView data) {
  Blake2bHasher hasher;
  hasher.Update(data);
  return hasher.Final();
}

HashOutput Blake2b512(ByteView a, ByteView b) {
  Blake2bHasher hasher;
  hasher.Update(a);
  hasher.Update(b);
  return hasher.Final();
}

HashOutput HmacBlake2b(ByteView key, ByteView data) {
  SecretArray<kBlockLen> block_key;  // K padded with zeros to B bytes
  if (key.size() > kBlockLen) {
    HashOutput hashed = Blake2b512(key);
    std::copy(hashed.data(), hashed.data() + kHashLen, block_key.data());
  } else if (!key.empty()) {
    std::copy(key.begin(), key.end(), block_key.data());
  }
  SecretArray<kBlockLen> pad;
  for (size_t i = 0; i < kBlockLen; ++i) pad.data()[i] = block_key.data()[i] ^ 0x36;
  Blake2bHasher inner;
  inner.Update(pad);
  inner.Update(data);
  HashOutput inner_hash = inner.Final();
  for (size_t i = 0; i < kBlockLen; ++i) pad.data()[i] = block_key.data()[i] ^ 0x5c;
  Blake2bHasher outer;
  outer.Update(pad);
  outer.Update(inner_hash);
  return outer.Final();
}

void NoiseHkdf(ByteView chaining_key, ByteView input_key_material, HashOutput* out1,
               HashOutput* out2, HashOutput* out3) {
  DPNODE_CHECK(out1 != nullptr && out2 != nullptr, "HKDF needs two outputs");
  HashOutput temp_key = HmacBlake2b(chaining_key, input_key_material);
  const uint8_t one = 0x01;
  *out1 = HmacBlake2b(temp_key, ByteView(&one, 1));
  SecretArray<kHashLen + 1> input;
  std::copy(out1->data(), out1->data() + kHashLen, input.data());
  input.data()[kHashLen] = 0x02;
  *out2 = HmacBlake2b(temp_key, input);
  if (out3 != nullptr) {
    std::copy(out2->data(), out2->data() + kHashLen, input.data());
    input.data()[kHashLen] = 0x03;
    *out3 = HmacBlake2b(temp_key, input);
  }
}

Bytes ChaChaPolyEncrypt(const SymmetricKey& key, uint64_t nonce, ByteView ad, ByteView plaintext) {
  Bytes out(plaintext.size() + kTagLen);
  auto npub = NoiseNonce(nonce);
  unsigned long long out_len = 0;
  crypto_aead_chacha20poly1305_ietf_encrypt(out.data(), &out_len, plaintext.data(),
                                            plaintext.size(), ad.data(), ad.size(), nullptr,
                                            npub.data(), key.data());
  DPNODE_CHECK(out_len == out.size(), "AEAD length %llu, expected %zu", out_len, out.size());
  return out;
}

Result<Bytes> ChaChaPolyDecrypt(const SymmetricKey& key, uint64_t nonce, ByteView ad,
                                ByteView ciphertext) {
  if (ciphertext.size() < kTagLen) {
    return Status::Corruption("ciphertext of " + std::to_string(ciphertext.size()) +
                              " bytes is shorter than the authentication tag");
  }
  Bytes out(ciphertext.size() - kTagLen);
  auto npub = NoiseNonce(nonce);
  unsigned long long out_len = 0;
  if (crypto_aead_chacha20poly1305_ietf_decrypt(out.data(), &out_len, nullptr, ciphertext.data(),
                                                ciphertext.size(), ad.data(), ad.size(),
                                                npub.data(), key.data()) != 0) {
    return Status::Corruption("authentication failed (bad tag, wrong key or wrong nonce)");
  }
  DPNODE_CHECK(out_len == out.size(), "AEAD length %llu, expected %zu", out_len, out.size());
  return out;
}

SymmetricKey ChaChaPolyRekey(const SymmetricKey& key) {
  SecretArray<kKeyLen> zeros;
  Bytes encrypted = ChaChaPolyEncrypt(key, kMaxNonce, ByteView(), zeros);
  SymmetricKey next(ByteView(encrypted.data(), kKeyLen));
  sodium_memzero(encrypted.data(), encrypted.size());
  return next;
}

}  // namespace dpnode::crypto::noise
