// CheckHello: compatible peers pass; each mismatch gives our log a clear
// line and the peer a Goodbye with the matching reason.
#include "protocol/hello.h"

#include <doctest/doctest.h>

#include <string>

#include "protocol/codec.h"
#include "tests/protocol/test_messages.h"

namespace dpnode::protocol {
namespace {

using namespace testing;  // NOLINT: test helpers

Hello Mine() {
  Hello h = SampleHello();
  h.protocol_version = 2;
  h.site_name = "Mercy";
  h.consortium_id = "eicu-a";
  h.model_fingerprint = Fingerprint(0xcd);
  h.model_fingerprint[1] = 0x34;
  return h;
}

Hello Theirs() {
  Hello h = Mine();
  h.site_name = "St Mary";
  h.capabilities = kCapabilityPushSum | (uint64_t{1} << 40);  // differing bits do not matter
  return h;
}

TEST_CASE("compatible hellos pass and leave the goodbye alone") {
  Goodbye g{GoodbyeReason::kTrainingDone, "untouched"};
  CHECK(CheckHello(Mine(), Theirs(), &g).ok());
  CHECK(g.reason == GoodbyeReason::kTrainingDone);
  CHECK(g.text == "untouched");
  CHECK(CheckHello(Mine(), Theirs()).ok());
}

TEST_CASE("version mismatch") {
  Hello theirs = Theirs();
  theirs.protocol_version = 3;
  theirs.model_fingerprint = Fingerprint(0);  // version is reported first
  Goodbye g;
  const Status s = CheckHello(Mine(), theirs, &g);
  REQUIRE_FALSE(s.ok());
  CHECK(s.code() == StatusCode::kFailedPrecondition);
  CHECK(s.message() == "peer \"St Mary\" speaks protocol version 3, we speak 2");
  CHECK(g.reason == GoodbyeReason::kVersionMismatch);
  CHECK(g.text == "we speak protocol version 2, you speak 3");
  // The goodbye is itself a valid message to send.
  CHECK(Encode(g).ok());
}

TEST_CASE("consortium mismatch") {
  Hello theirs = Theirs();
  theirs.consortium_id = "eicu-b";
  Goodbye g;
  const Status s = CheckHello(Mine(), theirs, &g);
  REQUIRE_FALSE(s.ok());
  CHECK(s.message() == "peer \"St Mary\" is in consortium \"eicu-b\", we are in \"eicu-a\"");
  CHECK(g.reason == GoodbyeReason::kConsortiumMismatch);
  CHECK(g.text == "we are in consortium \"eicu-a\", you are in \"eicu-b\"");
  CHECK(Encode(g).ok());
}

TEST_CASE("model fingerprint mismatch") {
  Hello theirs = Theirs();
  theirs.model_fingerprint = Fingerprint(0xab);
  theirs.model_fingerprint[1] = 0x12;
  Goodbye g;
  const Status s = CheckHello(Mine(), theirs, &g);
  REQUIRE_FALSE(s.ok());
  CHECK(s.message() ==
        "peer \"St Mary\" trains model fingerprint ab12abab\u2026, we train cd34cdcd\u2026");
  CHECK(g.reason == GoodbyeReason::kModelMismatch);
  CHECK(g.text == "we train model fingerprint cd34cdcd\u2026, you train ab12abab\u2026");
  CHECK(Encode(g).ok());

  // Differing only in the last byte still counts.
  theirs.model_fingerprint = Mine().model_fingerprint;
  theirs.model_fingerprint.back() ^= 1;
  CHECK_FALSE(CheckHello(Mine(), theirs).ok());
}

TEST_CASE("short fingerprints for logs") {
  CHECK(ShortFingerprint(Bytes{0xab, 0x12}) == "ab12");
  CHECK(ShortFingerprint(Bytes{1, 2, 3, 4}) == "01020304");
  CHECK(ShortFingerprint(Bytes{1, 2, 3, 4, 5}) == "01020304\u2026");
}

}  // namespace
}  // namespace dpnode::protocol
