// PeerRecord signatures: a signed record verifies, survives the wire, and
// any change to any signed field (or the signature) breaks it.
#include "protocol/peer_record.h"

#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

#include "crypto/identity.h"
#include "protocol/codec.h"
#include "tests/protocol/test_messages.h"

namespace dpnode::protocol {
namespace {

using namespace testing;  // NOLINT: test helpers

crypto::SiteIdentity TestIdentity(uint8_t fill) {
  crypto::Ed25519Seed seed(Bytes(crypto::kEd25519SeedLen, fill));
  return crypto::SiteIdentity::FromSeed(seed);
}

PeerRecord SignedRecord(const crypto::SiteIdentity& identity) {
  PeerRecord r = SamplePeerRecord();
  REQUIRE(SignPeerRecord(identity, &r).ok());
  return r;
}

TEST_CASE("a signed peer record verifies, also after a trip over the wire") {
  const crypto::SiteIdentity id = TestIdentity(7);
  const PeerRecord r = SignedRecord(id);
  CHECK(r.site_key == id.public_key());
  CHECK(VerifyPeerRecord(r).ok());

  Result<Bytes> frame = Encode(r);
  REQUIRE(frame.ok());
  Result<Message> back = Decode(*frame);
  REQUIRE(back.ok());
  CHECK(VerifyPeerRecord(std::get<PeerRecord>(*back)).ok());
}

TEST_CASE("the signed bytes are the documented canonical encoding") {
  PeerRecord r;
  for (size_t i = 0; i < r.site_key.size(); ++i) r.site_key[i] = static_cast<uint8_t>(i);
  r.sequence = 0x0102030405060708ULL;
  r.addresses = {{"ab", 0x1f40}};
  const Bytes got = PeerRecordSigningBytes(r);
  Bytes want;
  const std::string domain = "dpnode peer record v1";
  want.insert(want.end(), domain.begin(), domain.end());
  want.push_back(0);
  for (uint8_t i = 0; i < 32; ++i) want.push_back(i);
  for (uint8_t b : {8, 7, 6, 5, 4, 3, 2, 1}) want.push_back(b);  // sequence, LE
  for (uint8_t b : {1, 0, 0, 0}) want.push_back(b);              // one address
  for (uint8_t b :
       {uint8_t{2}, uint8_t{0}, uint8_t{'a'}, uint8_t{'b'}, uint8_t{0x40}, uint8_t{0x1f}}) {
    want.push_back(b);
  }
  CHECK(got == want);
  // The signature is not part of what is signed.
  r.signature[0] ^= 1;
  CHECK(PeerRecordSigningBytes(r) == want);
}

TEST_CASE("any field change breaks the signature") {
  const crypto::SiteIdentity id = TestIdentity(9);
  const PeerRecord good = SignedRecord(id);
  const std::vector<std::pair<std::string, std::function<void(PeerRecord&)>>> edits = {
      {"sequence", [](PeerRecord& r) { r.sequence += 1; }},
      {"host", [](PeerRecord& r) { r.addresses[0].host[0] ^= 1; }},
      {"port", [](PeerRecord& r) { r.addresses[1].port ^= 1; }},
      {"address dropped", [](PeerRecord& r) { r.addresses.pop_back(); }},
      {"address added",
       [](PeerRecord& r) {
         r.addresses.push_back({"evil.example", 1});
       }},
      {"addresses swapped", [](PeerRecord& r) { std::swap(r.addresses[0], r.addresses[1]); }},
      {"host/port boundary", [](PeerRecord& r) { r.addresses[0].host += "x"; }},
      {"site key", [](PeerRecord& r) { r.site_key = TestIdentity(10).public_key(); }},
  };
  for (const auto& [name, edit] : edits) {
    CAPTURE(name);
    PeerRecord r = good;
    edit(r);
    const Status s = VerifyPeerRecord(r);
    REQUIRE_FALSE(s.ok());
    CHECK(s.code() == StatusCode::kCorruption);
    CHECK(s.message() == "peer_record.signature: does not verify");
  }
  for (size_t byte = 0; byte < good.signature.size(); ++byte) {
    PeerRecord r = good;
    r.signature[byte] ^= 0x20;
    CHECK_FALSE(VerifyPeerRecord(r).ok());
  }
}

TEST_CASE("a record signed by another key does not verify under the claimed key") {
  PeerRecord r = SignedRecord(TestIdentity(1));
  PeerRecord forged = SignedRecord(TestIdentity(2));
  forged.site_key = r.site_key;  // claim to be site 1 with site 2's signature
  CHECK_FALSE(VerifyPeerRecord(forged).ok());
}

TEST_CASE("signing refuses an invalid record and verifying reports it as corruption") {
  PeerRecord r = SamplePeerRecord();
  r.addresses[0].port = 0;
  const Status sign = SignPeerRecord(TestIdentity(3), &r);
  REQUIRE_FALSE(sign.ok());
  CHECK(sign.code() == StatusCode::kInvalidArgument);
  CHECK(sign.message().find("peer_record.addresses[0].port") != std::string::npos);
  const Status verify = VerifyPeerRecord(r);
  REQUIRE_FALSE(verify.ok());
  CHECK(verify.code() == StatusCode::kCorruption);
}

}  // namespace
}  // namespace dpnode::protocol
