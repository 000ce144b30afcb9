// Seeded mutations of valid frames through Decode: every outcome is either a
// Status or a message that passes Validate (and re-encodes). No crash, no
// exception. A quick deterministic slice (seed settable with
// DPNODE_TEST_SEED); longer coverage-guided fuzzing belongs in a fuzz target.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstdlib>
#include <random>
#include <vector>

#include "protocol/codec.h"
#include "tests/protocol/test_messages.h"

namespace dpnode::protocol {
namespace {

using namespace testing;  // NOLINT: test helpers

constexpr int kMutations = 20000;

uint64_t TestSeed() {
  const char* env = std::getenv("DPNODE_TEST_SEED");
  return env != nullptr ? std::strtoull(env, nullptr, 0) : 0x5eed0001;
}

// One random edit: flip bits, overwrite bytes with extreme values, cut or
// extend the frame, or copy a run of bytes elsewhere in it.
void Mutate(std::mt19937_64& rng, Bytes& frame) {
  auto pick = [&rng](size_t n) { return static_cast<size_t>(rng() % n); };
  switch (rng() % 6) {
    case 0:
    case 1: {
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int i = 0; i < flips && !frame.empty(); ++i) {
        frame[pick(frame.size())] ^= static_cast<uint8_t>(1u << (rng() % 8));
      }
      break;
    }
    case 2: {
      static const uint8_t kSpecial[] = {0x00, 0xff, 0x7f, 0x80, 0x01, 0xfe};
      const int n = 1 + static_cast<int>(rng() % 3);
      for (int i = 0; i < n && !frame.empty(); ++i) {
        frame[pick(frame.size())] = kSpecial[rng() % sizeof(kSpecial)];
      }
      break;
    }
    case 3:
      frame.resize(pick(frame.size() + 1));
      break;
    case 4: {
      const size_t extra = 1 + pick(24);
      for (size_t i = 0; i < extra; ++i) frame.push_back(static_cast<uint8_t>(rng()));
      break;
    }
    default: {
      if (frame.size() < 16) break;
      const size_t len = 1 + pick(8);
      const size_t from = pick(frame.size() - len);
      const size_t to = pick(frame.size() - len);
      for (size_t i = 0; i < len; ++i) frame[to + i] = frame[from + i];
      break;
    }
  }
}

TEST_CASE("seeded mutations of valid frames never crash or pass invalid messages") {
  std::vector<Bytes> seeds;
  for (const Message& m : SampleMessages()) {
    Result<Bytes> f = Encode(m);
    REQUIRE(f.ok());
    seeds.push_back(std::move(f).value());
  }
  const uint64_t seed = TestSeed();
  CAPTURE(seed);
  std::mt19937_64 rng(seed);
  int refused = 0;
  int accepted = 0;
  for (int i = 0; i < kMutations; ++i) {
    Bytes frame = seeds[static_cast<size_t>(rng() % seeds.size())];
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits; ++e) Mutate(rng, frame);
    Result<Message> r = Decode(frame);  // an escaping exception fails the test case
    if (!r.ok()) {
      ++refused;
      // Every refusal names what went wrong.
      REQUIRE(r.status().code() != StatusCode::kOk);
      REQUIRE_FALSE(r.status().message().empty());
      continue;
    }
    ++accepted;
    CAPTURE(i);
    REQUIRE(Validate(*r, Limits{}).ok());
    Result<Bytes> again = Encode(*r);
    REQUIRE_MESSAGE(again.ok(), again.status().ToString());
  }
  MESSAGE("mutations: " << refused << " refused, " << accepted << " decoded to valid messages");
  // Both outcomes occur: the mutations reach past the framing checks.
  CHECK(refused > 0);
  CHECK(accepted > 0);
}

}  // namespace
}  // namespace dpnode::protocol
