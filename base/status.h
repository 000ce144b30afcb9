// Status and Result<T>: how every fallible call in dpnode reports failure.
//
// No exceptions cross a layer boundary (an Asio handler, a simulated event, the
// RunCompute boundary). A call that can fail returns Status or Result<T>; the
// code says what the caller should do about it:
//   kInvalidArgument  the caller passed nonsense (a CLI flag, a config value)
//   kCorruption       stored or received bytes failed a check: stop, never "repair"
//   kIoError          the OS refused (disk full, permission): retry or stop
//   kBudgetExhausted  the privacy budget cannot pay for what was asked
//   kUnavailable      another process holds a resource (e.g. the ledger lock)
#ifndef DPNODE_BASE_STATUS_H_
#define DPNODE_BASE_STATUS_H_

#include <cstdlib>
#include <string>
#include <utility>
#include <variant>

namespace dpnode {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,
  kNotFound,
  kCorruption,
  kIoError,
  kBudgetExhausted,
  kUnavailable,
  kFailedPrecondition,
  kOutOfRange,
  kInternal,
};

const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string msg) { return {StatusCode::kInvalidArgument, std::move(msg)}; }
  static Status NotFound(std::string msg) { return {StatusCode::kNotFound, std::move(msg)}; }
  static Status Corruption(std::string msg) { return {StatusCode::kCorruption, std::move(msg)}; }
  static Status IoError(std::string msg) { return {StatusCode::kIoError, std::move(msg)}; }
  static Status BudgetExhausted(std::string msg) { return {StatusCode::kBudgetExhausted, std::move(msg)}; }
  static Status Unavailable(std::string msg) { return {StatusCode::kUnavailable, std::move(msg)}; }
  static Status FailedPrecondition(std::string msg) { return {StatusCode::kFailedPrecondition, std::move(msg)}; }
  static Status OutOfRange(std::string msg) { return {StatusCode::kOutOfRange, std::move(msg)}; }
  static Status Internal(std::string msg) { return {StatusCode::kInternal, std::move(msg)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "corruption: ledger record 7: hash mismatch"
  std::string ToString() const;

  // Prefixes the message with context ("opening /x/ledger: ..."), keeping the code.
  Status WithContext(const std::string& context) const;

 private:
  Status(StatusCode code, std::string msg) : code_(code), message_(std::move(msg)) {}
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// A value or the Status that explains why there is none. Holding an OK status
// without a value is impossible: constructing Result from Status::Ok() aborts.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
    if (std::get<Status>(v_).ok()) std::abort();
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  // Precondition: ok(). Calling on an error aborts (it is a programming error).
  const T& value() const& { return ok() ? std::get<T>(v_) : (std::abort(), std::get<T>(v_)); }
  T& value() & { return ok() ? std::get<T>(v_) : (std::abort(), std::get<T>(v_)); }
  T&& value() && { return ok() ? std::move(std::get<T>(v_)) : (std::abort(), std::move(std::get<T>(v_))); }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

 private:
  std::variant<Status, T> v_;
};

}  // namespace dpnode

// Returns early with the status of `expr` when it is not OK.
#define DPNODE_RETURN_IF_ERROR(expr)            \
  do {                                          \
    ::dpnode::Status dpnode_status_ = (expr);   \
    if (!dpnode_status_.ok()) return dpnode_status_; \
  } while (0)

#endif  // DPNODE_BASE_STATUS_H_
