// Backoff: exponential growth, ceiling, jitter bounds and reset.
#include "node/asio/backoff.h"

#include <doctest/doctest.h>

#include "node/asio/asio_env.h"

namespace dpnode::asio {
namespace {

using std::chrono::milliseconds;

// Returns the same 64-bit value every time.
class ConstantRng : public Rng {
 public:
  explicit ConstantRng(uint64_t v) : v_(v) {}
  uint64_t Next() override { return v_; }

 private:
  uint64_t v_;
};

TEST_CASE("backoff doubles from the initial delay up to the ceiling, without jitter") {
  BackoffOptions o;
  o.initial_delay = milliseconds(100);
  o.max_delay = milliseconds(1000);
  o.multiplier = 2.0;
  o.jitter = 0.0;
  Backoff b(o);
  ConstantRng rng(12345);
  const int64_t expected_ms[] = {100, 200, 400, 800, 1000, 1000, 1000};
  for (int64_t e : expected_ms) {
    CHECK(b.PeekBase() == milliseconds(e));
    CHECK(b.Next(rng) == milliseconds(e));
  }
  CHECK(b.attempts() == 7);
}

TEST_CASE("backoff jitter stays within [base * (1 - jitter), base]") {
  BackoffOptions o;
  o.initial_delay = milliseconds(100);
  o.max_delay = milliseconds(10000);
  o.jitter = 0.5;
  {
    // u = 0: no reduction.
    Backoff b(o);
    ConstantRng zero(0);
    CHECK(b.Next(zero) == milliseconds(100));
    CHECK(b.Next(zero) == milliseconds(200));
  }
  {
    // u just below 1: almost the full 50% reduction.
    Backoff b(o);
    ConstantRng ones(~uint64_t{0});
    const Duration d0 = b.Next(ones);
    CHECK(d0 >= milliseconds(50));
    CHECK(d0 < milliseconds(51));
    const Duration d1 = b.Next(ones);
    CHECK(d1 >= milliseconds(100));
    CHECK(d1 < milliseconds(101));
  }
  {
    // A real generator: every draw within bounds, and not all equal.
    Backoff b(o);
    Xoshiro256 rng(7);
    Duration first{};
    bool varied = false;
    for (int i = 0; i < 200; ++i) {
      b.Reset();
      const Duration d = b.Next(rng);
      CHECK(d >= milliseconds(50));
      CHECK(d <= milliseconds(100));
      if (i == 0) first = d;
      if (d != first) varied = true;
    }
    CHECK(varied);
  }
}

TEST_CASE("backoff Reset starts over and huge attempt counts saturate at the ceiling") {
  BackoffOptions o;
  o.initial_delay = milliseconds(10);
  o.max_delay = std::chrono::seconds(30);
  o.multiplier = 3.0;
  o.jitter = 0.0;
  Backoff b(o);
  ConstantRng rng(0);
  for (int i = 0; i < 5000; ++i) (void)b.Next(rng);
  CHECK(b.Next(rng) == std::chrono::seconds(30));
  b.Reset();
  CHECK(b.attempts() == 0);
  CHECK(b.Next(rng) == milliseconds(10));
  CHECK(b.Next(rng) == milliseconds(30));
}

TEST_CASE("xoshiro256 is deterministic per seed and differs across seeds") {
  Xoshiro256 a(42), b(42), c(43);
  bool differs = false;
  for (int i = 0; i < 16; ++i) {
    const uint64_t x = a.Next();
    CHECK(x == b.Next());
    if (x != c.Next()) differs = true;
  }
  CHECK(differs);
}

}  // namespace
}  // namespace dpnode::asio
