// The durable privacy budget ledger: what a node has spent, on disk, such that
// the budget is never under-counted, even across kill -9, a full disk or a
// torn write.
//
// One ledger per node, in its state directory: STATE_DIR/budget.ledger, an
// append-only text file, one record per line, each line carrying the BLAKE2b-256
// hash of its predecessor and its own (docs/ledger.md has the format, the
// recovery rules and how to audit it with `cat`). The first record fixes the
// budget (target ε, δ, accountant); every later record charges a block of DP-SGD
// steps at (q, σ).
//
// The rule that keeps the count safe: Reserve() appends the charge record and
// fsyncs it BEFORE it returns OK, and the caller runs those steps only after
// that. A crash can therefore lose only a record whose Reserve() never returned
// OK (its steps never ran), and can waste reserved-but-unrun steps (which only
// over-counts). There is deliberately no way to give steps back: a "release"
// record on clean shutdown would be safe only if the ledger could know the
// steps did not run, which it cannot; callers should reserve small blocks.
//
// Errors (see base/status.h for the action each one implies):
//   NotFound            Open() on a directory without a ledger
//   FailedPrecondition  Create() where a ledger already exists; Reserve() after
//                       an earlier I/O failure left the file state unknown
//   Unavailable         another open Ledger (any process) holds the lock
//   Corruption          a complete record fails a check; the message names the
//                       record number (0 = header) and what failed. Never
//                       repaired: a human must look (docs/ledger.md)
//   IoError             the OS refused a read, write, fsync or truncate
//   BudgetExhausted     the charge would take ε above the target
//
// Threading: a Ledger is used from one thread (the node's loop). Between
// processes, the lock file budget.ledger.lock (flock, LOCK_EX) admits one open
// Ledger per directory; the kernel drops the lock when the process dies. The
// lock belongs to the open file description, so a child fork()ed while a
// Ledger is open shares it (exec drops it: the descriptors are O_CLOEXEC).
//
// No clock, no sleeping, no threads: plain POSIX file I/O only.
#ifndef DPNODE_NODE_PRIVACY_LEDGER_H_
#define DPNODE_NODE_PRIVACY_LEDGER_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "base/status.h"
#include "node/privacy/accountant.h"
#include "node/privacy/calibrate.h"
#include "node/privacy/rdp.h"

namespace dpnode::privacy {

// What the ledger is allowed to spend; fixed by the header record at Create().
struct Budget {
  double epsilon = 0;  // target ε > 0, finite
  double delta = 0;    // δ ∈ (0, 1)
  AccountantKind accountant = AccountantKind::kRdp;
  // Free text for humans (site name, run id). At most kMaxLabelBytes bytes of
  // [A-Za-z0-9._:@/+-]; may be empty. Not interpreted.
  std::string label;
};

// What Open() had to do to a torn end of the file (a crash or power loss
// during an append). Callers should log it when non-zero.
struct LedgerRecovery {
  // Bytes cut from the end: a partial last record and/or trailing NUL bytes.
  // Safe to drop: a record without its full content was never acknowledged,
  // so its steps never ran.
  uint64_t recovered_tail_bytes = 0;
  // The last record was complete and verified but had lost its newline; Open()
  // kept it (counting its steps) and wrote the newline. Keeping it can only
  // over-count.
  bool completed_last_record = false;
};

// The outcome of a successful Reserve(): the steps may run now.
struct ChargeReceipt {
  uint64_t sequence = 0;     // record number of the charge (header is 0)
  int64_t total_steps = 0;   // all steps charged so far, this block included
  double epsilon_spent = 0;  // ε at the budget's δ after this block
};

// Bounds that keep parsing a hostile or corrupt file cheap: no line may be
// longer, no file may hold more records. Reserve() refuses to grow past them.
inline constexpr size_t kMaxLedgerLineBytes = 512;                // including the newline
inline constexpr uint64_t kMaxLedgerRecords = uint64_t{1} << 20;  // header included
inline constexpr size_t kMaxLabelBytes = 128;

// A verified, read-only view of a ledger file, for inspection while a node
// may hold it open (`dpnode privacy ledger`). Taking no lock and writing
// nothing, it may catch a record mid-append: that shows as torn_tail_bytes.
struct LedgerSnapshot {
  Budget budget;
  History history;       // one block per charge record, in file order
  int64_t total_steps = 0;
  uint64_t record_count = 0;     // verified records, header included
  uint64_t torn_tail_bytes = 0;  // bytes Open() would cut as a torn tail
};

class Ledger {
 public:
  static constexpr const char* kFileName = "budget.ledger";
  static constexpr const char* kLockFileName = "budget.ledger.lock";

