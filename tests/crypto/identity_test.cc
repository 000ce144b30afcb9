// Site identity: Ed25519 keys, their text form and fingerprint, and storage
// with owner-only permissions (including the refusal of a readable key file).
#include "crypto/identity.h"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/temp_dir.h"

namespace dpnode::crypto {
namespace {

using ::dpnode::testing::TempDir;

unsigned ModeOf(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

SiteIdentity MustGenerate() {
  Result<SiteIdentity> id = SiteIdentity::Generate();
  REQUIRE(id.ok());
  return *id;
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::trunc);
  f << text;
}

TEST_CASE("identity: signatures verify only for the signed message and key") {
  const SiteIdentity a = MustGenerate();
  const SiteIdentity b = MustGenerate();
  CHECK(a.public_key() != b.public_key());
  const Bytes msg = AsBytes("hello consortium").ToBytes();
  const Ed25519Signature sig = a.Sign(msg);
  CHECK(VerifySignature(a.public_key(), msg, sig));
  CHECK_FALSE(VerifySignature(b.public_key(), msg, sig));
  Bytes other = msg;
  other[0] ^= 1;
  CHECK_FALSE(VerifySignature(a.public_key(), other, sig));
  Ed25519Signature bad = sig;
  bad[10] ^= 0x40;
  CHECK_FALSE(VerifySignature(a.public_key(), msg, bad));
}

TEST_CASE("identity: the seed determines the key pair") {
  const SiteIdentity a = MustGenerate();
  const SiteIdentity again = SiteIdentity::FromSeed(a.seed());
  CHECK(again.public_key() == a.public_key());
  // Ed25519 signatures are deterministic: the same key signs identically.
  const Bytes msg = AsBytes("x").ToBytes();
  CHECK(again.Sign(msg) == a.Sign(msg));
}

TEST_CASE("identity: public key text round-trips and refuses malformed forms") {
  const SiteIdentity a = MustGenerate();
  const std::string text = PublicKeyToText(a.public_key());
  CHECK(text.rfind("ed25519:", 0) == 0);
  CHECK(text.size() == 8 + 44);
  Result<Ed25519PublicKey> back = PublicKeyFromText(text);
  REQUIRE(back.ok());
  CHECK(*back == a.public_key());

  CHECK_FALSE(PublicKeyFromText(text.substr(8)).ok());               // no prefix
  CHECK_FALSE(PublicKeyFromText("ED25519:" + text.substr(8)).ok());  // prefix is case-sensitive
  CHECK_FALSE(PublicKeyFromText("x25519:" + text.substr(8)).ok());
  CHECK_FALSE(PublicKeyFromText(text.substr(0, text.size() - 4)).ok());  // too short
  CHECK_FALSE(PublicKeyFromText(text + "AAAA").ok());                    // too long
  std::string bad_char = text;
  bad_char[12] = '*';
  CHECK_FALSE(PublicKeyFromText(bad_char).ok());
  // 32 bytes use 256 of the 258 bits of 43 base64 characters; setting an
  // unused low bit gives a second spelling of the same key, which is refused.
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string non_canonical = text;
  const size_t last = non_canonical.size() - 2;  // before the '='
  REQUIRE(non_canonical.back() == '=');
  non_canonical[last] = kAlphabet[kAlphabet.find(non_canonical[last]) ^ 1];
  Result<Ed25519PublicKey> nc = PublicKeyFromText(non_canonical);
  CHECK_FALSE(nc.ok());
}

TEST_CASE("identity: fingerprints are short, stable and distinct") {
  const SiteIdentity a = MustGenerate();
  const SiteIdentity b = MustGenerate();
  const std::string fa = Fingerprint(a.public_key());
  CHECK(fa.size() == 39);
  CHECK(fa[4] == ':');
  CHECK(fa == Fingerprint(SiteIdentity::FromSeed(a.seed()).public_key()));
  CHECK(fa != Fingerprint(b.public_key()));
}

TEST_CASE("identity: write and read back with owner-only permissions") {
  TempDir tmp;
  const std::string dir = tmp.path() + "/site";
  const SiteIdentity a = MustGenerate();
  // A permissive umask must not loosen the files.
  const mode_t old_umask = ::umask(0);
  const Status written = WriteIdentity(dir, a);
  ::umask(old_umask);
  REQUIRE_MESSAGE(written.ok(), written.ToString());
  CHECK(ModeOf(dir) == 0700);
  CHECK(ModeOf(dir + "/site.key") == 0600);
  CHECK(ModeOf(dir + "/site.pub") == 0644);
  // No temporary files left behind.
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    (void)entry;
    ++files;
  }
  CHECK(files == 2);

