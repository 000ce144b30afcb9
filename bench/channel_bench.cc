// channel_bench: throughput of the secure channel (AsioEnv + SecureChannel,
// the real transport) against plain TCP, both on 127.0.0.1 in the same run,
// for 64 KiB, 1 MiB and 40 MB messages.
//
//   build/bench/channel_bench [--json] [--mb N] [--sizes a,b,c] [--repeat R] [--aead-mb M]
//                             [--ahead BYTES]
//
// For each size, about N MB (default 400) are sent as whole messages, at
// least 5 of them, first over plain TCP and then over the secure channel;
// with --repeat R the whole list of sizes is run R times, so the two arms
// alternate and see the same background load. Sender and receiver run on
// separate threads (plain: two blocking-socket threads; secure: two
// AsioEnvs, each with its own loop thread), so the two sides use two cores
// as two sites would. Time runs from the first byte offered by the sender to
// the last message received. MB = 10^6 bytes. With --json, one object per
// size per run per line:
//   {"bytes":..., "messages":..., "plain_mb_per_s":..., "secure_mb_per_s":..., "ratio":...,
//    "aead_one_core_mb_per_s":..., "plain_cpu_s_per_gb":..., "secure_cpu_s_per_gb":...,
//    "send_loop_run":..., "send_loop_runnable":..., "recv_loop_run":...,
//    "recv_loop_runnable":..., "send_cpu_s_per_gb":..., "recv_cpu_s_per_gb":...,
//    "aead_one_core_cpu_mb_per_s":..., "load1":...}
// aead_one_core is libsodium's ChaCha20-Poly1305 on one thread (M MB, default
// 200), the ceiling of each side of the channel: _mb_per_s by the wall clock
// (low when other processes take the CPU), _cpu_mb_per_s per second of CPU
// the thread got (one core's speed, much less sensitive to load);
// send/recv_cpu_s_per_gb are each loop thread's CPU seconds per 10^9 payload
// bytes (1000 / that is what the side would do with a whole core);
// plain/secure_cpu_s_per_gb are process CPU
// time (both sides, kernel included) per 10^9 payload bytes. *_loop_run is
// the fraction of the secure arm's wall time the sender's (receiver's) loop
// thread was on a CPU, *_loop_runnable the fraction it was on a CPU or
// waiting in the run queue for one (Linux schedstat): runnable near 1 with
// run well below 1 means the thread had work and was starved of CPU by other
// processes; runnable well below 1 means it sat idle (a stall in the
// pipeline). load1 is the 1-minute load average when the line was printed.
// --ahead sets the channel's encrypt_ahead_bytes (default: the channel's).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sodium.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "crypto/identity.h"
#include "node/asio/asio_env.h"

