// CipherState and SymmetricState: nonce discipline (replay, reordering,
// exhaustion), rekeying, the 65535-byte limit, and SymmetricState's
// initialization rule for long protocol names.
#include "crypto/noise_cipher_state.h"

#include <doctest/doctest.h>

#include <string>

#include "crypto/noise_symmetric_state.h"
#include "tests/crypto/noise_test_util.h"

namespace dpnode::crypto::noise {
namespace {

using testing::Hex;
using testing::Text;

SymmetricKey TestKey() {
  return SymmetricKey(Hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"));
}

TEST_CASE("CipherState without a key passes bytes through") {
  CipherState empty;
  CHECK_FALSE(empty.HasKey());
  Result<Bytes> out = empty.EncryptWithAd(Text("ad"), Text("hello"));
  REQUIRE(out.ok());
  CHECK(*out == Text("hello"));
  CHECK(empty.nonce() == 0);
  CHECK(empty.Rekey().code() == StatusCode::kFailedPrecondition);
}

TEST_CASE("CipherState round trip advances both nonces") {
  CipherState sender(TestKey());
  CipherState receiver(TestKey());
  for (int i = 0; i < 5; ++i) {
    Bytes payload = Text("record " + std::to_string(i));
    Result<Bytes> ct = sender.EncryptWithAd(ByteView(), payload);
    REQUIRE(ct.ok());
    CHECK(ct->size() == payload.size() + kTagLen);
    Result<Bytes> pt = receiver.DecryptWithAd(ByteView(), *ct);
    REQUIRE(pt.ok());
    CHECK(*pt == payload);
  }
  CHECK(sender.nonce() == 5);
  CHECK(receiver.nonce() == 5);
}

TEST_CASE("replayed and reordered transport messages are refused without losing sync") {
  CipherState sender(TestKey());
  CipherState receiver(TestKey());
  Bytes first = *sender.EncryptWithAd(ByteView(), Text("first"));
  Bytes second = *sender.EncryptWithAd(ByteView(), Text("second"));

  // Out of order: "second" was sealed under n = 1, the receiver expects n = 0.
  CHECK(receiver.DecryptWithAd(ByteView(), second).status().code() == StatusCode::kCorruption);
  CHECK(receiver.nonce() == 0);  // a failed decrypt does not consume a nonce

  REQUIRE(receiver.DecryptWithAd(ByteView(), first).ok());
  // Replay of "first" under n = 1 fails.
  CHECK(receiver.DecryptWithAd(ByteView(), first).status().code() == StatusCode::kCorruption);
  Result<Bytes> pt = receiver.DecryptWithAd(ByteView(), second);
  REQUIRE(pt.ok());
  CHECK(*pt == Text("second"));
}

TEST_CASE("a flipped bit or wrong associated data is refused") {
  CipherState sender(TestKey());
  Bytes ct = *sender.EncryptWithAd(Text("ad"), Text("payload"));
  for (size_t i = 0; i < ct.size(); ++i) {
    CipherState receiver(TestKey());
    Bytes tampered = ct;
    tampered[i] ^= 0x01;
    CHECK(receiver.DecryptWithAd(Text("ad"), tampered).status().code() == StatusCode::kCorruption);
  }
  CipherState receiver(TestKey());
  CHECK(receiver.DecryptWithAd(Text("other"), ct).status().code() == StatusCode::kCorruption);
}

TEST_CASE("nonce 2^64-1 is never used: exhaustion is refused") {
  CipherState sender(TestKey());
  CipherState receiver(TestKey());
  sender.SetNonce(kMaxNonce - 1);
  receiver.SetNonce(kMaxNonce - 1);
  Result<Bytes> last = sender.EncryptWithAd(ByteView(), Text("last"));
  REQUIRE(last.ok());
  REQUIRE(receiver.DecryptWithAd(ByteView(), *last).ok());
  CHECK(sender.nonce() == kMaxNonce);
  CHECK(sender.EncryptWithAd(ByteView(), Text("one more")).status().code() ==
        StatusCode::kOutOfRange);
  CHECK(receiver.DecryptWithAd(ByteView(), *last).status().code() == StatusCode::kOutOfRange);
  // Rekey does not reset the nonce (spec 5.1), so exhaustion persists.
  REQUIRE(sender.Rekey().ok());
  CHECK(sender.EncryptWithAd(ByteView(), Text("x")).status().code() == StatusCode::kOutOfRange);
}

TEST_CASE("Rekey changes the key on both sides in step") {
  CipherState sender(TestKey());
  CipherState receiver(TestKey());
  Bytes before = *sender.EncryptWithAd(ByteView(), Text("before"));
  REQUIRE(receiver.DecryptWithAd(ByteView(), before).ok());

  REQUIRE(sender.Rekey().ok());
  Bytes after = *sender.EncryptWithAd(ByteView(), Text("after"));
  // A receiver that has not rekeyed cannot read it...
  CipherState stale = receiver;
  CHECK(stale.DecryptWithAd(ByteView(), after).status().code() == StatusCode::kCorruption);
  // ...one that has, can; the nonce carried on (n = 1).
  REQUIRE(receiver.Rekey().ok());
  Result<Bytes> pt = receiver.DecryptWithAd(ByteView(), after);
  REQUIRE(pt.ok());
  CHECK(*pt == Text("after"));
  CHECK(receiver.nonce() == 2);
}

TEST_CASE("messages over 65535 bytes are refused") {
  CipherState sender(TestKey());
  CHECK(sender.EncryptWithAd(ByteView(), Bytes(kMaxMessageLen - kTagLen + 1)).status().code() ==
        StatusCode::kInvalidArgument);
  CHECK(sender.nonce() == 0);
  Result<Bytes> largest = sender.EncryptWithAd(ByteView(), Bytes(kMaxMessageLen - kTagLen));
  REQUIRE(largest.ok());
  CHECK(largest->size() == kMaxMessageLen);
  CipherState receiver(TestKey());
  CHECK(receiver.DecryptWithAd(ByteView(), Bytes(kMaxMessageLen + 1)).status().code() ==
        StatusCode::kInvalidArgument);
  Result<Bytes> pt = receiver.DecryptWithAd(ByteView(), *largest);
  REQUIRE(pt.ok());
  CHECK(pt->size() == kMaxMessageLen - kTagLen);
}

TEST_CASE("SymmetricState pads short protocol names and hashes long ones") {
  const std::string short_name = "Noise_XX_25519_ChaChaPoly_BLAKE2b";  // 33 bytes
  SymmetricState padded(short_name);
  Bytes expected(kHashLen, 0);
  std::copy(short_name.begin(), short_name.end(), expected.begin());
  CHECK(ConstantTimeEqual(padded.handshake_hash(), expected));

  const std::string exactly_64(64, 'n');
  CHECK(ConstantTimeEqual(SymmetricState(exactly_64).handshake_hash(), AsBytes(exactly_64)));

  const std::string long_name(65, 'n');
  CHECK(ConstantTimeEqual(SymmetricState(long_name).handshake_hash(),
                          Blake2b512(AsBytes(long_name))));
}

TEST_CASE("SymmetricState encrypts only after MixKey and binds h as associated data") {
  SymmetricState a("Noise_NN_25519_ChaChaPoly_BLAKE2b");
  SymmetricState b("Noise_NN_25519_ChaChaPoly_BLAKE2b");
  Result<Bytes> clear = a.EncryptAndHash(Text("hi"));
  REQUIRE(clear.ok());
  CHECK(*clear == Text("hi"));
  REQUIRE(b.DecryptAndHash(*clear).ok());

  Bytes shared(32, 0x42);
  a.MixKey(shared);
  b.MixKey(shared);
  CHECK(a.HasKey());
  Result<Bytes> sealed = a.EncryptAndHash(Text("secret"));
  REQUIRE(sealed.ok());
  CHECK(sealed->size() == 6 + kTagLen);
  SymmetricState diverged = b;
  diverged.MixHash(Text("something the sender never hashed"));
  CHECK(diverged.DecryptAndHash(*sealed).status().code() == StatusCode::kCorruption);
  Result<Bytes> opened = b.DecryptAndHash(*sealed);
  REQUIRE(opened.ok());
  CHECK(*opened == Text("secret"));
  CHECK(ConstantTimeEqual(a.handshake_hash(), b.handshake_hash()));
}

}  // namespace
}  // namespace dpnode::crypto::noise

namespace dpnode::crypto::noise {
namespace {

TEST_CASE("EncryptInPlace and DecryptInto give exactly EncryptWithAd's bytes and nonce rules") {
  CipherState reference(TestKey()), in_place(TestKey()), receiver(TestKey());
  for (size_t len : {size_t{0}, size_t{1}, size_t{100}, size_t{kMaxMessageLen - kTagLen}}) {
    CAPTURE(len);
    Bytes plaintext(len);
    for (size_t i = 0; i < len; ++i) plaintext[i] = static_cast<uint8_t>(i * 7 + len);
    Result<Bytes> expected = reference.EncryptWithAd(Text("ad"), plaintext);
    REQUIRE(expected.ok());

    Bytes buffer = plaintext;
    buffer.resize(len + kTagLen);
    REQUIRE(in_place.EncryptInPlace(Text("ad"), buffer.data(), len).ok());
    CHECK(buffer == *expected);

    // Decrypt in place; a tampered copy fails first and leaves the nonce alone.
    Bytes tampered = buffer;
    tampered[tampered.size() - 1] ^= 0x80;
    const uint64_t nonce_before = receiver.nonce();
    CHECK(receiver.DecryptInto(Text("ad"), tampered, tampered.data()).code() ==
          StatusCode::kCorruption);
    CHECK(receiver.nonce() == nonce_before);
    REQUIRE(receiver.DecryptInto(Text("ad"), buffer, buffer.data()).ok());
    CHECK(Bytes(buffer.begin(), buffer.begin() + static_cast<long>(len)) == plaintext);
  }
  CHECK(in_place.nonce() == reference.nonce());
}

}  // namespace
}  // namespace dpnode::crypto::noise
