// Tests of the durable budget ledger (node/privacy/ledger.h): the round trip,
// the budget check, detection of every single-byte tamper, recovery from
// truncation at every offset and from trailing NULs, the cross-process lock,
// a write failure (RLIMIT_FSIZE in a forked child) and fsync failures (an
// fsync() interposed by this test binary). The kill -9 loop is in
// ledger_crash_test.cc.
#include "node/privacy/ledger.h"

#include <doctest/doctest.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "node/privacy/accountant.h"
#include "tests/temp_dir.h"

// Fault injection without a hook in production code: this test binary
// defines fsync(), which the linker prefers over libc's for every call in the
// binary, including the ledger code linked into it. It forwards to the real
// system call unless a test armed a failure: with a countdown of n > 0, the
// n-th fsync from now fails with EIO. Only ledger tests arm it.
namespace {
int fsync_failure_countdown = 0;
}  // namespace

extern "C" int fsync(int fd) {
  if (fsync_failure_countdown > 0 && --fsync_failure_countdown == 0) {
    errno = EIO;
    return -1;
  }
  return static_cast<int>(syscall(SYS_fsync, fd));
}

namespace dpnode::privacy {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using testing::TempRoot;


std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

uint64_t FileSize(const std::string& path) { return fs::file_size(path); }

Budget TestBudget() {
  Budget b;
  b.epsilon = 8;
  b.delta = 1e-5;
  b.accountant = AccountantKind::kRdp;
  b.label = "site-a";
  return b;
}

bool SameBits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

bool SameHistory(const History& a, const History& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].steps != b[i].steps || !SameBits(a[i].sample_rate, b[i].sample_rate) ||
        !SameBits(a[i].noise_multiplier, b[i].noise_multiplier)) {
      return false;
    }
  }
  return true;
}

// Charges whose ε under TestBudget() is far below the target, so the tests of
// the file format do not depend on the accountant's figures.
const History& SmallCharges() {
  static const History h = {{0.01, 4.0, 3}, {1.0 / 3, 7.5, 11}, {0.02, 5.25, 2}};
  return h;
}

// Creates a ledger in `dir` holding SmallCharges(); returns the file bytes.
std::string MakeLedger(const std::string& dir) {
  Result<std::unique_ptr<Ledger>> l = Ledger::Create(dir, TestBudget());
  REQUIRE(l.ok());
  for (const StepBlock& b : SmallCharges()) REQUIRE((*l)->Reserve(b).ok());
  return ReadFile(dir + "/" + Ledger::kFileName);
}

std::vector<size_t> NewlineOffsets(const std::string& bytes) {
  std::vector<size_t> out;
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (bytes[i] == '\n') out.push_back(i);
  }
  return out;
}

int64_t Sum(const History& h) {
  int64_t s = 0;
  for (const StepBlock& b : h) s += b.steps;
  return s;
}

