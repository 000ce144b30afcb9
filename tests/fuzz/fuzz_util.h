// Shared by the fuzz targets under tests/fuzz/: a reader that turns the
// fuzzer's bytes into choices, a property check that aborts (so libFuzzer and
// the replay driver both see a crash), and the seed-corpus hook each target
// implements for `<target>_replay --write-seeds DIR`.
//
// Every target is built twice from the same source (docs/fuzzing.md): linked
// with libFuzzer by scripts/fuzz.sh, and with replay_main.cc in the normal
// build so the committed corpus runs under ctest.
#ifndef DPNODE_TESTS_FUZZ_FUZZ_UTIL_H_
#define DPNODE_TESTS_FUZZ_FUZZ_UTIL_H_

#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "crypto/bytes.h"

// A property of the code under test does not hold: print and abort. Unlike
// an ASan report this is our own oracle (lost, reordered or altered message,
// a failed session that comes back to life...). The message is a printf
// format and is required.
#define FUZZ_CHECK(cond, ...)                                                              \
  do {                                                                                     \
    if (!(cond)) ::dpnode::fuzz::PropertyViolated(__FILE__, __LINE__, #cond, __VA_ARGS__); \
  } while (0)

namespace dpnode::fuzz {

using crypto::Bytes;
using crypto::ByteView;

[[noreturn]] __attribute__((format(printf, 4, 5))) inline void PropertyViolated(
    const char* file, int line, const char* condition, const char* format, ...) {
  std::fprintf(stderr, "%s:%d: fuzz property violated: %s\n", file, line, condition);
  va_list args;
  va_start(args, format);
  std::vfprintf(stderr, format, args);
  va_end(args);
  std::fprintf(stderr, "\n");
  std::abort();
}

// Consumes the input front to back. Reads past the end yield zeros (and
// empty byte strings), so every input is a complete, valid program: the
// fuzzer never wastes executions on a parse error in the harness itself.
class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  bool empty() const { return pos_ >= size_; }
  size_t remaining() const { return size_ - pos_; }

  uint8_t U8() { return pos_ < size_ ? data_[pos_++] : 0; }
  // Big-endian, so a seed written by hand reads naturally in a hex dump.
  uint16_t U16() { return static_cast<uint16_t>((uint16_t{U8()} << 8) | U8()); }
  uint32_t U24() {
    const uint32_t hi = U8();
    return (hi << 16) | U16();
  }
  // Up to `n` bytes (fewer at the end of the input).
  Bytes Take(size_t n) {
    const size_t k = n < remaining() ? n : remaining();
    Bytes out(data_ + pos_, data_ + pos_ + k);
    pos_ += k;
    return out;
  }
  // Everything that is left.
  Bytes Rest() { return Take(remaining()); }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// Writes the fuzzer-input encoding helpers use: the inverse of FuzzInput.
class FuzzInputWriter {
 public:
  FuzzInputWriter& U8(uint8_t v) {
    out_.push_back(v);
    return *this;
  }
  FuzzInputWriter& U16(uint16_t v) {
    return U8(static_cast<uint8_t>(v >> 8)).U8(static_cast<uint8_t>(v));
  }
  FuzzInputWriter& U24(uint32_t v) {
    return U8(static_cast<uint8_t>(v >> 16)).U16(static_cast<uint16_t>(v));
  }
  FuzzInputWriter& Append(ByteView bytes) {
    out_.insert(out_.end(), bytes.begin(), bytes.end());
    return *this;
  }
  const Bytes& bytes() const { return out_; }

 private:
  Bytes out_;
};

// One input of a target's seed corpus: a file name (without directory) and
// its contents.
struct Seed {
  std::string name;
  Bytes data;
};

// Implemented by each target: valid, interesting inputs built with the real
// encoders (so they track the wire format), written by
// `<target>_replay --write-seeds DIR`.
std::vector<Seed> SeedInputs();

// A deterministic byte pattern for large messages the fuzzer sizes but does
// not spell out byte by byte: a 257-byte pseudo-random block (prime length,
// so the pattern does not line up with record or frame boundaries) repeated.
// Block copies keep it cheap in instrumented builds.
inline Bytes PatternBytes(size_t n, uint8_t seed) {
  constexpr size_t kBlock = 257;
  uint8_t block[kBlock];
  uint32_t x = 0x9e3779b9u ^ seed;
  for (uint8_t& b : block) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b = static_cast<uint8_t>(x);
  }
  Bytes out(n);
  for (size_t i = 0; i < n; i += kBlock) {
    std::memcpy(out.data() + i, block, n - i < kBlock ? n - i : kBlock);
  }
  return out;
}

}  // namespace dpnode::fuzz

#endif  // DPNODE_TESTS_FUZZ_FUZZ_UTIL_H_