  // Creates STATE_DIR/budget.ledger holding only the header for `budget`,
  // atomically (written to a temporary file, fsync'd, renamed, directory
  // fsync'd), and returns it open and locked. `dir` must exist.
  // Errors: InvalidArgument (bad budget), FailedPrecondition (a ledger
  // already exists: it is never overwritten), Unavailable, IoError.
  static Result<std::unique_ptr<Ledger>> Create(const std::string& dir, const Budget& budget);

  // Opens and locks an existing ledger, verifying every record and the hash
  // chain, and recovering a torn tail (see LedgerRecovery and recovery()).
  // Errors: NotFound, Unavailable, Corruption, IoError.
  static Result<std::unique_ptr<Ledger>> Open(const std::string& dir);

  // Reads and verifies STATE_DIR/budget.ledger without locking or changing
  // it. Errors: NotFound, Corruption, IoError (as Open).
  static Result<LedgerSnapshot> Inspect(const std::string& dir);

  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;
  ~Ledger();  // closes the file and releases the lock

  // Charges `block` (steps ≥ 1, valid q and σ) if ComputeEpsilon(accountant,
  // history + block, δ) ≤ target ε; the record is written and fsync'd when
  // this returns OK, and only then may the steps run. On any error nothing is
  // charged and the steps must not run:
  //   BudgetExhausted  the numbers (ε after, target, spent so far) in the message
  //   IoError          a write failed; a partial record was truncated away and
  //                    the ledger stays usable. If the truncate or the fsync
  //                    failed instead, the file's state is unknown: this
  //                    Ledger refuses all further charges (FailedPrecondition)
  //                    and must be reopened, which verifies the file again.
  //   OutOfRange       the ledger holds kMaxLedgerRecords, or steps overflow
  //   InvalidArgument  steps < 1, or q or σ out of range
  //   (any error from ComputeEpsilon is passed on unchanged)
  Result<ChargeReceipt> Reserve(const StepBlock& block);

  const Budget& budget() const { return budget_; }
  // One block per charge record, in file order (not compacted).
  const History& history() const { return history_; }
  int64_t total_steps() const { return total_steps_; }
  uint64_t record_count() const { return record_count_; }  // header included
  const LedgerRecovery& recovery() const { return recovery_; }
  const std::string& path() const { return path_; }

  // ε spent so far at the budget's δ, by the budget's accountant.
  Result<double> EpsilonSpent() const;

  // How many more steps at (q, σ) the budget can pay for, by LargestSteps
  // (calibrate.h) over the current history. steps = 0 (with epsilon = ε spent
  // now) when not even one fits; `capped` when the answer hit kMaxSteps.
  Result<StepsCalibration> StepsRemaining(double sample_rate, double noise_multiplier) const;

 private:
  Ledger(std::string path, int fd, int lock_fd);

  std::string path_;
  int fd_ = -1;       // budget.ledger, O_RDWR
  int lock_fd_ = -1;  // budget.ledger.lock, holds the flock
  Budget budget_;
  History history_;
  int64_t total_steps_ = 0;
  uint64_t record_count_ = 0;
  uint64_t length_ = 0;                  // bytes of verified, newline-ended records
  std::array<uint8_t, 32> last_hash_{};  // hash of the last record
  LedgerRecovery recovery_;
  bool broken_ = false;  // an fsync or truncate failed: file state unknown
  // A node charges blocks at one (q, σ): every Reserve and EpsilonSpent after
  // the first reuses its RDP curve instead of re-summing the series.
  mutable RdpCurveCache rdp_cache_;
};

}  // namespace dpnode::privacy

#endif  // DPNODE_NODE_PRIVACY_LEDGER_H_