TEST_CASE("ledger: create then charge then reopen round-trips every value exactly") {
  TempDir dir;
  Budget budget;
  budget.epsilon = std::nextafter(8.0, 9.0);  // doubles that need all 17 digits
  budget.delta = std::nextafter(1e-5, 1.0);
  budget.accountant = AccountantKind::kRdp;
  budget.label = "hospital-7/run:2026.11@a+b_c";
  const History charges = {
      {1.0 / 3, std::nextafter(40.0, 50.0), 5}, {0.1 + 0.2, 30.0, 1}, {1.0, 1e3, 7}};
  {
    Result<std::unique_ptr<Ledger>> l = Ledger::Create(dir.path(), budget);
    REQUIRE(l.ok());
    CHECK((*l)->record_count() == 1);
    CHECK((*l)->total_steps() == 0);
    int64_t total = 0;
    History so_far;
    for (const StepBlock& b : charges) {
      Result<ChargeReceipt> r = (*l)->Reserve(b);
      REQUIRE(r.ok());
      total += b.steps;
      so_far.push_back(b);
      CHECK(r->total_steps == total);
      CHECK(r->sequence == so_far.size());
      Result<double> eps = ComputeEpsilon(budget.accountant, so_far, budget.delta);
      REQUIRE(eps.ok());
      CHECK(r->epsilon_spent == *eps);
    }
  }
  Result<std::unique_ptr<Ledger>> l = Ledger::Open(dir.path());
  REQUIRE(l.ok());
  const Ledger& ledger = **l;
  CHECK(SameBits(ledger.budget().epsilon, budget.epsilon));
  CHECK(SameBits(ledger.budget().delta, budget.delta));
  CHECK(ledger.budget().accountant == budget.accountant);
  CHECK(ledger.budget().label == budget.label);
  CHECK(SameHistory(ledger.history(), charges));
  CHECK(ledger.total_steps() == Sum(charges));
  CHECK(ledger.record_count() == 1 + charges.size());
  CHECK(ledger.recovery().recovered_tail_bytes == 0);
  CHECK_FALSE(ledger.recovery().completed_last_record);
  Result<double> spent = ledger.EpsilonSpent();
  Result<double> expected = ComputeEpsilon(budget.accountant, charges, budget.delta);
  REQUIRE(spent.ok());
  REQUIRE(expected.ok());
  CHECK(*spent == *expected);

  // One line per record, human-readable.
  const std::string text = ReadFile((dir / Ledger::kFileName));
  CHECK(NewlineOffsets(text).size() == 1 + charges.size());
  CHECK(text.rfind("0 header format=dpnode-ledger/1 ", 0) == 0);
  CHECK(text.find("\n1 charge steps=5 q=") != std::string::npos);

  // The other accountant and an empty label survive the trip too.
  TempDir prv_dir;
  Budget prv = budget;
  prv.accountant = AccountantKind::kPrv;
  prv.label.clear();
  REQUIRE(Ledger::Create(prv_dir.path(), prv).ok());
  Result<std::unique_ptr<Ledger>> reopened = Ledger::Open(prv_dir.path());
  REQUIRE(reopened.ok());
  CHECK((*reopened)->budget().accountant == AccountantKind::kPrv);
  CHECK((*reopened)->budget().label.empty());
  CHECK((*reopened)->record_count() == 1);
}

TEST_CASE("ledger: Create never overwrites and Open needs a ledger and inputs are checked") {
  TempDir dir;
  CHECK(Ledger::Open(dir.path()).status().code() == StatusCode::kNotFound);
  CHECK(Ledger::Create(dir.path() + "/missing", TestBudget()).status().code() ==
        StatusCode::kNotFound);
  Budget bad = TestBudget();
  bad.label = "has space";
  CHECK(Ledger::Create(dir.path(), bad).status().code() == StatusCode::kInvalidArgument);
  bad = TestBudget();
  bad.epsilon = 0;
  CHECK(Ledger::Create(dir.path(), bad).status().code() == StatusCode::kInvalidArgument);
  bad = TestBudget();
  bad.delta = 1;
  CHECK(Ledger::Create(dir.path(), bad).status().code() == StatusCode::kInvalidArgument);
  CHECK_FALSE(fs::exists((dir / Ledger::kFileName)));

  const std::string bytes = MakeLedger(dir.path());
  Result<std::unique_ptr<Ledger>> again = Ledger::Create(dir.path(), TestBudget());
  CHECK(again.status().code() == StatusCode::kFailedPrecondition);
  CHECK(ReadFile((dir / Ledger::kFileName)) == bytes);

  Result<std::unique_ptr<Ledger>> l = Ledger::Open(dir.path());
  REQUIRE(l.ok());
  CHECK((*l)->Reserve({0.01, 1.0, 0}).status().code() == StatusCode::kInvalidArgument);
  CHECK((*l)->Reserve({0.0, 1.0, 1}).status().code() == StatusCode::kInvalidArgument);
  CHECK((*l)->Reserve({0.01, -1.0, 1}).status().code() == StatusCode::kInvalidArgument);
  CHECK(ReadFile((dir / Ledger::kFileName)) == bytes);
}

