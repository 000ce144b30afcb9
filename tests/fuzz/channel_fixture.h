// Fixed keys and options for the channel fuzz targets. Identities and Noise
// static keys derive from constant seeds so every run sees the same sites;
// only the channels' own ephemeral keys come from libsodium's CSPRNG (the
// SecureChannel API does not let a caller fix them, rightly). The harnesses
// never depend on ciphertext bytes, so an input's outcome is the same on
// every replay even though the bytes on the wire differ.
#ifndef DPNODE_TESTS_FUZZ_CHANNEL_FIXTURE_H_
#define DPNODE_TESTS_FUZZ_CHANNEL_FIXTURE_H_

#include <cstdint>
#include <string>

#include "crypto/bytes.h"
#include "crypto/identity.h"
#include "crypto/noise_primitives.h"
#include "crypto/secure_channel.h"

namespace dpnode::fuzz {

using crypto::Bytes;
using crypto::ByteView;

inline constexpr char kFuzzConsortium[] = "fuzz-consortium";
// The channels never read a clock; every call gets this fixed time, and the
// handshake deadline (10 s later by default) is never reached.
inline constexpr crypto::SteadyTime kFixedNow{0};

inline Bytes FilledBytes(size_t n, uint8_t fill) { return Bytes(n, fill); }

inline crypto::SiteIdentity FixedIdentity(uint8_t fill) {
  return crypto::SiteIdentity::FromSeed(
      crypto::Ed25519Seed(ByteView(FilledBytes(crypto::kEd25519SeedLen, fill))));
}

inline crypto::noise::KeyPair FixedKeyPair(uint8_t fill) {
  return crypto::noise::KeyPair::FromPrivate(
      crypto::noise::PrivateKey(ByteView(FilledBytes(crypto::noise::kDhLen, fill))));
}

// Site identities and X25519 statics of the two ends.
inline constexpr uint8_t kInitiatorIdentitySeed = 0x11;
inline constexpr uint8_t kResponderIdentitySeed = 0x22;
inline constexpr uint8_t kInitiatorStaticSeed = 0x33;
inline constexpr uint8_t kResponderStaticSeed = 0x44;
inline constexpr uint8_t kInitiatorEphemeralSeed = 0x55;  // only where we drive raw Noise
inline constexpr uint8_t kStrangerIdentitySeed = 0x66;    // a valid identity nobody pins

}  // namespace dpnode::fuzz

#endif  // DPNODE_TESTS_FUZZ_CHANNEL_FIXTURE_H_
