// The durable privacy budget ledger: the text format, verification on open,
// torn-tail recovery and durable appends. The format and its rules are
// documented in docs/ledger.md; keep the two in step.
#include "node/privacy/ledger.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <string_view>
#include <utility>
#include <vector>

#include "base/check.h"

namespace dpnode::privacy {
namespace {

using Hash = std::array<uint8_t, 32>;

constexpr std::string_view kFormatTag = "dpnode-ledger/1";
constexpr std::string_view kHashField = " hash=";
constexpr size_t kHexHashChars = 64;
constexpr size_t kReadChunkBytes = 64 * 1024;

// ---- small text helpers ---------------------------------------------------

std::string ErrnoText(int err) { return std::strerror(err); }

std::string Hex(const Hash& h) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(kHexHashChars, '0');
  for (size_t i = 0; i < h.size(); ++i) {
    out[2 * i] = kDigits[h[i] >> 4];
    out[2 * i + 1] = kDigits[h[i] & 0xf];
  }
  return out;
}

Hash HashOf(std::string_view content) {
  Hash h{};
  crypto_generichash(h.data(), h.size(), reinterpret_cast<const unsigned char*>(content.data()),
                     content.size(), nullptr, 0);
  return h;
}

// Shortest text that reads back as exactly `v` (std::to_chars guarantees the
// round trip); checked anyway, because a charge that read back differently
// would be a different charge.
std::string FormatDouble(double v) {
  char buf[64];
  std::to_chars_result r = std::to_chars(buf, buf + sizeof buf, v);
  DPNODE_CHECK(r.ec == std::errc(), "to_chars failed for %a", v);
  std::string s(buf, r.ptr);
  double back = 0;
  std::from_chars_result p = std::from_chars(s.data(), s.data() + s.size(), back);
  DPNODE_CHECK(p.ec == std::errc() && std::memcmp(&back, &v, sizeof v) == 0,
               "double %a does not round-trip through '%s'", v, s.c_str());
  return s;
}

// Accepts only the canonical text FormatDouble would write, so one value has
// one spelling and the hash covers the value, not a choice of digits.
bool ParseDouble(std::string_view s, double* out) {
  if (s.empty()) return false;
  double v = 0;
  std::from_chars_result r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size() || !std::isfinite(v)) return false;
  if (FormatDouble(v) != s) return false;
  *out = v;
  return true;
}

// Canonical non-negative decimal: digits only, no leading zeros.
template <typename Int>
bool ParseDecimal(std::string_view s, Int* out) {
  if (s.empty() || s.size() > 20 || (s.size() > 1 && s[0] == '0')) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  Int v = 0;
  std::from_chars_result r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size()) return false;
  *out = v;
  return true;
}

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool IsLabelChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == ':' || c == '@' || c == '/' || c == '+' || c == '-';
}

Status ValidateLabel(const std::string& label) {
  if (label.size() > kMaxLabelBytes) {
    return Status::InvalidArgument("ledger label is longer than " + std::to_string(kMaxLabelBytes) +
                                   " bytes");
  }
  for (char c : label) {
    if (!IsLabelChar(c)) {
      return Status::InvalidArgument("ledger label may only hold [A-Za-z0-9._:@/+-], got '" +
                                     label + "'");
    }
  }
  return Status::Ok();
}

Status ValidateBudget(const Budget& b) {
  DPNODE_RETURN_IF_ERROR(ValidateTargetEpsilon(b.epsilon));
  DPNODE_RETURN_IF_ERROR(ValidateDelta(b.delta));
  if (b.accountant != AccountantKind::kRdp && b.accountant != AccountantKind::kPrv) {
    return Status::InvalidArgument("unknown accountant kind");
  }
  return ValidateLabel(b.label);
}

