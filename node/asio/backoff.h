// Reconnect delays: exponential backoff with jitter, as pure arithmetic.
//
// The n-th delay (n = 0, 1, ...) since the last Reset() is
//   base_n  = min(max_delay, initial_delay * multiplier^n)
//   delay_n = base_n * (1 - jitter * u),  u uniform in [0, 1) from the Rng
// so delays grow geometrically up to a ceiling, and a fraction `jitter` of
// each is randomised downwards. The jitter spreads the reconnects of many
// sites that lost the same peer at the same moment, so they do not arrive
// together when it comes back. No clock, no I/O: the caller owns the timer
// and passes the (non-secret) Rng in, so the simulator's seeded mode
// reproduces the same delays.
#ifndef DPNODE_NODE_ASIO_BACKOFF_H_
#define DPNODE_NODE_ASIO_BACKOFF_H_

#include <cstdint>

#include "node/env.h"

namespace dpnode::asio {

struct BackoffOptions {
  Duration initial_delay = std::chrono::milliseconds(250);  // first delay, before jitter
  Duration max_delay = std::chrono::seconds(30);            // ceiling of base_n
  double multiplier = 2.0;                                  // >= 1
  double jitter = 0.5;                                      // in [0, 1]; 0 = no randomness
};

class Backoff {
 public:
  // Preconditions (checked): 0 < initial_delay <= max_delay, multiplier >= 1,
  // 0 <= jitter <= 1.
  explicit Backoff(const BackoffOptions& options = {});

  // The delay before the next attempt; advances the attempt count.
  Duration Next(Rng& rng);
  // The ceiling the next call of Next() draws below (base_n), without advancing.
  Duration PeekBase() const;
  // After a success: the next delay starts from initial_delay again.
  void Reset() { attempts_ = 0; }
  // Delays handed out since the last Reset().
  uint64_t attempts() const { return attempts_; }
  const BackoffOptions& options() const { return options_; }

 private:
  BackoffOptions options_;
  uint64_t attempts_ = 0;
};

}  // namespace dpnode::asio

#endif  // DPNODE_NODE_ASIO_BACKOFF_H_