TEST_CASE("ledger: a charge the budget cannot pay for is refused and writes nothing") {
  TempDir dir;
  Budget budget = TestBudget();
  budget.epsilon = 2.0;
  const double q = 0.01, sigma = 1.0;
  Result<std::unique_ptr<Ledger>> created = Ledger::Create(dir.path(), budget);
  REQUIRE(created.ok());
  Ledger& ledger = **created;

  REQUIRE(ledger.Reserve({q, sigma, 10}).ok());
  Result<StepsCalibration> room = ledger.StepsRemaining(q, sigma);
  REQUIRE(room.ok());
  REQUIRE(room->steps > 1);
  CHECK_FALSE(room->capped);

  // More than fits, in one block: refused, nothing written.
  const uint64_t size_before = FileSize((dir / Ledger::kFileName));
  Result<ChargeReceipt> too_much = ledger.Reserve({q, sigma, room->steps + 1});
  CHECK(too_much.status().code() == StatusCode::kBudgetExhausted);
  CHECK(too_much.status().message().find("target 2") != std::string::npos);
  CHECK(FileSize((dir / Ledger::kFileName)) == size_before);
  CHECK(ledger.total_steps() == 10);

  // Exactly what fits: accepted, and ε stays within the target.
  Result<ChargeReceipt> fill = ledger.Reserve({q, sigma, room->steps});
  REQUIRE(fill.ok());
  CHECK(fill->epsilon_spent <= budget.epsilon);
  CHECK(fill->total_steps == 10 + room->steps);

  // Now not one more step fits, by the accountant's own figure.
  const uint64_t size_full = FileSize((dir / Ledger::kFileName));
  Result<ChargeReceipt> one_more = ledger.Reserve({q, sigma, 1});
  CHECK(one_more.status().code() == StatusCode::kBudgetExhausted);
  CHECK(FileSize((dir / Ledger::kFileName)) == size_full);
  History next = ledger.history();
  next.push_back({q, sigma, 1});
  Result<double> eps_next = ComputeEpsilon(budget.accountant, next, budget.delta);
  REQUIRE(eps_next.ok());
  CHECK(*eps_next > budget.epsilon);
  Result<StepsCalibration> none = ledger.StepsRemaining(q, sigma);
  REQUIRE(none.ok());
  CHECK(none->steps == 0);

  created->reset();  // closes the ledger and releases its lock
  Result<std::unique_ptr<Ledger>> reopened = Ledger::Open(dir.path());
  REQUIRE(reopened.ok());
  CHECK((*reopened)->total_steps() == 10 + room->steps);
  CHECK((*reopened)->Reserve({q, sigma, 1}).status().code() == StatusCode::kBudgetExhausted);
}

TEST_CASE("ledger: every single-byte change to a complete record is corruption") {
  // The byte loops reopen the ledger hundreds of times, each recovery fsyncs.
  TempDir dir(TempRoot::kPreferTmpfs);
  const std::string original = MakeLedger(dir.path());
  const std::vector<size_t> newlines = NewlineOffsets(original);
  REQUIRE(newlines.size() == 1 + SmallCharges().size());
  REQUIRE(newlines.back() == original.size() - 1);

  int opened = 0;
  for (size_t pos = 0; pos < original.size(); ++pos) {
    size_t record = 0;
    while (newlines[record] < pos) ++record;
    for (unsigned mask : {0x01u, 0x20u, 0x80u, 0xffu}) {
      std::string bytes = original;
      bytes[pos] = static_cast<char>(static_cast<unsigned char>(bytes[pos]) ^ mask);
      WriteFile((dir / Ledger::kFileName), bytes);
      Result<std::unique_ptr<Ledger>> l = Ledger::Open(dir.path());
      ++opened;
      CAPTURE(pos);
      CAPTURE(mask);
      CAPTURE(l.status().ToString());
      REQUIRE(l.status().code() == StatusCode::kCorruption);
      CHECK(l.status().message().find(": record " + std::to_string(record) + ":") !=
            std::string::npos);
      // Refused, not repaired: the file is exactly as we left it.
      CHECK(ReadFile((dir / Ledger::kFileName)) == bytes);
    }
  }
  CHECK(opened == static_cast<int>(4 * original.size()));
}

