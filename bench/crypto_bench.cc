// crypto_bench: the CPU cost of the secure channel's crypto on this machine,
// through the project's own code (crypto/secure_channel.h, crypto/noise_*.h,
// crypto/identity.h), for the simulator's CryptoModel (sim/sim_network.h) and
// the [crypto] table of experiment files (docs/experiments.md).
//
//   build/bench/crypto_bench [--json] [Google Benchmark flags]
//
// Benchmarks (CPU time of the one thread that runs them):
//   BM_ChannelSeal/N   SecureChannel::Send of one N-byte message on an
//                      established channel, then draining GetBytesToSend /
//                      MarkBytesSent: records, framing, ChaCha20-Poly1305,
//                      rekeys as they fall due.
//   BM_ChannelOpen/N   ReceivedBytes of that message's frames on the peer and
//                      NextMessage: decrypt, check, reassemble. The frames are
//                      sealed in batches with the timer paused.
//   BM_RawAeadSeal/N   the same-run baseline: libsodium's
//                      crypto_aead_chacha20poly1305_ietf_encrypt over the
//                      message in records of the channel's size, with no
//                      channel around it.
//   BM_Handshake       a full Noise XX handshake between two in-memory
//                      channels, each proving its Ed25519 identity; counters
//                      initiator_us and responder_us are each side's CPU time
//                      (Create and the ReceivedBytes calls that side made).
// N = 64, 1 KiB, 64 KiB, 1 MiB. bytes_per_second is per CPU second.
//
// Afterwards the program fits t = a + bytes / b (t: CPU seconds per message)
// over the sizes, for seal and for open, by least squares on the relative
// residuals (t_i - a - bytes_i / b) / t_i: an ordinary fit would let the
// 1 MiB point's noise (microseconds) decide a, which is tens of nanoseconds.
// It prints the fits and the values for the simulator, as the [crypto] keys:
//   aead_mb_per_s        1 / mean of the seal and open per-byte costs, MB/s
//                        (MB = 10^6 bytes); the simulator charges one rate
//                        for both ends
//   aead_per_message_us  mean of the seal and open fixed costs
//   handshake_ms         (initiator + responder CPU) / 2: the simulator
//                        charges one handshake computation on each side
// With --json the benchmark table goes to stderr and stdout gets one JSON
// object (keys below, in PrintJson). For Google Benchmark's own JSON use
// --benchmark_out=FILE --benchmark_out_format=json.
#include <benchmark/benchmark.h>
#include <sodium.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "crypto/identity.h"
#include "crypto/secure_channel.h"

