// Known-answer tests for the Noise primitives: BLAKE2b-512 (RFC 7693),
// HMAC-BLAKE2b and Noise's HKDF (cross-checked against Python's hmac and
// hashlib), X25519 (RFC 7748) and ChaChaPoly with the Noise nonce layout
// (cross-checked against Python's `cryptography` package).
#include "crypto/noise_primitives.h"

#include <doctest/doctest.h>

#include "tests/crypto/noise_test_util.h"

namespace dpnode::crypto::noise {
namespace {

using testing::Hex;
using testing::Text;

TEST_CASE("BLAKE2b-512 matches RFC 7693 appendix A and the empty-input digest") {
  // RFC 7693 appendix A: BLAKE2b-512("abc").
  CHECK(HexEncode(Blake2b512(Text("abc"))) ==
        "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1"
        "7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923");
  // python3 -c 'import hashlib; print(hashlib.blake2b(b"").hexdigest())'
  CHECK(HexEncode(Blake2b512(ByteView())) ==
        "786a02f742015903c6c6fd852552d272912f4740e15847618a86e217f71f5419"
        "d25e1031afee585313896444934eb04b903a685b1448b755d56f701afe9be2ce");
  // The two-part form hashes the concatenation.
  CHECK(HexEncode(Blake2b512(Text("a"), Text("bc"))) == HexEncode(Blake2b512(Text("abc"))));
}

TEST_CASE("HMAC-BLAKE2b matches Python's hmac.new(key, msg, hashlib.blake2b)") {
  // Each expected value printed by
  //   python3 -c 'import hmac,hashlib; print(hmac.new(KEY, MSG, hashlib.blake2b).hexdigest())'
  // KEY=b"", MSG=b""
  CHECK(HexEncode(HmacBlake2b(ByteView(), ByteView())) ==
        "198cd2006f66ff83fbbd913f78aca2251caf4f19fe9475aade8cf2091b99a684"
        "66775177424f58286886cbae8229644cec747237d4b721735485e17372fdf59c");
  // KEY=b"key", MSG=b"The quick brown fox jumps over the lazy dog"
  CHECK(HexEncode(HmacBlake2b(Text("key"), Text("The quick brown fox jumps over the lazy dog"))) ==
        "92294f92c0dfb9b00ec9ae8bd94d7e7d8a036b885a499f149dfe2fd2199394aa"
        "af6b8894a1730cccb2cd050f9bcf5062a38b51b0dab33207f8ef35ae2c9df51b");
  // KEY=bytes([0xaa])*128 (exactly one block: used as is), MSG=b"Hi There"
  Bytes block_key(128, 0xaa);
  CHECK(HexEncode(HmacBlake2b(block_key, Text("Hi There"))) ==
        "0b145f78d440885489f7e4a01b00e9105d61348c2d3480873494b699348b6a5a"
        "b4156379ba1b2336765d7e79881099749ec94b915e2003be0d92e90ada377a8e");
  // KEY=bytes([0xaa])*131 (longer than a block: hashed first),
  // MSG=b"Test Using Larger Than Block-Size Key - Hash Key First"
  Bytes long_key(131, 0xaa);
  CHECK(HexEncode(HmacBlake2b(long_key,
                              Text("Test Using Larger Than Block-Size Key - Hash Key First"))) ==
        "a54b2943b2a20227d41ca46c0945af09bc1faefb2f49894c23aebc557fb79c48"
        "89dca74408dc865086667aedee4a3185c53a49c80b814c4c5813ea0c8b38a8f8");
}

TEST_CASE("Noise HKDF with BLAKE2b gives the spec's three chained outputs") {
  // Expected values computed in Python from the definition in spec section 4.3:
  //   ck = bytes(range(64)); ikm = bytes(range(100, 132))
  //   t  = hmac.new(ck, ikm, hashlib.blake2b).digest()
  //   o1 = hmac.new(t, b"\x01", hashlib.blake2b).digest()
  //   o2 = hmac.new(t, o1 + b"\x02", hashlib.blake2b).digest()
  //   o3 = hmac.new(t, o2 + b"\x03", hashlib.blake2b).digest()
  Bytes ck(64);
  Bytes ikm(32);
  for (size_t i = 0; i < ck.size(); ++i) ck[i] = static_cast<uint8_t>(i);
  for (size_t i = 0; i < ikm.size(); ++i) ikm[i] = static_cast<uint8_t>(100 + i);
  HashOutput o1, o2, o3;
  NoiseHkdf(ck, ikm, &o1, &o2, &o3);
  CHECK(HexEncode(o1) ==
        "2262ed5f40c3324574d00a1e0849a7cc67fb5b6a80211c3c59404bb8e47512b1"
        "cb95e73840718c5d68ca345f934f39a52f1f31e8f6d3ed521f0664f46feddae4");
  CHECK(HexEncode(o2) ==
        "f6a6559fa2aaab64d3d2666b83fe3f4fed6fae1959537fedd6a39b6f8d411e61"
        "32593234cc2a750244335da5021c27bf7eacbb65cfa608457de6ecc144b90077");
  CHECK(HexEncode(o3) ==
        "07c82c1301c70e885f4662f1f3f7b7bb9e04d81c94a6e1882f812c02ffb69580"
        "c93095bb599ad2fced3d3cf38c9c17df4fb3c0029f231247fca69b040e16449e");

  // Two outputs are the first two of three; out1 may alias the chaining key
  // (that is how MixKey updates ck).
  HashOutput aliased(ck);
  HashOutput second;
  NoiseHkdf(aliased, ikm, &aliased, &second, nullptr);
  CHECK(HexEncode(aliased) == HexEncode(o1));
  CHECK(HexEncode(second) == HexEncode(o2));
}

TEST_CASE("X25519 matches RFC 7748 section 6.1") {
  KeyPair alice = KeyPair::FromPrivate(
      PrivateKey(Hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")));
  KeyPair bob = KeyPair::FromPrivate(
      PrivateKey(Hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")));
  CHECK(HexEncode(alice.public_key) ==
        "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  CHECK(HexEncode(bob.public_key) ==
        "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
  SecretArray<kDhLen> ab, ba;
  REQUIRE(X25519(alice.private_key, bob.public_key, &ab).ok());
  REQUIRE(X25519(bob.private_key, alice.public_key, &ba).ok());
  CHECK(HexEncode(ab) == "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
  CHECK(HexEncode(ba) == HexEncode(ab));
}

TEST_CASE("X25519 refuses low-order public keys (all-zero shared secret)") {
  KeyPair alice = KeyPair::FromPrivate(
      PrivateKey(Hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")));
  SecretArray<kDhLen> shared;
  PublicKey zero{};  // u = 0
  Status status = X25519(alice.private_key, zero, &shared);
  CHECK(status.code() == StatusCode::kCorruption);
  CHECK(sodium_is_zero(shared.data(), shared.size()) == 1);
  PublicKey one{};  // u = 1, a point of small order
  one[0] = 1;
  CHECK(X25519(alice.private_key, one, &shared).code() == StatusCode::kCorruption);
}

TEST_CASE("generated key pairs are distinct and consistent") {
  Result<KeyPair> a = KeyPair::Generate();
  Result<KeyPair> b = KeyPair::Generate();
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(a->public_key != b->public_key);
  CHECK(KeyPair::FromPrivate(a->private_key).public_key == a->public_key);
}

TEST_CASE("ChaChaPoly uses the Noise nonce (4 zero bytes || LE64 n)") {
  // Python: from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
  //   c = ChaCha20Poly1305(bytes(range(32)))
  //   c.encrypt(b"\0"*4 + n.to_bytes(8, "little"), b"transport payload", b"noise ad").hex()
  SymmetricKey key(Hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"));
  Bytes ad = Text("noise ad");
  Bytes pt = Text("transport payload");
  CHECK(HexEncode(ChaChaPolyEncrypt(key, 0, ad, pt)) ==
        "6cca235fde96c9a367412c00d62f21469c580652e76a40a617dddddfd7b0852963");
  CHECK(HexEncode(ChaChaPolyEncrypt(key, 1, ad, pt)) ==
        "eb259231c65ac06a5d96de3d2bf9f6e6a177827771892e94bff04a57ef0257b0b7");
  Bytes ct = ChaChaPolyEncrypt(key, 0x0102030405060708, ad, pt);
  CHECK(HexEncode(ct) == "843bcc8ad849856a108b5aad0a140ed9845a72545a650f7e5a3ff1b6aea5add751");

  Result<Bytes> back = ChaChaPolyDecrypt(key, 0x0102030405060708, ad, ct);
  REQUIRE(back.ok());
  CHECK(*back == pt);
  CHECK(ChaChaPolyDecrypt(key, 0x0102030405060709, ad, ct).status().code() ==
        StatusCode::kCorruption);
  CHECK(ChaChaPolyDecrypt(key, 0x0102030405060708, Text("other ad"), ct).status().code() ==
        StatusCode::kCorruption);
  CHECK(ChaChaPolyDecrypt(key, 0, ad, Bytes(15)).status().code() == StatusCode::kCorruption);
}

TEST_CASE("REKEY is the first 32 bytes of encrypting zeros under nonce 2^64-1") {
  // Python: c.encrypt(b"\0"*4 + (2**64-1).to_bytes(8, "little"), bytes(32), b"")[:32].hex()
  SymmetricKey key(Hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"));
  CHECK(HexEncode(ChaChaPolyRekey(key)) ==
        "50835543a205b22c9323f2022bc4f67d838f90e61d5ccf33c4513e01f85b5042");
}

TEST_CASE("hex helpers round-trip and reject malformed input") {
  CHECK(HexEncode(Hex("00ff10Ab")) == "00ff10ab");
  CHECK(HexDecode("abc").status().code() == StatusCode::kInvalidArgument);
  CHECK(HexDecode("zz").status().code() == StatusCode::kInvalidArgument);
  CHECK(ConstantTimeEqual(Hex("0102"), Hex("0102")));
  CHECK_FALSE(ConstantTimeEqual(Hex("0102"), Hex("0103")));
  CHECK_FALSE(ConstantTimeEqual(Hex("0102"), Hex("01")));
}

}  // namespace
}  // namespace dpnode::crypto::noise