TEST_CASE("ledger: a re-hashed record breaks the chain at the next record") {
  TempDir dir;
  const std::string original = MakeLedger(dir.path());
  const std::vector<size_t> nl = NewlineOffsets(original);
  // Record 1 with its step count raised to 30 and a hash that matches its
  // new contents: only the next record's prev field gives it away.
  const std::string line1 = original.substr(nl[0] + 1, nl[1] - nl[0] - 1);
  REQUIRE(line1.rfind("1 charge steps=3 ", 0) == 0);
  std::string content = line1.substr(0, line1.rfind(" hash="));
  content.replace(content.find("steps=3"), 7, "steps=30");
  unsigned char h[32];
  crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(content.data()),
                     content.size(), nullptr, 0);
  char hex[65];
  sodium_bin2hex(hex, sizeof hex, h, sizeof h);
  const std::string forged = content + " hash=" + hex;
  std::string bytes = original.substr(0, nl[0] + 1) + forged + original.substr(nl[1]);
  WriteFile((dir / Ledger::kFileName), bytes);
  Result<std::unique_ptr<Ledger>> l = Ledger::Open(dir.path());
  CHECK(l.status().code() == StatusCode::kCorruption);
  CHECK(l.status().message().find("record 2: chain broken") != std::string::npos);
}

TEST_CASE("ledger: truncation at every offset keeps exactly the records it fully holds") {
  // The byte loops reopen the ledger hundreds of times, each recovery fsyncs.
  TempDir dir(TempRoot::kPreferTmpfs);
  const std::string original = MakeLedger(dir.path());
  const std::vector<size_t> nl = NewlineOffsets(original);
  const History& charges = SmallCharges();

  for (size_t k = 0; k <= original.size(); ++k) {
    CAPTURE(k);
    WriteFile((dir / Ledger::kFileName), original.substr(0, k));
    // A record counts once its content is all there, even if its newline is
    // not: keeping it can only over-count.
    size_t kept = 0;
    while (kept < nl.size() && nl[kept] <= k) ++kept;
    Result<std::unique_ptr<Ledger>> l = Ledger::Open(dir.path());
    if (kept == 0) {
      CHECK(l.status().code() == StatusCode::kCorruption);
      continue;
    }
    REQUIRE(l.ok());
    const Ledger& ledger = **l;
    CHECK(ledger.record_count() == kept);
    const History expected(charges.begin(), charges.begin() + static_cast<long>(kept - 1));
    CHECK(SameHistory(ledger.history(), expected));
    CHECK(ledger.total_steps() == Sum(expected));
    const size_t end = nl[kept - 1] + 1;  // where the kept records end on disk
    CHECK(ledger.recovery().completed_last_record == (k == end - 1));
    CHECK(ledger.recovery().recovered_tail_bytes == (k >= end ? k - end : 0));
    CHECK(ReadFile((dir / Ledger::kFileName)) == original.substr(0, end));
  }

  // After a recovery the chain continues: charge, reopen, verify.
  const size_t cut = nl[2] + 5;  // inside record 3
  WriteFile((dir / Ledger::kFileName), original.substr(0, cut));
  {
    Result<std::unique_ptr<Ledger>> l = Ledger::Open(dir.path());
    REQUIRE(l.ok());
    CHECK((*l)->recovery().recovered_tail_bytes == 4);
    REQUIRE((*l)->Reserve({0.05, 6.0, 9}).ok());
  }
  Result<std::unique_ptr<Ledger>> l = Ledger::Open(dir.path());
  REQUIRE(l.ok());
  CHECK((*l)->record_count() == 4);
  CHECK((*l)->total_steps() == charges[0].steps + charges[1].steps + 9);
  CHECK((*l)->recovery().recovered_tail_bytes == 0);
}

