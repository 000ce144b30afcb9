// The ledger's central promise under kill -9: a forked child charges blocks of
// steps in a loop and, after each successful Reserve(), reports the cumulative
// step count it may now run through a pipe; the parent kills it with SIGKILL
// at a random moment, reopens the ledger and checks that it verifies and holds
// at least every step the child was allowed to run. Runs on the real disk
// under /tmp, so fsync really happens. Set DPNODE_TEST_SEED to replay a run.
#include <doctest/doctest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "node/privacy/ledger.h"
#include "tests/temp_dir.h"

namespace dpnode::privacy {
namespace {

using testing::TempDir;

uint64_t TestSeed() {
  const char* env = std::getenv("DPNODE_TEST_SEED");
  return env != nullptr ? std::strtoull(env, nullptr, 10) : 20261127;
}


Budget CrashBudget() {
  Budget b;
  b.epsilon = 10;
  b.delta = 1e-5;
  b.accountant = AccountantKind::kRdp;
  b.label = "crash-test";
  return b;
}

// Charges cheap enough (σ = 20, q = 0.001) that the budget outlasts the test.
constexpr double kSampleRate = 0.001;
constexpr double kNoise = 20.0;

// Sent by the child before it touches the ledger, so the parent can time its
// kill from there rather than from fork() (which a loaded machine delays).
constexpr int64_t kStartedMarker = -1;

// The child: optionally create, then charge forever, reporting each
// acknowledged total. Exits only on an error (its code says which).
[[noreturn]] void ChargeUntilKilled(const std::string& dir, bool create, int report_fd,
                                    uint64_t seed) {
  if (write(report_fd, &kStartedMarker, sizeof kStartedMarker) != sizeof kStartedMarker) _exit(2);
  Result<std::unique_ptr<Ledger>> l =
      create ? Ledger::Create(dir, CrashBudget()) : Ledger::Open(dir);
  if (!l.ok()) _exit(create ? 3 : 4);
  if (create) {
    const int64_t zero = 0;
    if (write(report_fd, &zero, sizeof zero) != sizeof zero) _exit(5);
  }
  std::mt19937_64 rng(seed);
  for (;;) {
    const StepBlock block{kSampleRate, kNoise, 1 + static_cast<int64_t>(rng() % 8)};
    Result<ChargeReceipt> r = (*l)->Reserve(block);
    if (!r.ok()) _exit(6);
    // From here the steps "may run": this is what the ledger must not forget.
    // 8-byte writes to a pipe are atomic, so a kill cannot tear a report.
    const int64_t allowed = r->total_steps;
    if (write(report_fd, &allowed, sizeof allowed) != sizeof allowed) _exit(7);
  }
}

struct Round {
  bool reported = false;  // the child reported at least once
  int64_t allowed = 0;    // the last total it reported
  int status = 0;         // from waitpid
};

Round RunAndKill(const std::string& dir, bool create, int delay_us, uint64_t child_seed) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    close(fds[0]);
    ChargeUntilKilled(dir, create, fds[1], child_seed);
  }
  close(fds[1]);
  int64_t value = 0;
  ssize_t n = read(fds[0], &value, sizeof value);  // blocks until the child runs
  REQUIRE(n == static_cast<ssize_t>(sizeof value));
  REQUIRE(value == kStartedMarker);
  usleep(static_cast<useconds_t>(delay_us));  // sleeping is fine in a test
  kill(child, SIGKILL);
  Round round;
  REQUIRE(waitpid(child, &round.status, 0) == child);
  for (;;) {
    n = read(fds[0], &value, sizeof value);
    if (n <= 0) break;
    REQUIRE(n == static_cast<ssize_t>(sizeof value));
    round.reported = true;
    round.allowed = value;
  }
  close(fds[0]);
  return round;
}

TEST_CASE("ledger crash: kill -9 at random moments never loses an acknowledged step") {
  const uint64_t seed = TestSeed();
  INFO("DPNODE_TEST_SEED=" << seed);
  std::mt19937_64 rng(seed);
  TempDir dir;
  {
    Result<std::unique_ptr<Ledger>> l = Ledger::Create(dir.path(), CrashBudget());
    REQUIRE(l.ok());
  }

  constexpr int kRounds = 120;
  int64_t acknowledged = 0;  // the most the child was ever allowed to run
  int64_t charged = 0;       // what the last reopen found
  int rounds_with_progress = 0;
  uint64_t recovered_bytes = 0;
  for (int i = 0; i < kRounds; ++i) {
    CAPTURE(i);
    const int delay_us = static_cast<int>(rng() % 10000);
    const Round round = RunAndKill(dir.path(), /*create=*/false, delay_us, rng());
    // The child never stops by itself: anything but SIGKILL is a failure
    // (its exit code names the step that failed).
    CHECK(WIFSIGNALED(round.status));
    if (WIFEXITED(round.status)) FAIL("child exited with " << WEXITSTATUS(round.status));
    if (round.reported) {
      ++rounds_with_progress;
      acknowledged = std::max(acknowledged, round.allowed);
    }

    Result<std::unique_ptr<Ledger>> l = Ledger::Open(dir.path());
    REQUIRE_MESSAGE(l.ok(), l.status().ToString());
    CHECK((*l)->total_steps() >= acknowledged);
    CHECK((*l)->total_steps() >= charged);  // reopening never loses what it saw
    charged = (*l)->total_steps();
    recovered_bytes += (*l)->recovery().recovered_tail_bytes;
  }
  MESSAGE("rounds " << kRounds << ", with progress " << rounds_with_progress
                    << ", steps acknowledged " << acknowledged << ", charged " << charged
                    << ", tail bytes recovered " << recovered_bytes);
  // Make sure the test exercised something: on an idle machine most kills
  // land mid-loop; the bound leaves room for a loaded one.
  CHECK(rounds_with_progress > kRounds / 4);
  CHECK(acknowledged > 0);
}

TEST_CASE("ledger crash: kill -9 during Create leaves no ledger or a whole one") {
  std::mt19937_64 rng(TestSeed() + 1);
  TempDir root;
  constexpr int kRounds = 40;
  int created = 0;
  int killed_inside = 0;
  for (int i = 0; i < kRounds; ++i) {
    CAPTURE(i);
    const std::string dir = root.path() + "/node" + std::to_string(i);
    REQUIRE(std::filesystem::create_directory(dir));
    const Round round = RunAndKill(dir, /*create=*/true, static_cast<int>(rng() % 15000), rng());
    CHECK(WIFSIGNALED(round.status));
    Result<std::unique_ptr<Ledger>> l = Ledger::Open(dir);
    if (round.reported) {
      // Create() returned: the ledger must be there and verify.
      REQUIRE_MESSAGE(l.ok(), l.status().ToString());
      CHECK((*l)->total_steps() >= round.allowed);
      ++created;
    } else {
      // Killed inside Create(): no ledger yet or a whole one (never a
      // half-written one).
      ++killed_inside;
      if (!l.ok()) CHECK(l.status().code() == StatusCode::kNotFound);
    }
  }
  MESSAGE("create rounds " << kRounds << ", created before the kill " << created
                           << ", killed inside Create " << killed_inside);
  CHECK(created > 0);
}

}  // namespace
}  // namespace dpnode::privacy
