// Byte containers shared by the crypto layer: owned buffers (Bytes), borrowed
// views (ByteView, C++17 has no std::span), fixed-size secrets that wipe
// themselves (SecretArray), and hex conversion for tests, vectors and logs.
#ifndef DPNODE_CRYPTO_BYTES_H_
#define DPNODE_CRYPTO_BYTES_H_

#include <sodium.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/check.h"
#include "base/status.h"

namespace dpnode::crypto {

using Bytes = std::vector<uint8_t>;

// A read-only view of bytes owned by someone else; the owner must outlive it.
class ByteView {
 public:
  constexpr ByteView() = default;
  constexpr ByteView(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  ByteView(const Bytes& bytes)
      : data_(bytes.data()), size_(bytes.size()) {}  // NOLINT: implicit like span
  template <size_t N>
  ByteView(const std::array<uint8_t, N>& a)
      : data_(a.data()), size_(N) {}  // NOLINT: implicit like span

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const uint8_t* begin() const { return data_; }
  const uint8_t* end() const { return data_ + size_; }
  uint8_t operator[](size_t i) const { return data_[i]; }

  // Precondition: offset + length <= size().
  ByteView Sub(size_t offset, size_t length) const {
    DPNODE_CHECK(offset <= size_ && length <= size_ - offset, "Sub(%zu, %zu) of %zu bytes", offset,
                 length, size_);
    return ByteView(data_ + offset, length);
  }
  Bytes ToBytes() const { return Bytes(begin(), end()); }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// ASCII text as bytes (protocol names, labels); the string must outlive the view.
inline ByteView AsBytes(std::string_view s) {
  return ByteView(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

// N secret bytes (a private key, a chaining key) that are zeroed with
// sodium_memzero when destroyed or overwritten, so copies do not linger in
// freed memory. Starts all zero.
template <size_t N>
class SecretArray {
 public:
  static constexpr size_t kSize = N;

  SecretArray() { bytes_.fill(0); }
  explicit SecretArray(ByteView bytes) {
    DPNODE_CHECK(bytes.size() == N, "SecretArray<%zu> from %zu bytes", N, bytes.size());
    std::copy(bytes.begin(), bytes.end(), bytes_.begin());
  }
  SecretArray(const SecretArray& other) = default;
  SecretArray& operator=(const SecretArray& other) = default;
  ~SecretArray() { Wipe(); }

  void Wipe() { sodium_memzero(bytes_.data(), N); }
  uint8_t* data() { return bytes_.data(); }
  const uint8_t* data() const { return bytes_.data(); }
  static constexpr size_t size() { return N; }
  ByteView view() const { return ByteView(bytes_.data(), N); }
  operator ByteView() const { return view(); }  // NOLINT: implicit like span

 private:
  std::array<uint8_t, N> bytes_;
};

// Lower-case hex, two characters a byte.
std::string HexEncode(ByteView bytes);
// Accepts upper or lower case; refuses odd lengths and non-hex characters.
Result<Bytes> HexDecode(std::string_view hex);

// Constant-time equality (sodium_memcmp); different lengths compare unequal.
bool ConstantTimeEqual(ByteView a, ByteView b);

}  // namespace dpnode::crypto

#endif  // DPNODE_CRYPTO_BYTES_H_