namespace {

using namespace dpnode::crypto;  // NOLINT: a small program
using dpnode::Result;

constexpr int64_t kSizes[] = {64, 1 << 10, 64 << 10, 1 << 20};  // message bytes
// Ciphertext sealed ahead for BM_ChannelOpen per pause of the timer, bytes of
// payload; the last batch of a run may be partly unused.
constexpr size_t kOpenBatchBytes = size_t{4} << 20;

SecureChannelOptions Options() {
  SecureChannelOptions o;
  o.consortium_id = "crypto-bench";
  return o;
}

PinnedKeyCheck Pin(const Ed25519PublicKey& key) {
  return [key](const Ed25519PublicKey& k) { return k == key; };
}

// Moves everything `from` has to send into `to`. False if `to` refused it.
bool Move(SecureChannel& from, SecureChannel& to) {
  for (ByteView out = from.GetBytesToSend(); !out.empty(); out = from.GetBytesToSend()) {
    const size_t n = out.size();
    if (!to.ReceivedBytes(out).ok()) return false;
    from.MarkBytesSent(n);
  }
  return true;
}

// Two established channels; `a` dialled `b`.
struct Pair {
  SiteIdentity id_a = std::move(SiteIdentity::Generate()).value();
  SiteIdentity id_b = std::move(SiteIdentity::Generate()).value();
  SecureChannel a =
      std::move(SecureChannel::Create(ChannelRole::kInitiator, id_a, Pin(id_b.public_key()),
                                      Options(), SteadyTime(0)))
          .value();
  SecureChannel b =
      std::move(SecureChannel::Create(ChannelRole::kResponder, id_b, Pin(id_a.public_key()),
                                      Options(), SteadyTime(0)))
          .value();
  bool Establish() {
    for (int i = 0; i < 4 && !(a.IsEstablished() && b.IsEstablished()); ++i) {
      if (!Move(a, b) || !Move(b, a)) return false;
    }
    return a.IsEstablished() && b.IsEstablished();
  }
};

std::shared_ptr<const Bytes> Message(size_t size) {
  auto m = std::make_shared<Bytes>(size);
  randombytes_buf(m->data(), m->size());
  return m;
}

void BM_ChannelSeal(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  Pair p;
  if (!p.Establish()) return state.SkipWithError("handshake failed");
  const std::shared_ptr<const Bytes> message = Message(size);
  for (auto _ : state) {
    if (!p.a.Send(message).ok()) return state.SkipWithError("send failed");
    for (ByteView out = p.a.GetBytesToSend(); !out.empty(); out = p.a.GetBytesToSend()) {
      benchmark::DoNotOptimize(out.data());
      p.a.MarkBytesSent(out.size());
    }
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}

void BM_ChannelOpen(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  Pair p;
  if (!p.Establish()) return state.SkipWithError("handshake failed");
  const std::shared_ptr<const Bytes> message = Message(size);
  const size_t batch = std::max<size_t>(1, kOpenBatchBytes / size);
  Bytes wire;
  std::vector<size_t> ends;  // ends[i]: where message i's frames end in `wire`
  size_t next = batch;
  size_t begin = 0;
  for (auto _ : state) {
    if (next == batch) {
      state.PauseTiming();
      wire.clear();
      ends.clear();
      for (size_t i = 0; i < batch; ++i) {
        if (!p.a.Send(message).ok()) return state.SkipWithError("send failed");
        for (ByteView out = p.a.GetBytesToSend(); !out.empty(); out = p.a.GetBytesToSend()) {
          wire.insert(wire.end(), out.data(), out.data() + out.size());
          p.a.MarkBytesSent(out.size());
        }
        ends.push_back(wire.size());
      }
      next = 0;
      begin = 0;
      state.ResumeTiming();
    }
    if (!p.b.ReceivedBytes(ByteView(wire.data() + begin, ends[next] - begin)).ok()) {
      return state.SkipWithError("open failed");
    }
    std::optional<Bytes> got = p.b.NextMessage();
    if (!got || got->size() != size) return state.SkipWithError("message lost");
    benchmark::DoNotOptimize(got->data());
    begin = ends[next++];
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}

void BM_RawAeadSeal(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  const std::shared_ptr<const Bytes> message = Message(size);
  std::vector<uint8_t> out(kMaxRecordPlaintext + crypto_aead_chacha20poly1305_ietf_ABYTES);
  unsigned char key[crypto_aead_chacha20poly1305_ietf_KEYBYTES];
  unsigned char nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES] = {0};
  randombytes_buf(key, sizeof(key));
  uint64_t n = 0;
  for (auto _ : state) {
    for (size_t off = 0; off < size; off += kMaxRecordPlaintext) {
      const size_t len = std::min(kMaxRecordPlaintext, size - off);
      ++n;
      std::memcpy(nonce + 4, &n, sizeof(n));
      unsigned long long out_len = 0;
      crypto_aead_chacha20poly1305_ietf_encrypt(out.data(), &out_len, message->data() + off, len,
                                                nullptr, 0, nullptr, nonce, key);
      benchmark::DoNotOptimize(out.data());
    }
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}

double ThreadCpuSeconds() {
  timespec t{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

void BM_Handshake(benchmark::State& state) {
  const SiteIdentity id_a = std::move(SiteIdentity::Generate()).value();
  const SiteIdentity id_b = std::move(SiteIdentity::Generate()).value();
  double initiator_s = 0, responder_s = 0;
  for (auto _ : state) {
    double t0 = ThreadCpuSeconds();
    Result<SecureChannel> a = SecureChannel::Create(
        ChannelRole::kInitiator, id_a, Pin(id_b.public_key()), Options(), SteadyTime(0));
    double t1 = ThreadCpuSeconds();
    initiator_s += t1 - t0;
    Result<SecureChannel> b = SecureChannel::Create(
        ChannelRole::kResponder, id_b, Pin(id_a.public_key()), Options(), SteadyTime(0));
    t0 = ThreadCpuSeconds();
    responder_s += t0 - t1;
    if (!a.ok() || !b.ok()) return state.SkipWithError("create failed");
    // Each ReceivedBytes is charged to the side that receives: that is where
    // the DHs, signatures and verifications of the next step happen.
    for (int i = 0; i < 4 && !(a->IsEstablished() && b->IsEstablished()); ++i) {
      t0 = ThreadCpuSeconds();
      if (!Move(*a, *b)) return state.SkipWithError("responder refused");
      t1 = ThreadCpuSeconds();
      if (!Move(*b, *a)) return state.SkipWithError("initiator refused");
      const double t2 = ThreadCpuSeconds();
      responder_s += t1 - t0;
      initiator_s += t2 - t1;
    }
    if (!a->IsEstablished() || !b->IsEstablished()) return state.SkipWithError("not established");
    benchmark::DoNotOptimize(a->session_hash().data());
  }
  state.counters["initiator_us"] =
      benchmark::Counter(initiator_s * 1e6, benchmark::Counter::kAvgIterations);
  state.counters["responder_us"] =
      benchmark::Counter(responder_s * 1e6, benchmark::Counter::kAvgIterations);
}

void Sizes(benchmark::internal::Benchmark* b) {
  for (int64_t s : kSizes) b->Arg(s);
}

BENCHMARK(BM_ChannelSeal)->Apply(Sizes)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ChannelOpen)->Apply(Sizes)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_RawAeadSeal)->Apply(Sizes)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Handshake)->Unit(benchmark::kMicrosecond);

// Shows the table as usual and keeps every finished run for the fit.
class KeepingReporter : public benchmark::ConsoleReporter {
 public:
  using ConsoleReporter::ConsoleReporter;
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) {
      if (r.run_type == Run::RT_Iteration && !r.error_occurred && r.iterations > 0)
        kept.push_back(r);
    }
    ConsoleReporter::ReportRuns(runs);
  }
  std::vector<Run> kept;
};

