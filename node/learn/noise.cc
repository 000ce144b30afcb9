// ChaCha20 keystream randomness, Gaussians and Poisson sampling.
#include "node/learn/noise.h"

#include <sodium.h>

#include <cmath>
#include <cstring>

#include "base/check.h"

namespace dpnode::learn {

RandomStream::RandomStream(const std::array<uint8_t, 32>& key, bool seeded)
    : key_(key), seeded_(seeded), zig_(MakeZigguratTable()) {}

RandomStream RandomStream::Secure() {
  DPNODE_CHECK(sodium_init() >= 0, "libsodium failed to initialise");
  std::array<uint8_t, 32> key{};
  randombytes_buf(key.data(), key.size());
  return RandomStream(key, false);
}

RandomStream RandomStream::Seeded(uint64_t seed, std::string_view name) {
  DPNODE_CHECK(sodium_init() >= 0, "libsodium failed to initialise");
  static constexpr char kTag[] = "dpnode-seeded-stream-v1";
  uint8_t seed_bytes[8];
  for (int i = 0; i < 8; ++i) seed_bytes[i] = static_cast<uint8_t>(seed >> (8 * i));
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, 32);
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(kTag), sizeof(kTag));
  crypto_generichash_update(&st, seed_bytes, sizeof(seed_bytes));
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(name.data()), name.size());
  std::array<uint8_t, 32> key{};
  crypto_generichash_final(&st, key.data(), key.size());
  return RandomStream(key, true);
}

void RandomStream::Refill() {
  // Each key is used with one all-zero nonce; the counter walks the stream.
  static const uint8_t kNonce[crypto_stream_chacha20_NONCEBYTES] = {};
  std::memset(buffer_.data(), 0, buffer_.size());
  crypto_stream_chacha20_xor_ic(buffer_.data(), buffer_.data(), buffer_.size(), kNonce,
                                block_counter_, key_.data());
  block_counter_ += buffer_.size() / 64;
  used_ = 0;
}

uint64_t RandomStream::NextU64() {
  if (used_ + 8 > buffer_.size()) Refill();
  // Little-endian byte order, so seeded streams agree across platforms.
  const uint8_t* b = buffer_.data() + used_;
  const uint64_t v = uint64_t{b[0]} | uint64_t{b[1]} << 8 | uint64_t{b[2]} << 16 |
                     uint64_t{b[3]} << 24 | uint64_t{b[4]} << 32 | uint64_t{b[5]} << 40 |
                     uint64_t{b[6]} << 48 | uint64_t{b[7]} << 56;
  used_ += 8;
  return v;
}

double RandomStream::Uniform() { return static_cast<double>(NextU64() >> 11) * 0x1.0p-53; }

namespace {

// Ziggurat of Marsaglia and Tsang (2000) with 256 layers of equal area v
// under f(x) = exp(-x²/2); layer 0 is the base strip, the rectangle
// [0, r] x [0, f(r)] plus the tail beyond r.
constexpr double kZigR = 3.6541528853610088;
constexpr double kZigV = 4.92867323399e-3;

double Density(double x) { return std::exp(-0.5 * x * x); }

}  // namespace

RandomStream::ZigguratTable RandomStream::MakeZigguratTable() {
  ZigguratTable t;
  t.x[0] = kZigV / Density(kZigR);
  t.x[1] = kZigR;
  for (size_t i = 1; i + 1 < 256; ++i) {
    t.x[i + 1] = std::sqrt(-2.0 * std::log(kZigV / t.x[i] + Density(t.x[i])));
  }
  t.x[256] = 0;
  for (size_t i = 0; i <= 256; ++i) t.f[i] = Density(t.x[i]);
  return t;
}

double RandomStream::Gaussian() {
  // One 64-bit word gives independent bits for the layer (8), the sign (1)
  // and a 53-bit uniform.
  for (;;) {
    const uint64_t bits = NextU64();
    const size_t i = static_cast<size_t>(bits & 0xff);
    const double sign = (bits & 0x100) ? -1.0 : 1.0;
    const double u = static_cast<double>(bits >> 11) * 0x1.0p-53;
    const double x = u * zig_.x[i];
    if (x < zig_.x[i + 1]) return sign * x;  // inside the part wholly under f
    if (i == 0) {
      // The tail beyond r (Marsaglia 1964): exact, by rejection.
      double a, b;
      do {
        a = -std::log(1.0 - Uniform()) / kZigR;
        b = -std::log(1.0 - Uniform());
      } while (2.0 * b < a * a);
      return sign * (kZigR + a);
    }
    // The wedge between the rectangle's edge and the curve.
    const double y = zig_.f[i] + Uniform() * (zig_.f[i + 1] - zig_.f[i]);
    if (y < Density(x)) return sign * x;
  }
}

void RandomStream::AddGaussian(float* out, int64_t n, double stddev) {
  for (int64_t i = 0; i < n; ++i) {
    out[i] = static_cast<float>(static_cast<double>(out[i]) + stddev * Gaussian());
  }
}

std::vector<int64_t> PoissonSample(int64_t records, double sample_rate, RandomStream& stream) {
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(static_cast<double>(records) * sample_rate * 1.2 + 8));
  for (int64_t i = 0; i < records; ++i) {
    if (stream.Uniform() < sample_rate) out.push_back(i);
  }
  return out;
}

const char* NoiseDescription(const RandomStream& stream) {
  return stream.seeded() ? "seeded (NOT private)" : "csprng";
}

}  // namespace dpnode::learn
