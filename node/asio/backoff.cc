// Exponential backoff with jitter (see backoff.h).
#include "node/asio/backoff.h"

#include <cmath>

#include "base/check.h"

namespace dpnode::asio {

Backoff::Backoff(const BackoffOptions& options) : options_(options) {
  DPNODE_CHECK(options_.initial_delay.count() > 0 && options_.initial_delay <= options_.max_delay,
               "backoff delays: initial %lld ns, max %lld ns",
               static_cast<long long>(options_.initial_delay.count()),
               static_cast<long long>(options_.max_delay.count()));
  DPNODE_CHECK(options_.multiplier >= 1.0, "backoff multiplier %g", options_.multiplier);
  DPNODE_CHECK(options_.jitter >= 0.0 && options_.jitter <= 1.0, "backoff jitter %g",
               options_.jitter);
}

Duration Backoff::PeekBase() const {
  // In floating point so large attempt counts saturate at the ceiling
  // instead of overflowing.
  const double max_ns = static_cast<double>(options_.max_delay.count());
  const double base = static_cast<double>(options_.initial_delay.count()) *
                      std::pow(options_.multiplier, static_cast<double>(attempts_));
  if (!(base < max_ns)) return options_.max_delay;
  return Duration(static_cast<int64_t>(base));
}

Duration Backoff::Next(Rng& rng) {
  const Duration base = PeekBase();
  ++attempts_;
  if (options_.jitter == 0.0) return base;
  const double factor = 1.0 - options_.jitter * rng.Uniform();
  return Duration(static_cast<int64_t>(static_cast<double>(base.count()) * factor));
}

}  // namespace dpnode::asio
