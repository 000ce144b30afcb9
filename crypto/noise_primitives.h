// The cryptographic functions of Noise_*_25519_ChaChaPoly_BLAKE2b (Noise spec
// rev 34, sections 4 and 12), built on libsodium 1.0.18 primitives only:
//   DH      X25519 (crypto_scalarmult), DHLEN = 32
//   cipher  ChaCha20-Poly1305 IETF; nonce = 4 zero bytes || 64-bit LE counter
//   hash    BLAKE2b-512 (crypto_generichash), HASHLEN = 64, BLOCKLEN = 128
//   HMAC    HMAC-BLAKE2b per RFC 2104, built here by hand (libsodium's
//           crypto_auth_hmacsha512 is SHA-512, which is a different protocol)
//   HKDF    the two/three-output HKDF of Noise section 4.3
// Stateless; the Noise objects (CipherState, SymmetricState, HandshakeState)
// sit on top. All functions are deterministic except KeyPair::Generate.
#ifndef DPNODE_CRYPTO_NOISE_PRIMITIVES_H_
#define DPNODE_CRYPTO_NOISE_PRIMITIVES_H_

#include <array>
#include <cstddef>
#include <cstdint>

#include "base/status.h"
#include "crypto/bytes.h"

namespace dpnode::crypto::noise {

constexpr size_t kDhLen = 32;             // X25519 public key and shared secret, bytes
constexpr size_t kHashLen = 64;           // BLAKE2b-512 output, bytes
constexpr size_t kBlockLen = 128;         // BLAKE2b block, bytes (HMAC pads keys to this)
constexpr size_t kKeyLen = 32;            // ChaChaPoly key; also a PSK, bytes
constexpr size_t kTagLen = 16;            // Poly1305 tag, bytes
constexpr size_t kMaxMessageLen = 65535;  // any Noise message, bytes (spec section 3)
// The nonce 2^64-1 is reserved for Rekey(); encrypting or decrypting with it
// is refused.
constexpr uint64_t kMaxNonce = ~uint64_t{0};

using PublicKey = std::array<uint8_t, kDhLen>;
using PrivateKey = SecretArray<kDhLen>;
using SymmetricKey = SecretArray<kKeyLen>;
using HashOutput = SecretArray<kHashLen>;  // h and ck are secret-ish; wiped either way

// Calls sodium_init() (idempotent, thread-safe). Every entry point that needs
// libsodium's RNG or its CPU dispatch calls it; callers need not.
Status EnsureSodiumInitialized();

// An X25519 key pair. The private key is a 32-byte scalar as Noise and the
// test vectors give it (clamping happens inside crypto_scalarmult).
struct KeyPair {
  PrivateKey private_key;
  PublicKey public_key{};

  // From the OS CSPRNG (libsodium randombytes).
  static Result<KeyPair> Generate();
  // Derives the public key; used for stored identity keys and test vectors.
  static KeyPair FromPrivate(const PrivateKey& private_key);
};

// DH(key_pair, public_key) of Noise: X25519. Fails (kCorruption) on a
// low-order peer key or an all-zero shared secret, which a peer can send to
// force a known output.
Status X25519(const PrivateKey& private_key, const PublicKey& public_key,
              SecretArray<kDhLen>* shared_secret);

// HASH(a || b || ...) with BLAKE2b-512.
HashOutput Blake2b512(ByteView data);
HashOutput Blake2b512(ByteView a, ByteView b);

// HMAC-BLAKE2b-512 per RFC 2104 with B = 128: keys longer than 128 bytes are
// hashed first. Matches Python's hmac.new(key, data, hashlib.blake2b).
HashOutput HmacBlake2b(ByteView key, ByteView data);

// HKDF(chaining_key, input_key_material, num_outputs) of Noise section 4.3
// with num_outputs 2 (out3 == nullptr) or 3. chaining_key is HASHLEN bytes;
// input_key_material is empty, 32 or DHLEN bytes. out1 may alias
// chaining_key (MixKey writes the new ck over the old one).
void NoiseHkdf(ByteView chaining_key, ByteView input_key_material, HashOutput* out1,
               HashOutput* out2, HashOutput* out3);

// ENCRYPT(k, n, ad, plaintext) of Noise: ChaCha20-Poly1305 IETF with the
// 96-bit nonce 0x00000000 || LE64(n). Returns plaintext.size() + 16 bytes.
Bytes ChaChaPolyEncrypt(const SymmetricKey& key, uint64_t nonce, ByteView ad, ByteView plaintext);
// DECRYPT(k, n, ad, ciphertext): kCorruption on a bad tag or a ciphertext
// shorter than the tag.
Result<Bytes> ChaChaPolyDecrypt(const SymmetricKey& key, uint64_t nonce, ByteView ad,
                                ByteView ciphertext);
// REKEY(k): the first 32 bytes of ENCRYPT(k, 2^64-1, empty, 32 zero bytes).
SymmetricKey ChaChaPolyRekey(const SymmetricKey& key);

}  // namespace dpnode::crypto::noise

#endif  // DPNODE_CRYPTO_NOISE_PRIMITIVES_H_
