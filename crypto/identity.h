// A site's long-term identity: one Ed25519 key pair (libsodium crypto_sign_*),
// how it is stored on disk, and how its public key is written in peers.txt.
//
// The Ed25519 key is the only long-term secret of a site. It never enters a
// Noise DH: the secure channel uses a separate X25519 static key and proves it
// with an Ed25519 signature in the handshake payload (secure_channel.h), so the
// signing key is used for signing only.
//
// On disk (WriteIdentity / ReadIdentity), in a directory the caller names:
//   site.key  the 32-byte Ed25519 seed as one text line
//             "dpnode-ed25519-secret-seed:<64 hex>"; mode 0600, written
//             atomically (temp file, fsync, rename, fsync of the directory)
//   site.pub  the public key text "ed25519:<base64>" and a newline; 0644
// The directory is created 0700 if it does not exist. Reading refuses a
// site.key that group or others can access, with a message that says how to
// fix it (chmod 600). These functions do file I/O (no clock, no threads); the
// rest of this header is pure.
#ifndef DPNODE_CRYPTO_IDENTITY_H_
#define DPNODE_CRYPTO_IDENTITY_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"
#include "crypto/bytes.h"

namespace dpnode::crypto {

constexpr size_t kEd25519PublicKeyLen = 32;  // bytes
constexpr size_t kEd25519SeedLen = 32;       // bytes; the secret from which the key pair derives
constexpr size_t kEd25519SecretKeyLen = 64;  // libsodium's seed || public key form
constexpr size_t kEd25519SignatureLen = 64;  // bytes

using Ed25519PublicKey = std::array<uint8_t, kEd25519PublicKeyLen>;
using Ed25519Signature = std::array<uint8_t, kEd25519SignatureLen>;
using Ed25519Seed = SecretArray<kEd25519SeedLen>;

// File names inside an identity directory.
inline constexpr char kIdentitySecretFile[] = "site.key";
inline constexpr char kIdentityPublicFile[] = "site.pub";

// An Ed25519 key pair. Copies carry the secret; each copy wipes itself on
// destruction. Not thread-safe (const methods are safe to call concurrently).
class SiteIdentity {
 public:
  // A fresh key pair from libsodium's CSPRNG.
  static Result<SiteIdentity> Generate();
  // Deterministic: the same seed gives the same key pair (tests, and reading
  // site.key back).
  static SiteIdentity FromSeed(const Ed25519Seed& seed);

  const Ed25519PublicKey& public_key() const { return public_key_; }
  const Ed25519Seed& seed() const { return seed_; }

  // Ed25519 signature (crypto_sign_detached) of `message`.
  Ed25519Signature Sign(ByteView message) const;

 private:
  SiteIdentity() = default;
  Ed25519Seed seed_;
  SecretArray<kEd25519SecretKeyLen> secret_key_;
  Ed25519PublicKey public_key_{};
};

// True when `signature` is a valid Ed25519 signature of `message` by `key`.
bool VerifySignature(const Ed25519PublicKey& key, ByteView message,
                     const Ed25519Signature& signature);

// "ed25519:" followed by the standard base64 (with padding) of the 32 bytes:
// 52 characters. This is the form used in peers.txt and printed by keygen.
std::string PublicKeyToText(const Ed25519PublicKey& key);
// The inverse; refuses (kInvalidArgument, saying why) a missing or different
// prefix, bad base64, a length other than 32 bytes, and non-canonical base64
// (so one key has exactly one text form and duplicates are detectable).
Result<Ed25519PublicKey> PublicKeyFromText(std::string_view text);

// A short name for a key for logs and humans comparing keys over the phone:
// the first 16 bytes of BLAKE2b-256(key) in hex, grouped by 4 with ':'
// ("1a2b:3c4d:..."; 39 characters).
std::string Fingerprint(const Ed25519PublicKey& key);

// Writes `identity` into `dir` as described above. Creates `dir` (mode 0700)
// if missing, but not its parents. Refuses (kFailedPrecondition) to overwrite
// an existing site.key: replacing a site's identity must be a deliberate act.
// kIoError when the OS refuses.
Status WriteIdentity(const std::string& dir, const SiteIdentity& identity);

// Reads site.key from `dir`. Refuses:
//   kFailedPrecondition  site.key is accessible by group or others ("... run:
//                        chmod 600 <path>"), or is not a regular file
//   kNotFound            no site.key
//   kCorruption          malformed contents, or a site.pub that does not
//                        match the secret key
//   kIoError             the OS refused
Result<SiteIdentity> ReadIdentity(const std::string& dir);

}  // namespace dpnode::crypto

#endif  // DPNODE_CRYPTO_IDENTITY_H_