struct Point {
  double bytes;
  double seconds;  // CPU per message
};

struct Fit {
  double per_message_s = 0;  // a
  double bytes_per_s = 0;    // b; 0 when the fit is degenerate
};

// Minimizes sum(((t - a - x s) / t)^2) over a and s = 1 / b.
Fit FitLine(const std::vector<Point>& points) {
  double sw = 0, sx = 0, sxx = 0, st = 0, sxt = 0;
  for (const Point& p : points) {
    const double w = 1.0 / (p.seconds * p.seconds);
    sw += w;
    sx += w * p.bytes;
    sxx += w * p.bytes * p.bytes;
    st += w * p.seconds;
    sxt += w * p.bytes * p.seconds;
  }
  const double det = sw * sxx - sx * sx;
  Fit f;
  if (points.size() < 2 || det <= 0) return f;
  const double s = (sw * sxt - sx * st) / det;
  f.per_message_s = (st - s * sx) / sw;
  f.bytes_per_s = s > 0 ? 1.0 / s : 0;
  return f;
}

std::vector<Point> PointsOf(const std::vector<benchmark::BenchmarkReporter::Run>& runs,
                            const std::string& function) {
  std::vector<Point> out;
  for (const auto& r : runs) {
    if (r.run_name.function_name != function) continue;
    out.push_back({std::atof(r.run_name.args.c_str()),
                   r.cpu_accumulated_time / static_cast<double>(r.iterations)});
  }
  std::sort(out.begin(), out.end(),
            [](const Point& x, const Point& y) { return x.bytes < y.bytes; });
  return out;
}

double LoadAverage1() {
  double load = -1;
  std::ifstream in("/proc/loadavg");
  in >> load;
  return load;
}

struct Summary {
  std::map<std::string, std::vector<Point>> series;  // function name -> points
  Fit seal, open;
  double initiator_us = 0, responder_us = 0, handshake_cpu_us = 0;
  double aead_mb_per_s = 0, aead_per_message_us = 0, handshake_ms = 0;
  double load1_before = 0, load1_after = 0;
};

void PrintText(const Summary& s) {
  std::printf("\nper size, CPU per message and MB per CPU second (MB = 10^6 bytes):\n");
  for (const auto& [name, points] : s.series) {
    for (const Point& p : points) {
      std::printf("  %-16s %8.0f B  %10.3f us  %8.1f MB/s\n", name.c_str(), p.bytes,
                  p.seconds * 1e6, p.bytes / p.seconds / 1e6);
    }
  }
  std::printf("fit t = a + bytes / b (least squares on relative residuals):\n");
  std::printf("  seal: a = %.3f us, b = %.1f MB/s\n", s.seal.per_message_s * 1e6,
              s.seal.bytes_per_s / 1e6);
  std::printf("  open: a = %.3f us, b = %.1f MB/s\n", s.open.per_message_s * 1e6,
              s.open.bytes_per_s / 1e6);
  std::printf("handshake CPU: initiator %.1f us, responder %.1f us, whole handshake %.1f us\n",
              s.initiator_us, s.responder_us, s.handshake_cpu_us);
  std::printf(
      "simulator [crypto]: aead_mb_per_s = %.1f, aead_per_message_us = %.3f, "
      "handshake_ms = %.4f\n",
      s.aead_mb_per_s, s.aead_per_message_us, s.handshake_ms);
  std::printf("load average (1 min): %.2f before, %.2f after\n", s.load1_before, s.load1_after);
}