namespace {

using namespace dpnode;  // NOLINT: a small program
using Clock = std::chrono::steady_clock;

bool WriteAll(int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool ReadAll(int fd, uint8_t* p, size_t n) {
  while (n > 0) {
    const ssize_t r = ::recv(fd, p, n, 0);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

// Plain TCP: an 8-byte length, then the message; the receiver reads each
// message whole into a buffer it reuses. Returns MB/s, or -1 on failure.
double PlainTcp(size_t size, size_t count, const std::vector<uint8_t>& data) {
  const int lfd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(lfd, 1) != 0 ||
      ::getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return -1;
  }
  std::promise<Clock::time_point> finished;
  std::thread receiver([&] {
    const int fd = ::accept(lfd, nullptr, nullptr);
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::vector<uint8_t> buf(size);
    bool ok = fd >= 0;
    for (size_t i = 0; ok && i < count; ++i) {
      uint8_t header[8];
      ok = ReadAll(fd, header, 8) && ReadAll(fd, buf.data(), size);
    }
    finished.set_value(ok ? Clock::now() : Clock::time_point{});
    ::close(fd);
  });
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    receiver.detach();
    return -1;
  }
  const Clock::time_point start = Clock::now();
  uint8_t header[8] = {0};
  for (int b = 0; b < 8; ++b) header[b] = static_cast<uint8_t>(uint64_t{size} >> (56 - 8 * b));
  for (size_t i = 0; i < count; ++i) {
    if (!WriteAll(fd, header, 8) || !WriteAll(fd, data.data(), size)) break;
  }
  const Clock::time_point end = finished.get_future().get();
  receiver.join();
  ::close(fd);
  ::close(lfd);
  if (end == Clock::time_point{}) return -1;
  return static_cast<double>(size * count) / 1e6 / std::chrono::duration<double>(end - start).count();
}

// A thread's scheduler accounting (Linux /proc/<pid>/task/<tid>/schedstat):
// nanoseconds on a CPU and nanoseconds runnable but waiting for one.
struct SchedStat {
  double run_ns = 0;
  double wait_ns = 0;
};

SchedStat ReadSchedStat(long tid) {
  SchedStat s;
  std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/schedstat");
  in >> s.run_ns >> s.wait_ns;
  return s;
}

double LoadAverage1() {
  double load = -1;
  std::ifstream in("/proc/loadavg");
  in >> load;
  return load;
}

struct SecureResult {
  double mb_per_s = -1;
  // Fractions of the wall time (see the file comment).
  double send_run = 0, send_runnable = 0, recv_run = 0, recv_runnable = 0;
  // CPU seconds of each loop thread per 10^9 payload bytes.
  double send_cpu_s_per_gb = 0, recv_cpu_s_per_gb = 0;
};

class CountingHandler : public LinkHandler {
 public:
  CountingHandler(size_t count, size_t size) : count_(count), size_(size) {}
  void OnLinkUp(const std::shared_ptr<Link>& link) override { up_.set_value(link); }
  void OnMessage(const std::shared_ptr<Link>&, const SharedBytes& m) override {
    if (m->size() != size_) bad_ = true;
    if (++received_ == count_) done_.set_value(Clock::now());
  }
  void OnLinkDown(const std::shared_ptr<Link>&, const Status&) override {}
  std::promise<std::shared_ptr<Link>> up_;
  std::promise<Clock::time_point> done_;
  bool bad_ = false;

 private:
  size_t count_, size_, received_ = 0;
};

class IgnoringHandler : public LinkHandler {
 public:
  void OnLinkUp(const std::shared_ptr<Link>& link) override { up_.set_value(link); }
  void OnMessage(const std::shared_ptr<Link>&, const SharedBytes&) override {}
  void OnLinkDown(const std::shared_ptr<Link>&, const Status&) override {}
  std::promise<std::shared_ptr<Link>> up_;
};

// The sender's pump: runs on its loop, queues until the link pushes back,
// then tries again shortly.
struct Pump {
  asio::AsioEnv* env;
  std::shared_ptr<Link> link;
  SharedBytes message;
  size_t left;
  Timer retry;
  void Run() {
    while (left > 0) {
      const Status s = link->Send(message);
      if (s.code() == StatusCode::kUnavailable) {
        retry = env->RunAfter(std::chrono::microseconds(200), [this] { Run(); });
        return;
      }
      if (!s.ok()) {
        std::fprintf(stderr, "send failed: %s\n", s.ToString().c_str());
        return;
      }
      --left;
    }
  }
};

SecureResult Secure(size_t size, size_t count, const std::vector<uint8_t>& data,
                    size_t encrypt_ahead) {
  SecureResult result;
  const crypto::SiteIdentity a_id = std::move(crypto::SiteIdentity::Generate()).value();
  const crypto::SiteIdentity b_id = std::move(crypto::SiteIdentity::Generate()).value();
  asio::NetworkOptions o;
  o.channel.consortium_id = "channel-bench";
  if (encrypt_ahead > 0) o.channel.encrypt_ahead_bytes = encrypt_ahead;
  auto a = std::move(asio::AsioEnv::Create(
                         a_id, [&](const crypto::Ed25519PublicKey& k) { return k == b_id.public_key(); },
                         o))
               .value();
  auto b = std::move(asio::AsioEnv::Create(
                         b_id, [&](const crypto::Ed25519PublicKey& k) { return k == a_id.public_key(); },
                         o))
               .value();
  IgnoringHandler a_handler;
  CountingHandler b_handler(count, size);
  a->network().SetHandler(&a_handler);
  b->network().SetHandler(&b_handler);
  if (!b->network().Listen(NetAddress{"127.0.0.1", 0}).ok()) return result;
  const uint16_t port = b->asio_network().listen_port();
  a->Start();
  b->Start();
  a->RunOnLoop([&] {
    a->network().Connect(b_id.public_key(), NetAddress{"127.0.0.1", port},
                         [](const Status& s) { std::fprintf(stderr, "%s\n", s.ToString().c_str()); });
  });
  std::shared_ptr<Link> link = a_handler.up_.get_future().get();
  b_handler.up_.get_future().wait();
  auto message = std::make_shared<const std::vector<uint8_t>>(data.begin(), data.begin() + size);
  Pump pump{a.get(), link, message, count, Timer()};
  long send_tid = 0, recv_tid = 0;
  a->RunOnLoop([&] { send_tid = ::syscall(SYS_gettid); });
  b->RunOnLoop([&] { recv_tid = ::syscall(SYS_gettid); });
  const SchedStat send0 = ReadSchedStat(send_tid), recv0 = ReadSchedStat(recv_tid);
  Clock::time_point start;
  a->RunOnLoop([&] {
    start = Clock::now();
    pump.Run();
  });
  const Clock::time_point end = b_handler.done_.get_future().get();
  const SchedStat send1 = ReadSchedStat(send_tid), recv1 = ReadSchedStat(recv_tid);
  a->RunOnLoop([&] { pump.retry.Cancel(); });
  link.reset();
  a->Stop();
  b->Stop();
  if (b_handler.bad_) return result;
  const double wall = std::chrono::duration<double>(end - start).count();
  result.mb_per_s = static_cast<double>(size * count) / 1e6 / wall;
  // The schedstat window is slightly wider than [start, end] (it includes
  // the RunOnLoop hand-offs), so the fractions may exceed 1 by a little.
  const double wall_ns = wall * 1e9;
  result.send_run = (send1.run_ns - send0.run_ns) / wall_ns;
  result.send_runnable = (send1.run_ns + send1.wait_ns - send0.run_ns - send0.wait_ns) / wall_ns;
  result.recv_run = (recv1.run_ns - recv0.run_ns) / wall_ns;
  result.recv_runnable = (recv1.run_ns + recv1.wait_ns - recv0.run_ns - recv0.wait_ns) / wall_ns;
  const double gb = static_cast<double>(size * count) / 1e9;
  result.send_cpu_s_per_gb = (send1.run_ns - send0.run_ns) / 1e9 / gb;
  result.recv_cpu_s_per_gb = (recv1.run_ns - recv0.run_ns) / 1e9 / gb;
  return result;
}

// CPU seconds used by the whole process (all threads) so far.
double ProcessCpuSeconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double ThreadCpuSeconds() {
  timespec t{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

struct AeadSpeed {
  double wall_mb_per_s = 0;  // what one thread got under the current load
  double cpu_mb_per_s = 0;   // per second of CPU actually received: one core's speed
};

// One core's ChaCha20-Poly1305 (libsodium, 65519-byte records as the channel
// uses): the ceiling for the secure channel on a side.
AeadSpeed AeadOneCore(size_t bytes) {
  std::vector<uint8_t> in(65519), out(65535);
  unsigned char key[crypto_aead_chacha20poly1305_ietf_KEYBYTES];
  unsigned char nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES] = {0};
  randombytes_buf(key, sizeof(key));
  const size_t records = std::max<size_t>(1, bytes / in.size());
  const double cpu_start = ThreadCpuSeconds();
  const Clock::time_point start = Clock::now();
  for (size_t i = 0; i < records; ++i) {
    unsigned long long out_len = 0;
    nonce[0] = static_cast<unsigned char>(i);
    crypto_aead_chacha20poly1305_ietf_encrypt(out.data(), &out_len, in.data(), in.size(), nullptr,
                                              0, nullptr, nonce, key);
  }
  const double wall = std::chrono::duration<double>(Clock::now() - start).count();
  const double cpu = ThreadCpuSeconds() - cpu_start;
  const double mb = static_cast<double>(records * in.size()) / 1e6;
  return AeadSpeed{mb / wall, mb / cpu};
}

std::vector<size_t> ParseSizes(const std::string& s) {
  std::vector<size_t> out;
  size_t pos = 0;
  while (pos < s.size()) {
    const size_t comma = s.find(',', pos);
    out.push_back(std::strtoull(s.substr(pos, comma - pos).c_str(), nullptr, 10));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  bool json = false;
  double total_mb = 400;
  double aead_mb = 200;
  int repeat = 1;
  size_t encrypt_ahead = 0;
  std::vector<size_t> sizes = {size_t{64} << 10, size_t{1} << 20, 40'000'000};
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--json") {
      json = true;
    } else if (arg == "--mb" && i + 1 < argc) {
      total_mb = std::atof(argv[++i]);
    } else if (arg == "--sizes" && i + 1 < argc) {
      sizes = ParseSizes(argv[++i]);
    } else if (arg == "--repeat" && i + 1 < argc) {
      repeat = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--ahead" && i + 1 < argc) {
      encrypt_ahead = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--aead-mb" && i + 1 < argc) {
      aead_mb = std::max(1.0, std::atof(argv[++i]));
    } else {
      std::fprintf(stderr,
                   "usage: %s [--json] [--mb N] [--sizes a,b,c] [--repeat R] [--aead-mb M] "
                   "[--ahead BYTES]\n",
                   argv[0]);
      return 2;
    }
  }
  if (sodium_init() < 0) return 1;
  const size_t max_size = *std::max_element(sizes.begin(), sizes.end());
  if (max_size == 0 || max_size > (size_t{64} << 20)) {
    std::fprintf(stderr, "sizes must be 1 byte to 64 MiB\n");
    return 2;
  }
  std::vector<uint8_t> data(max_size);
  randombytes_buf(data.data(), data.size());
  const AeadSpeed aead_speed = AeadOneCore(static_cast<size_t>(aead_mb * 1e6));
  const double aead = aead_speed.wall_mb_per_s;
  if (!json) {
    std::printf(
        "one-core ChaCha20-Poly1305 (libsodium): %.1f MB/s wall, %.1f MB/s per CPU second\n",
        aead, aead_speed.cpu_mb_per_s);
    std::printf("%12s %9s %12s %12s %7s %9s %9s %11s %11s %6s\n", "bytes", "messages",
                "plain MB/s", "secure MB/s", "ratio", "plain s/GB", "secure s/GB", "send run/rdy",
                "recv run/rdy", "load1");
  }
  int status = 0;
  for (int r = 0; r < repeat; ++r) {
  for (size_t size : sizes) {
    const size_t count = std::max<size_t>(5, static_cast<size_t>(total_mb * 1e6 / static_cast<double>(size)));
    const double gb = static_cast<double>(size * count) / 1e9;
    const double c0 = ProcessCpuSeconds();
    const double plain = PlainTcp(size, count, data);
    const double c1 = ProcessCpuSeconds();
    const SecureResult sr = Secure(size, count, data, encrypt_ahead);
    const double secure = sr.mb_per_s;
    const double c2 = ProcessCpuSeconds();
    const double plain_cpu = (c1 - c0) / gb, secure_cpu = (c2 - c1) / gb;
    if (plain <= 0 || secure <= 0) status = 1;
    const double ratio = plain > 0 ? secure / plain : 0;
    const double load1 = LoadAverage1();
    if (json) {
      std::printf(
          "{\"bytes\":%zu,\"messages\":%zu,\"plain_mb_per_s\":%.1f,\"secure_mb_per_s\":%.1f,"
          "\"ratio\":%.3f,\"aead_one_core_mb_per_s\":%.1f,\"plain_cpu_s_per_gb\":%.3f,"
          "\"secure_cpu_s_per_gb\":%.3f,\"send_loop_run\":%.2f,\"send_loop_runnable\":%.2f,"
          "\"recv_loop_run\":%.2f,\"recv_loop_runnable\":%.2f,\"send_cpu_s_per_gb\":%.3f,"
          "\"recv_cpu_s_per_gb\":%.3f,\"aead_one_core_cpu_mb_per_s\":%.1f,\"load1\":%.2f}\n",
          size, count, plain, secure, ratio, aead, plain_cpu, secure_cpu, sr.send_run,
          sr.send_runnable, sr.recv_run, sr.recv_runnable, sr.send_cpu_s_per_gb,
          sr.recv_cpu_s_per_gb, aead_speed.cpu_mb_per_s, load1);
    } else {
      std::printf("%12zu %9zu %12.1f %12.1f %7.2f %9.3f %9.3f %5.2f/%5.2f %5.2f/%5.2f %6.2f\n",
                  size, count, plain, secure, ratio, plain_cpu, secure_cpu, sr.send_run,
                  sr.send_runnable, sr.recv_run, sr.recv_runnable, load1);
    }
    std::fflush(stdout);
  }
  }
  return status;
}