TEST_CASE("ledger: a torn tail never costs a complete record whatever its bytes") {
  // The byte loops reopen the ledger hundreds of times, each recovery fsyncs.
  TempDir dir(TempRoot::kPreferTmpfs);
  const std::string full = MakeLedger(dir.path());
  const std::vector<size_t> nl = NewlineOffsets(full);
  // Records 0..2 complete, record 3 torn two thirds of the way through.
  const size_t complete = nl[2] + 1;
  const size_t torn = complete + (nl[3] - complete) * 2 / 3;
  const std::string original = full.substr(0, torn);
  const int64_t steps_before = SmallCharges()[0].steps + SmallCharges()[1].steps;

  for (size_t pos = 0; pos < original.size(); ++pos) {
    for (unsigned mask : {0x01u, 0x20u, 0xffu}) {
      CAPTURE(pos);
      CAPTURE(mask);
      std::string bytes = original;
      bytes[pos] = static_cast<char>(static_cast<unsigned char>(bytes[pos]) ^ mask);
      WriteFile((dir / Ledger::kFileName), bytes);
      Result<std::unique_ptr<Ledger>> l = Ledger::Open(dir.path());
      if (pos < complete) {
        CHECK(l.status().code() == StatusCode::kCorruption);
      } else if (l.ok()) {
        CHECK((*l)->total_steps() >= steps_before);
        CHECK((*l)->record_count() >= 3);
      } else {
        CHECK(l.status().code() == StatusCode::kCorruption);
      }
    }
  }
}

TEST_CASE("ledger: trailing NULs and torn records after a power loss are cut away") {
  TempDir dir;
  const std::string original = MakeLedger(dir.path());
  const std::vector<size_t> nl = NewlineOffsets(original);
  const std::string zeros(4096, '\0');

  SUBCASE("NULs after the last record") {
    WriteFile((dir / Ledger::kFileName), original + zeros);
    Result<std::unique_ptr<Ledger>> l = Ledger::Open(dir.path());
    REQUIRE(l.ok());
    CHECK((*l)->recovery().recovered_tail_bytes == zeros.size());
    CHECK((*l)->record_count() == nl.size());
    CHECK(ReadFile((dir / Ledger::kFileName)) == original);
  }
  SUBCASE("a torn record, then NULs") {
    const std::string head = original.substr(0, nl[2] + 1);
    const std::string partial = original.substr(nl[2] + 1, 20);
    WriteFile((dir / Ledger::kFileName), head + partial + zeros);
    Result<std::unique_ptr<Ledger>> l = Ledger::Open(dir.path());
    REQUIRE(l.ok());
    CHECK((*l)->recovery().recovered_tail_bytes == partial.size() + zeros.size());
    CHECK((*l)->record_count() == 3);
    CHECK(ReadFile((dir / Ledger::kFileName)) == head);
  }
  SUBCASE("a complete record whose newline became NULs is kept") {
    const std::string head = original.substr(0, original.size() - 1);
    WriteFile((dir / Ledger::kFileName), head + zeros);
    Result<std::unique_ptr<Ledger>> l = Ledger::Open(dir.path());
    REQUIRE(l.ok());
    CHECK((*l)->recovery().completed_last_record);
    CHECK((*l)->recovery().recovered_tail_bytes == zeros.size());
    CHECK((*l)->total_steps() == Sum(SmallCharges()));
    CHECK(ReadFile((dir / Ledger::kFileName)) == original);
  }
  SUBCASE("a complete record followed by other bytes is corruption") {
    const std::string bytes = original.substr(0, original.size() - 1) + "xyz";
    WriteFile((dir / Ledger::kFileName), bytes);
    CHECK(Ledger::Open(dir.path()).status().code() == StatusCode::kCorruption);
    CHECK(ReadFile((dir / Ledger::kFileName)) == bytes);
  }
  SUBCASE("an over-long line is corruption, not an allocation") {
    WriteFile((dir / Ledger::kFileName), original + std::string(1 << 20, 'a') + "\n");
    Result<std::unique_ptr<Ledger>> l = Ledger::Open(dir.path());
    CHECK(l.status().code() == StatusCode::kCorruption);
    CHECK(l.status().message().find("longer than") != std::string::npos);
  }
  SUBCASE("a device in place of the file is refused, not read forever") {
    fs::remove((dir / Ledger::kFileName));
    fs::create_symlink("/dev/zero", (dir / Ledger::kFileName));
    CHECK(Ledger::Open(dir.path()).status().code() == StatusCode::kIoError);
  }
  SUBCASE("an empty file or NULs only is corruption: there is no budget") {
    WriteFile((dir / Ledger::kFileName), "");
    CHECK(Ledger::Open(dir.path()).status().code() == StatusCode::kCorruption);
    WriteFile((dir / Ledger::kFileName), zeros);
    CHECK(Ledger::Open(dir.path()).status().code() == StatusCode::kCorruption);
  }
}