void PrintJson(const Summary& s) {
  std::printf("{\"load1_before\":%.2f,\"load1_after\":%.2f", s.load1_before, s.load1_after);
  for (const auto& [name, points] : s.series) {
    std::printf(",\"%s\":[", name.c_str());
    for (size_t i = 0; i < points.size(); ++i) {
      std::printf("%s{\"bytes\":%.0f,\"cpu_us\":%.4f,\"mb_per_cpu_s\":%.2f}", i ? "," : "",
                  points[i].bytes, points[i].seconds * 1e6,
                  points[i].bytes / points[i].seconds / 1e6);
    }
    std::printf("]");
  }
  std::printf(",\"seal_fit\":{\"per_message_us\":%.4f,\"mb_per_s\":%.2f}",
              s.seal.per_message_s * 1e6, s.seal.bytes_per_s / 1e6);
  std::printf(",\"open_fit\":{\"per_message_us\":%.4f,\"mb_per_s\":%.2f}",
              s.open.per_message_s * 1e6, s.open.bytes_per_s / 1e6);
  std::printf(",\"handshake\":{\"initiator_us\":%.2f,\"responder_us\":%.2f,\"cpu_us\":%.2f}",
              s.initiator_us, s.responder_us, s.handshake_cpu_us);
  std::printf(
      ",\"crypto\":{\"aead_mb_per_s\":%.2f,\"aead_per_message_us\":%.4f,"
      "\"handshake_ms\":%.5f}}\n",
      s.aead_mb_per_s, s.aead_per_message_us, s.handshake_ms);
}

}  // namespace

int main(int argc, char** argv) {
  bool json = false;
  int kept_args = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--json") == 0) {
      json = true;
    } else {
      argv[kept_args++] = argv[i];
    }
  }
  argc = kept_args;
  if (sodium_init() < 0) return 1;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;

  Summary s;
  s.load1_before = LoadAverage1();
  KeepingReporter reporter;
  if (json) {
    reporter.SetOutputStream(&std::cerr);
    reporter.SetErrorStream(&std::cerr);
  }
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  s.load1_after = LoadAverage1();

  for (const char* name : {"BM_ChannelSeal", "BM_ChannelOpen", "BM_RawAeadSeal"}) {
    std::vector<Point> points = PointsOf(reporter.kept, name);
    if (!points.empty()) s.series[name] = std::move(points);
  }
  // A series left out by --benchmark_filter fits to zeros.
  s.seal = FitLine(PointsOf(reporter.kept, "BM_ChannelSeal"));
  s.open = FitLine(PointsOf(reporter.kept, "BM_ChannelOpen"));
  int handshakes = 0;
  for (const auto& r : reporter.kept) {
    if (r.run_name.function_name != "BM_Handshake") continue;
    s.initiator_us += r.counters.at("initiator_us").value;
    s.responder_us += r.counters.at("responder_us").value;
    s.handshake_cpu_us += r.cpu_accumulated_time / static_cast<double>(r.iterations) * 1e6;
    ++handshakes;
  }
  if (handshakes > 0) {
    s.initiator_us /= handshakes;
    s.responder_us /= handshakes;
    s.handshake_cpu_us /= handshakes;
  }
  if (s.seal.bytes_per_s > 0 && s.open.bytes_per_s > 0) {
    s.aead_mb_per_s = 2.0 / (1.0 / s.seal.bytes_per_s + 1.0 / s.open.bytes_per_s) / 1e6;
  }
  s.aead_per_message_us = (s.seal.per_message_s + s.open.per_message_s) / 2 * 1e6;
  s.handshake_ms = (s.initiator_us + s.responder_us) / 2 / 1e3;
  if (json) {
    PrintJson(s);
  } else {
    PrintText(s);
  }
  return 0;
}