std::string JoinPath(const std::string& dir, const char* name) {
  if (!dir.empty() && dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

// ---- records --------------------------------------------------------------

std::string HeaderContent(const Budget& b) {
  return "0 header format=" + std::string(kFormatTag) + " epsilon=" + FormatDouble(b.epsilon) +
         " delta=" + FormatDouble(b.delta) + " accountant=" + AccountantName(b.accountant) +
         " label=" + b.label + " prev=" + Hex(Hash{});
}

std::string ChargeContent(uint64_t sequence, const StepBlock& block, const Hash& prev) {
  return std::to_string(sequence) + " charge steps=" + std::to_string(block.steps) +
         " q=" + FormatDouble(block.sample_rate) +
         " sigma=" + FormatDouble(block.noise_multiplier) + " prev=" + Hex(prev);
}

// content + " hash=<hex>\n", and the hash itself.
std::pair<std::string, Hash> SealLine(const std::string& content) {
  Hash h = HashOf(content);
  std::string line = content;
  line.append(kHashField);
  line += Hex(h);
  line += '\n';
  DPNODE_CHECK(line.size() <= kMaxLedgerLineBytes, "ledger line of %zu bytes", line.size());
  return {std::move(line), h};
}

struct Record {
  bool is_header = false;
  Budget budget;    // header only
  StepBlock block;  // charge only
  Hash hash{};
};

Status Bad(uint64_t index, const std::string& what) {
  return Status::Corruption("record " + std::to_string(index) + ": " + what);
}

// Verifies one record (without its newline) as record number `index`, whose
// predecessor hashed to `prev`.
Status ParseRecord(std::string_view line, uint64_t index, const Hash& prev, Record* out) {
  if (line.size() + 1 > kMaxLedgerLineBytes) {
    return Bad(index, "line longer than " + std::to_string(kMaxLedgerLineBytes) + " bytes");
  }
  for (size_t i = 0; i < line.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(line[i]);
    if (c < 0x20 || c > 0x7e) {
      char what[64];
      std::snprintf(what, sizeof what, "unexpected byte 0x%02x at column %zu", c, i + 1);
      return Bad(index, what);
    }
  }
  const size_t pos = line.rfind(kHashField);
  if (pos == std::string_view::npos) return Bad(index, "no hash field");
  const std::string_view stored = line.substr(pos + kHashField.size());
  if (stored.size() != kHexHashChars || !IsLowerHex(stored)) {
    return Bad(index, "malformed hash field");
  }
  const std::string_view content = line.substr(0, pos);
  const Hash computed = HashOf(content);
  const std::string computed_hex = Hex(computed);
  if (stored != computed_hex) {
    return Bad(index, "hash mismatch (stored " + std::string(stored) + ", contents hash to " +
                          computed_hex + ")");
  }

  std::vector<std::string_view> tokens;
  for (size_t start = 0;;) {
    const size_t end = content.find(' ', start);
    tokens.push_back(content.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  uint64_t sequence = 0;
  if (tokens.empty() || !ParseDecimal(tokens[0], &sequence)) {
    return Bad(index, "malformed sequence number");
  }
  if (sequence != index) {
    return Bad(index, "sequence number " + std::string(tokens[0]) + " out of order");
  }
  // Returns the value of tokens[i] when it reads "<key>=<value>".
  auto field = [&](size_t i, std::string_view key, std::string_view* value) {
    if (i >= tokens.size()) return false;
    const std::string_view t = tokens[i];
    if (t.size() <= key.size() || t.substr(0, key.size()) != key || t[key.size()] != '=') {
      return false;
    }
    *value = t.substr(key.size() + 1);
    return true;
  };
  std::string_view v;
  size_t next = 2;
  if (index == 0) {
    if (tokens.size() != 8 || tokens[1] != "header") {
      return Bad(index, "expected a header record with 8 fields");
    }
    if (!field(next++, "format", &v) || v != kFormatTag) {
      return Bad(index, "unknown format (expected format=" + std::string(kFormatTag) + ")");
    }
    if (!field(next++, "epsilon", &v) || !ParseDouble(v, &out->budget.epsilon) ||
        !ValidateTargetEpsilon(out->budget.epsilon).ok()) {
      return Bad(index, "malformed target epsilon");
    }
    if (!field(next++, "delta", &v) || !ParseDouble(v, &out->budget.delta) ||
        !ValidateDelta(out->budget.delta).ok()) {
      return Bad(index, "malformed delta");
    }
    if (!field(next++, "accountant", &v)) return Bad(index, "missing accountant");
    Result<AccountantKind> kind = ParseAccountant(v);
    if (!kind.ok()) return Bad(index, "unknown accountant '" + std::string(v) + "'");
    out->budget.accountant = *kind;
    if (!field(next++, "label", &v)) return Bad(index, "missing label");
    out->budget.label = std::string(v);
    if (!ValidateLabel(out->budget.label).ok()) return Bad(index, "malformed label");
    out->is_header = true;
  } else {
    if (tokens.size() != 6 || tokens[1] != "charge") {
      return Bad(index, "expected a charge record with 6 fields");
    }
    if (!field(next++, "steps", &v) || !ParseDecimal(v, &out->block.steps) ||
        out->block.steps < 1) {
      return Bad(index, "malformed step count");
    }
    if (!field(next++, "q", &v) || !ParseDouble(v, &out->block.sample_rate) ||
        !ValidateSampleRate(out->block.sample_rate).ok()) {
      return Bad(index, "malformed sample rate q");
    }
    if (!field(next++, "sigma", &v) || !ParseDouble(v, &out->block.noise_multiplier) ||
        !ValidateNoiseMultiplier(out->block.noise_multiplier).ok()) {
      return Bad(index, "malformed noise multiplier sigma");
    }
    out->is_header = false;
  }
  if (!field(next, "prev", &v) || v.size() != kHexHashChars) {
    return Bad(index, "malformed prev field");
  }
  if (v != Hex(prev)) {
    return Bad(index, index == 0 ? "header prev is not all zeros"
                                 : "chain broken: prev does not match the hash of record " +
                                       std::to_string(index - 1));
  }
  out->hash = computed;
  return Status::Ok();
}

// ---- reading a whole ledger -------------------------------------------------

struct Scan {
  Budget budget;
  History history;
  int64_t total_steps = 0;
  uint64_t records = 0;      // verified records, header included
  uint64_t good_length = 0;  // end of the last verified, newline-ended record
  uint64_t file_length = 0;
  Hash last_hash{};
  // > 0: the tail holds a complete, verified record of this many bytes whose
  // newline is missing; it is counted and must be completed on disk.
  uint64_t unterminated_record_bytes = 0;
};

Status Accept(std::string_view line, Scan* scan) {
  if (scan->records >= kMaxLedgerRecords) {
    return Bad(scan->records, "more than " + std::to_string(kMaxLedgerRecords) + " records");
  }
  Record r;
  DPNODE_RETURN_IF_ERROR(ParseRecord(line, scan->records, scan->last_hash, &r));
  if (r.is_header) {
    scan->budget = r.budget;
  } else {
    if (r.block.steps > std::numeric_limits<int64_t>::max() - scan->total_steps) {
      return Bad(scan->records, "total step count overflows");
    }
    scan->total_steps += r.block.steps;
    scan->history.push_back(r.block);
  }
  scan->last_hash = r.hash;
  ++scan->records;
  return Status::Ok();
}

// The bytes after the last newline. A crash mid-append leaves a prefix of a
// record there, possibly followed or replaced by NUL bytes: never
// acknowledged, safe to drop. A complete record there (only its newline lost)
// is kept: dropping it could under-count. Anything else there that claims to
// be complete is corruption.
Status ClassifyTail(std::string tail, bool nonzero_beyond, Scan* scan) {
  if (!nonzero_beyond) {
    while (!tail.empty() && tail.back() == '\0') tail.pop_back();
  }
  const size_t pos = tail.find(kHashField);
  const size_t end = pos == std::string::npos ? pos : pos + kHashField.size() + kHexHashChars;
  if (pos == std::string::npos || tail.size() < end || tail.find('\0') < end) {
    return Status::Ok();  // torn: no complete record content
  }
  const std::string_view record = std::string_view(tail).substr(0, end);
  Status s = Accept(record, scan);
  if (!s.ok()) {
    return Status::Corruption(s.message() + " (in the unterminated last record)");
  }
  if (tail.size() > end || nonzero_beyond) {
    return Bad(scan->records - 1, "followed by unexpected bytes instead of a newline");
  }
  scan->unterminated_record_bytes = end;
  return Status::Ok();
}

Result<Scan> ScanLedger(int fd) {
  Scan scan;
  std::string line;
  line.reserve(kMaxLedgerLineBytes);
  bool overlong = false;        // the current line outgrew kMaxLedgerLineBytes
  bool nonzero_beyond = false;  // ... and held a non-NUL byte past what we kept
  std::vector<char> buf(kReadChunkBytes);
  uint64_t offset = 0;
  for (;;) {
    const ssize_t n = pread(fd, buf.data(), buf.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::IoError("read failed: " + ErrnoText(errno));
    }
    if (n == 0) break;
    for (ssize_t i = 0; i < n; ++i) {
      const char c = buf[static_cast<size_t>(i)];
      if (c == '\n') {
        if (overlong || line.size() + 1 > kMaxLedgerLineBytes) {
          return Bad(scan.records,
                     "line longer than " + std::to_string(kMaxLedgerLineBytes) + " bytes");
        }
        DPNODE_RETURN_IF_ERROR(Accept(line, &scan));
        scan.good_length = offset + static_cast<uint64_t>(i) + 1;
        line.clear();
      } else if (line.size() < kMaxLedgerLineBytes) {
        line.push_back(c);
      } else {
        overlong = true;
        if (c != '\0') nonzero_beyond = true;
      }
    }
    offset += static_cast<uint64_t>(n);
  }
  scan.file_length = offset;
  if (scan.file_length > scan.good_length) {
    DPNODE_RETURN_IF_ERROR(ClassifyTail(std::move(line), nonzero_beyond, &scan));
  }
  if (scan.records == 0) {
    return Status::Corruption(scan.file_length == 0 ? "empty file, no header record"
                                                    : "no complete header record");
  }
  return scan;
}

// ---- files and locks ------------------------------------------------------

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

// Opens the ledger file with `flags` and verifies all of it into `scan`.
Status OpenAndScan(const std::string& path, int flags, Fd* fd, Scan* scan) {
  fd->reset(open(path.c_str(), flags | O_CLOEXEC));
  if (fd->get() < 0) {
    const int err = errno;
    if (err == ENOENT) return Status::NotFound("no ledger at " + path);
    return Status::IoError("opening ledger " + path + ": " + ErrnoText(err));
  }
  const std::string context = "ledger " + path;
  // A device or FIFO in its place could feed the scan without end.
  struct stat st;
  if (fstat(fd->get(), &st) != 0) {
    return Status::IoError("stat of " + path + " failed: " + ErrnoText(errno));
  }
  if (!S_ISREG(st.st_mode)) return Status::IoError(context + " is not a regular file");
  Result<Scan> scanned = ScanLedger(fd->get());
  if (!scanned.ok()) return scanned.status().WithContext(context);
  *scan = std::move(*scanned);
  return Status::Ok();
}

Status WriteAll(int fd, std::string_view bytes, uint64_t offset) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n =
        pwrite(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::IoError("write failed: " + ErrnoText(errno));
    }
    if (n == 0) return Status::IoError("write made no progress");
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status Sync(int fd, const std::string& what) {
  while (fsync(fd) != 0) {
    if (errno != EINTR) return Status::IoError("fsync of " + what + " failed: " + ErrnoText(errno));
  }
  return Status::Ok();
}

Status SyncDir(const std::string& dir) {
  Fd d(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (d.get() < 0) return Status::IoError("opening directory " + dir + ": " + ErrnoText(errno));
  return Sync(d.get(), "directory " + dir);
}

// Takes the per-directory lock; the returned fd holds it until closed (or the
// process dies: flock locks belong to the open file description).
Result<int> Lock(const std::string& dir) {
  const std::string lock_path = JoinPath(dir, Ledger::kLockFileName);
  Fd fd(open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (fd.get() < 0) {
    const int err = errno;
    if (err == ENOENT) return Status::NotFound("state directory " + dir + " does not exist");
    return Status::IoError("opening lock file " + lock_path + ": " + ErrnoText(err));
  }
  for (;;) {
    if (flock(fd.get(), LOCK_EX | LOCK_NB) == 0) break;
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) {
      return Status::Unavailable("ledger " + JoinPath(dir, Ledger::kFileName) +
                                 " is in use by another process (lock " + lock_path + " is held)");
    }
    return Status::IoError("locking " + lock_path + ": " + ErrnoText(errno));
  }
  return fd.release();
}

Status InitSodium() {
  if (sodium_init() < 0) return Status::Internal("libsodium failed to initialise");
  return Status::Ok();
}

}  // namespace

// ---- Ledger ---------------------------------------------------------------

Ledger::Ledger(std::string path, int fd, int lock_fd)
    : path_(std::move(path)), fd_(fd), lock_fd_(lock_fd) {}

Ledger::~Ledger() {
  if (fd_ >= 0) close(fd_);
  if (lock_fd_ >= 0) close(lock_fd_);  // releases the flock
}

Result<std::unique_ptr<Ledger>> Ledger::Create(const std::string& dir, const Budget& budget) {
  DPNODE_RETURN_IF_ERROR(InitSodium());
  DPNODE_RETURN_IF_ERROR(ValidateBudget(budget));
  const std::string path = JoinPath(dir, kFileName);
  Result<int> lock = Lock(dir);
  if (!lock.ok()) return lock.status();
  Fd lock_fd(*lock);

  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    return Status::FailedPrecondition("ledger " + path +
                                      " already exists; it is never overwritten (open it instead)");
  }
  if (errno != ENOENT) return Status::IoError("checking " + path + ": " + ErrnoText(errno));

  // Written aside and renamed into place, so a crash never leaves a ledger
  // without its header. We hold the lock, so no one else writes the temp file.
  const std::string tmp = path + ".tmp";
  Fd fd(open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0) return Status::IoError("creating " + tmp + ": " + ErrnoText(errno));
  auto [line, hash] = SealLine(HeaderContent(budget));
  Status s = WriteAll(fd.get(), line, 0);
  if (s.ok()) s = Sync(fd.get(), tmp);
  if (s.ok() && rename(tmp.c_str(), path.c_str()) != 0) {
    s = Status::IoError("renaming " + tmp + " to " + path + ": " + ErrnoText(errno));
  }
  if (!s.ok()) {
    unlink(tmp.c_str());
    return s.WithContext("creating ledger " + path);
  }
  // The rename is durable only once the directory is; until then a crash may
  // lose the whole ledger, which holds no charges yet.
  DPNODE_RETURN_IF_ERROR(SyncDir(dir).WithContext("creating ledger " + path));

  std::unique_ptr<Ledger> ledger(new Ledger(path, fd.release(), lock_fd.release()));
  ledger->budget_ = budget;
  ledger->record_count_ = 1;
  ledger->length_ = line.size();
  ledger->last_hash_ = hash;
  return ledger;
}

Result<std::unique_ptr<Ledger>> Ledger::Open(const std::string& dir) {
  DPNODE_RETURN_IF_ERROR(InitSodium());
  const std::string path = JoinPath(dir, kFileName);
  struct stat st;
  if (stat(path.c_str(), &st) != 0 && errno == ENOENT) {
    return Status::NotFound("no ledger at " + path);
  }
  Result<int> lock = Lock(dir);
  if (!lock.ok()) return lock.status();
  Fd lock_fd(*lock);
  Fd fd;
  Scan scan;
  DPNODE_RETURN_IF_ERROR(OpenAndScan(path, O_RDWR, &fd, &scan));
  const std::string context = "ledger " + path;

  LedgerRecovery recovery;
  uint64_t length = scan.good_length;
  if (scan.unterminated_record_bytes > 0) {
    length += scan.unterminated_record_bytes;
    recovery.completed_last_record = true;
  }
  if (scan.file_length > length) recovery.recovered_tail_bytes = scan.file_length - length;
  if (recovery.completed_last_record || recovery.recovered_tail_bytes > 0) {
    if (ftruncate(fd.get(), static_cast<off_t>(length)) != 0) {
      return Status::IoError("truncating the torn tail of " + path + ": " + ErrnoText(errno));
    }
    if (recovery.completed_last_record) {
      DPNODE_RETURN_IF_ERROR(WriteAll(fd.get(), "\n", length).WithContext(context));
      ++length;
    }
    DPNODE_RETURN_IF_ERROR(Sync(fd.get(), path));
  }

  std::unique_ptr<Ledger> ledger(new Ledger(path, fd.release(), lock_fd.release()));
  ledger->budget_ = std::move(scan.budget);
  ledger->history_ = std::move(scan.history);
  ledger->total_steps_ = scan.total_steps;
  ledger->record_count_ = scan.records;
  ledger->length_ = length;
  ledger->last_hash_ = scan.last_hash;
  ledger->recovery_ = recovery;
  return ledger;
}

Result<LedgerSnapshot> Ledger::Inspect(const std::string& dir) {
  DPNODE_RETURN_IF_ERROR(InitSodium());
  const std::string path = JoinPath(dir, kFileName);
  Fd fd;
  Scan scan;
  DPNODE_RETURN_IF_ERROR(OpenAndScan(path, O_RDONLY, &fd, &scan));
  LedgerSnapshot snap;
  snap.budget = std::move(scan.budget);
  snap.history = std::move(scan.history);
  snap.total_steps = scan.total_steps;
  snap.record_count = scan.records;
  const uint64_t kept = scan.good_length + scan.unterminated_record_bytes;
  snap.torn_tail_bytes = scan.file_length > kept ? scan.file_length - kept : 0;
  return snap;
}

Result<ChargeReceipt> Ledger::Reserve(const StepBlock& block) {
  if (broken_) {
    return Status::FailedPrecondition("ledger " + path_ +
                                      ": an earlier failed fsync or truncate left the file "
                                      "state unknown; reopen the ledger");
  }
  DPNODE_RETURN_IF_ERROR(ValidateStepBlock(block));
  if (block.steps < 1) return Status::InvalidArgument("a charge must cover at least one step");
  if (record_count_ >= kMaxLedgerRecords) {
    return Status::OutOfRange("ledger " + path_ + " is full (" + std::to_string(kMaxLedgerRecords) +
                              " records)");
  }
  if (block.steps > std::numeric_limits<int64_t>::max() - total_steps_) {
    return Status::OutOfRange("total step count would overflow");
  }

  history_.push_back(block);
  Result<double> eps = ComputeEpsilon(budget_.accountant, history_, budget_.delta, &rdp_cache_);
  history_.pop_back();
  if (!eps.ok()) return eps.status();
  if (!(*eps <= budget_.epsilon)) {
    std::string msg = "charging " + std::to_string(block.steps) +
                      " steps at q=" + FormatDouble(block.sample_rate) +
                      " sigma=" + FormatDouble(block.noise_multiplier) +
                      " would bring epsilon to " + FormatDouble(*eps) + " > target " +
                      FormatDouble(budget_.epsilon) + " (delta=" + FormatDouble(budget_.delta) +
                      ", " + AccountantName(budget_.accountant) + " accountant";
    Result<double> spent = EpsilonSpent();
    if (spent.ok()) {
      msg += "; spent so far: epsilon " + FormatDouble(*spent) + " over " +
             std::to_string(total_steps_) + " steps";
    }
    return Status::BudgetExhausted(msg + ")");
  }

  const uint64_t sequence = record_count_;
  auto [line, hash] = SealLine(ChargeContent(sequence, block, last_hash_));
  const std::string what = "ledger " + path_ + ": charging record " + std::to_string(sequence);
  Status written = WriteAll(fd_, line, length_);
  if (!written.ok()) {
    // Part of the record may be in the file; cut it so the next append starts
    // at a record boundary. If even that fails, stop appending altogether.
    if (ftruncate(fd_, static_cast<off_t>(length_)) != 0) {
      broken_ = true;
      return Status::IoError(written.message() + "; truncating back to " + std::to_string(length_) +
                             " bytes also failed: " + ErrnoText(errno))
          .WithContext(what);
    }
    return written.WithContext(what);
  }
  Status synced = Sync(fd_, path_);
  if (!synced.ok()) {
    // The record may or may not reach the disk; Open() will tell.
    broken_ = true;
    return synced.WithContext(what);
  }
  history_.push_back(block);
  total_steps_ += block.steps;
  record_count_ = sequence + 1;
  length_ += line.size();
  last_hash_ = hash;
  return ChargeReceipt{sequence, total_steps_, *eps};
}

Result<double> Ledger::EpsilonSpent() const {
  return ComputeEpsilon(budget_.accountant, history_, budget_.delta, &rdp_cache_);
}

Result<StepsCalibration> Ledger::StepsRemaining(double sample_rate, double noise_multiplier) const {
  DPNODE_RETURN_IF_ERROR(ValidateStepBlock({sample_rate, noise_multiplier, 0}));
  Result<StepsCalibration> r = LargestSteps(budget_.accountant, budget_.epsilon, budget_.delta,
                                            sample_rate, noise_multiplier, history_);
  if (r.ok() || r.status().code() != StatusCode::kBudgetExhausted) return r;
  Result<double> spent = EpsilonSpent();
  if (!spent.ok()) return spent.status();
  return StepsCalibration{0, *spent, false};
}

}  // namespace dpnode::privacy
