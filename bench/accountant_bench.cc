// Accountant speed: what a node pays to check its budget before each block of
// steps, and what calibration costs at start-up. Targets (docs/benchmarks.md):
// RDP epsilon for any T under 1 ms, calibration under 50 ms, PRV under 1 s.
//
//   ./build/bench/accountant_bench [--benchmark_filter=...] [--benchmark_format=json]
#include <benchmark/benchmark.h>

#include "node/privacy/accountant.h"
#include "node/privacy/calibrate.h"
#include "node/privacy/prv.h"
#include "node/privacy/rdp.h"

namespace dpnode::privacy {
namespace {

constexpr double kDelta = 1e-5;

// ε after T steps at q = 0.01, σ = 1.1, for T = 10 ... 10^7.
void BM_RdpEpsilon(benchmark::State& state) {
  const History h = {{0.01, 1.1, state.range(0)}};
  for (auto _ : state) {
    Result<RdpEpsilon> r = RdpEpsilonFor(h, kDelta);
    if (!r.ok()) state.SkipWithError(r.status().ToString().c_str());
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_RdpEpsilon)->Arg(10)->Arg(1000)->Arg(100000)->Arg(10000000)->Unit(benchmark::kMicrosecond);

// A ledger-like history: three phases with different (q, σ).
void BM_RdpEpsilonHeterogeneous(benchmark::State& state) {
  const History h = {{0.01, 1.1, 40000}, {0.02, 1.5, 30000}, {0.005, 0.9, 30000}};
  for (auto _ : state) benchmark::DoNotOptimize(RdpEpsilonFor(h, kDelta));
}
BENCHMARK(BM_RdpEpsilonHeterogeneous)->Unit(benchmark::kMicrosecond);

void BM_RdpCalibrateNoise(benchmark::State& state) {
  for (auto _ : state) {
    Result<NoiseCalibration> c = SmallestNoiseMultiplier(AccountantKind::kRdp, 3.0, kDelta, 0.01, 100000);
    if (!c.ok()) state.SkipWithError(c.status().ToString().c_str());
    benchmark::DoNotOptimize(c);
  }
}
BENCHMARK(BM_RdpCalibrateNoise)->Unit(benchmark::kMillisecond);

void BM_RdpCalibrateSteps(benchmark::State& state) {
  for (auto _ : state) {
    Result<StepsCalibration> c = LargestSteps(AccountantKind::kRdp, 3.0, kDelta, 0.01, 1.1);
    if (!c.ok()) state.SkipWithError(c.status().ToString().c_str());
    benchmark::DoNotOptimize(c);
  }
}
BENCHMARK(BM_RdpCalibrateSteps)->Unit(benchmark::kMillisecond);

void BM_PrvEpsilon(benchmark::State& state) {
  const History h = {{0.01, 1.1, state.range(0)}};
  for (auto _ : state) {
    Result<PrvEpsilon> r = PrvEpsilonFor(h, kDelta);
    if (!r.ok()) state.SkipWithError(r.status().ToString().c_str());
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_PrvEpsilon)->Arg(1000)->Arg(100000)->Unit(benchmark::kMillisecond);

void BM_PrvEpsilonHeterogeneous(benchmark::State& state) {
  const History h = {{0.01, 1.1, 40000}, {0.02, 1.5, 30000}, {0.005, 0.9, 30000}};
  for (auto _ : state) benchmark::DoNotOptimize(PrvEpsilonFor(h, kDelta));
}
BENCHMARK(BM_PrvEpsilonHeterogeneous)->Unit(benchmark::kMillisecond);

void BM_PrvCalibrateNoise(benchmark::State& state) {
  for (auto _ : state) {
    Result<NoiseCalibration> c = SmallestNoiseMultiplier(AccountantKind::kPrv, 3.0, kDelta, 0.01, 10000);
    if (!c.ok()) state.SkipWithError(c.status().ToString().c_str());
    benchmark::DoNotOptimize(c);
  }
}
BENCHMARK(BM_PrvCalibrateNoise)->Unit(benchmark::kMillisecond)->Iterations(2);

}  // namespace
}  // namespace dpnode::privacy

BENCHMARK_MAIN();