  Result<SiteIdentity> back = ReadIdentity(dir);
  REQUIRE_MESSAGE(back.ok(), back.status().ToString());
  CHECK(back->public_key() == a.public_key());
  const Bytes msg = AsBytes("m").ToBytes();
  CHECK(VerifySignature(a.public_key(), msg, back->Sign(msg)));

  std::ifstream pub(dir + "/site.pub");
  std::string line;
  std::getline(pub, line);
  CHECK(line == PublicKeyToText(a.public_key()));

  SUBCASE("an existing identity is not overwritten") {
    const Status again = WriteIdentity(dir, MustGenerate());
    CHECK(again.code() == StatusCode::kFailedPrecondition);
    Result<SiteIdentity> still = ReadIdentity(dir);
    REQUIRE(still.ok());
    CHECK(still->public_key() == a.public_key());
  }
}

TEST_CASE("identity: a key file readable by others is refused with the fix") {
  TempDir tmp;
  const SiteIdentity a = MustGenerate();
  REQUIRE(WriteIdentity(tmp.path(), a).ok());
  const std::string key = tmp.path() + "/site.key";
  for (mode_t mode : {0644, 0640, 0604, 0660, 0601}) {
    CAPTURE(mode);
    REQUIRE(::chmod(key.c_str(), mode) == 0);
    Result<SiteIdentity> r = ReadIdentity(tmp.path());
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kFailedPrecondition);
    CHECK(r.status().message().find("chmod 600 " + key) != std::string::npos);
  }
  REQUIRE(::chmod(key.c_str(), 0600) == 0);
  CHECK(ReadIdentity(tmp.path()).ok());
  REQUIRE(::chmod(key.c_str(), 0400) == 0);  // read-only for the owner is fine
  CHECK(ReadIdentity(tmp.path()).ok());
}

TEST_CASE("identity: missing, malformed and mismatched files are refused") {
  TempDir tmp;
  Result<SiteIdentity> missing = ReadIdentity(tmp.path());
  CHECK(missing.status().code() == StatusCode::kNotFound);

  const SiteIdentity a = MustGenerate();
  REQUIRE(WriteIdentity(tmp.path(), a).ok());
  const std::string key = tmp.path() + "/site.key";
  const std::string pub = tmp.path() + "/site.pub";

  SUBCASE("garbage in site.key") {
    WriteText(key, "not a key\n");
    CHECK(ReadIdentity(tmp.path()).status().code() == StatusCode::kCorruption);
  }
  SUBCASE("truncated seed") {
    std::ifstream in(key);
    std::string line;
    std::getline(in, line);
    WriteText(key, line.substr(0, line.size() - 2) + "\n");
    CHECK(ReadIdentity(tmp.path()).status().code() == StatusCode::kCorruption);
  }
  SUBCASE("site.pub from another site") {
    WriteText(pub, PublicKeyToText(MustGenerate().public_key()) + "\n");
    Result<SiteIdentity> r = ReadIdentity(tmp.path());
    CHECK(r.status().code() == StatusCode::kCorruption);
    CHECK(r.status().message().find("does not match") != std::string::npos);
  }
  SUBCASE("site.pub absent is fine") {
    REQUIRE(std::filesystem::remove(pub));
    Result<SiteIdentity> r = ReadIdentity(tmp.path());
    REQUIRE(r.ok());
    CHECK(r->public_key() == a.public_key());
  }
}

}  // namespace
}  // namespace dpnode::crypto