TEST_CASE("ledger: one open ledger per directory and the lock dies with its process") {
  TempDir dir;
  MakeLedger(dir.path());
  {
    Result<std::unique_ptr<Ledger>> first = Ledger::Open(dir.path());
    REQUIRE(first.ok());
    // flock locks belong to open file descriptions, so a second open in the
    // same process conflicts just as another process would.
    Result<std::unique_ptr<Ledger>> second = Ledger::Open(dir.path());
    CHECK(second.status().code() == StatusCode::kUnavailable);
    CHECK(second.status().message().find((dir / Ledger::kFileName)) != std::string::npos);
    CHECK(Ledger::Create(dir.path(), TestBudget()).status().code() == StatusCode::kUnavailable);
  }
  REQUIRE(Ledger::Open(dir.path()).ok());

  int ready[2];
  REQUIRE(pipe(ready) == 0);
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    close(ready[0]);
    Result<std::unique_ptr<Ledger>> held = Ledger::Open(dir.path());
    const char c = held.ok() ? 'y' : 'n';
    if (write(ready[1], &c, 1) != 1) _exit(2);
    for (;;) pause();
  }
  close(ready[1]);
  char c = 0;
  REQUIRE(read(ready[0], &c, 1) == 1);
  close(ready[0]);
  CHECK(c == 'y');
  Result<std::unique_ptr<Ledger>> blocked = Ledger::Open(dir.path());
  CHECK(blocked.status().code() == StatusCode::kUnavailable);
  kill(child, SIGKILL);
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK(WIFSIGNALED(status));
  CHECK(Ledger::Open(dir.path()).ok());
}

// Exit codes of the child in the write-failure test.
enum ChildExit : int {
  kChildOk = 0,
  kChildOpenFailed = 10,
  kChildWriteNotRefused,
  kChildFileChanged,
  kChildStateChanged,
  kChildRetryFailed,
};

TEST_CASE("ledger: a failed write charges nothing and leaves no partial record") {
  TempDir dir;
  const std::string original = MakeLedger(dir.path());
  const StepBlock refused{0.01, 4.0, 5};
  const StepBlock retried{0.01, 4.0, 6};

  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // A file size limit a few bytes past the end makes the next append a
    // short write followed by EFBIG: a partial record hits the file.
    signal(SIGXFSZ, SIG_IGN);
    Result<std::unique_ptr<Ledger>> l = Ledger::Open(dir.path());
    if (!l.ok()) _exit(kChildOpenFailed);
    struct rlimit limit;
    getrlimit(RLIMIT_FSIZE, &limit);
    const rlim_t saved = limit.rlim_cur;
    limit.rlim_cur = original.size() + 10;
    setrlimit(RLIMIT_FSIZE, &limit);
    Result<ChargeReceipt> r = (*l)->Reserve(refused);
    if (r.status().code() != StatusCode::kIoError) _exit(kChildWriteNotRefused);
    if (FileSize((dir / Ledger::kFileName)) != original.size()) _exit(kChildFileChanged);
    if ((*l)->total_steps() != Sum(SmallCharges())) _exit(kChildStateChanged);
    limit.rlim_cur = saved;
    setrlimit(RLIMIT_FSIZE, &limit);
    if (!(*l)->Reserve(retried).ok()) _exit(kChildRetryFailed);
    _exit(kChildOk);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == kChildOk);

  Result<std::unique_ptr<Ledger>> l = Ledger::Open(dir.path());
  REQUIRE(l.ok());
  CHECK((*l)->recovery().recovered_tail_bytes == 0);
  History expected = SmallCharges();
  expected.push_back(retried);
  CHECK(SameHistory((*l)->history(), expected));
}

TEST_CASE("ledger: a failed fsync is an error and never an acknowledged charge") {
  TempDir dir;
  const std::string original = MakeLedger(dir.path());
  const int64_t base = Sum(SmallCharges());
  const StepBlock block{0.01, 4.0, 4};

  SUBCASE("in Reserve: refused, then the Ledger stops charging until reopened") {
    {
      Result<std::unique_ptr<Ledger>> l = Ledger::Open(dir.path());
      REQUIRE(l.ok());
      fsync_failure_countdown = 1;
      Result<ChargeReceipt> r = (*l)->Reserve(block);
      fsync_failure_countdown = 0;
      CHECK(r.status().code() == StatusCode::kIoError);
      CHECK(r.status().message().find("fsync") != std::string::npos);
      CHECK((*l)->total_steps() == base);  // not acknowledged
      CHECK((*l)->Reserve(block).status().code() == StatusCode::kFailedPrecondition);
    }
    // The record may have reached the disk after all; here it sits in the page
    // cache, so reopening counts it: an over-count, never an under-count.
    Result<std::unique_ptr<Ledger>> l = Ledger::Open(dir.path());
    REQUIRE(l.ok());
    CHECK((*l)->total_steps() == base + block.steps);
    CHECK((*l)->Reserve(block).ok());
  }
  SUBCASE("in Open's recovery: an error, and the next Open still verifies") {
    WriteFile((dir / Ledger::kFileName), original + "4 charge ste");
    fsync_failure_countdown = 1;
    Result<std::unique_ptr<Ledger>> failed = Ledger::Open(dir.path());
    fsync_failure_countdown = 0;
    CHECK(failed.status().code() == StatusCode::kIoError);
    Result<std::unique_ptr<Ledger>> l = Ledger::Open(dir.path());
    REQUIRE(l.ok());
    CHECK((*l)->total_steps() == base);
    CHECK(ReadFile((dir / Ledger::kFileName)) == original);
  }
  SUBCASE("in Create: no ledger appears when the file cannot be synced") {
    TempDir fresh;
    fsync_failure_countdown = 1;
    Result<std::unique_ptr<Ledger>> failed = Ledger::Create(fresh.path(), TestBudget());
    fsync_failure_countdown = 0;
    CHECK(failed.status().code() == StatusCode::kIoError);
    CHECK_FALSE(fs::exists((fresh / Ledger::kFileName)));
    CHECK_FALSE(fs::exists((fresh / Ledger::kFileName) + ".tmp"));
    CHECK(Ledger::Create(fresh.path(), TestBudget()).ok());
  }
}

}  // namespace
}  // namespace dpnode::privacy

namespace dpnode::privacy {
namespace {

TEST_CASE("ledger: Inspect verifies without locking or writing, even while a node holds it") {
  TempDir dir;
  const std::string bytes = MakeLedger(dir.path());
  Result<std::unique_ptr<Ledger>> held = Ledger::Open(dir.path());
  REQUIRE(held.ok());
  Result<LedgerSnapshot> snap = Ledger::Inspect(dir.path());
  REQUIRE_MESSAGE(snap.ok(), snap.status().ToString());
  CHECK(SameHistory(snap->history, SmallCharges()));
  CHECK(snap->total_steps == Sum(SmallCharges()));
  CHECK(snap->record_count == SmallCharges().size() + 1);
  CHECK(snap->torn_tail_bytes == 0);
  CHECK(snap->budget.epsilon == TestBudget().epsilon);
  held = Status::Unavailable("released");  // drop the lock

  // A torn tail is reported, not repaired.
  WriteFile((dir / Ledger::kFileName), bytes + "1 charge steps=");
  snap = Ledger::Inspect(dir.path());
  REQUIRE(snap.ok());
  CHECK(snap->torn_tail_bytes == 15);
  CHECK(ReadFile((dir / Ledger::kFileName)) == bytes + "1 charge steps=");

  // Corruption is corruption here too.
  std::string bad = bytes;
  bad[bad.size() / 2] ^= 0x01;
  WriteFile((dir / Ledger::kFileName), bad);
  CHECK(Ledger::Inspect(dir.path()).status().code() == StatusCode::kCorruption);
  CHECK(Ledger::Inspect(dir.path() + "/nowhere").status().code() == StatusCode::kNotFound);
}

}  // namespace
}  // namespace dpnode::privacy
