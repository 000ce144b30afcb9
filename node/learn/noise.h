// The randomness of DP-SGD: which records a step samples (Poisson) and the
// Gaussian noise added to the clipped gradient sum.
//
// The privacy proof assumes both are unpredictable to the adversary, so a
// RandomStream is a ChaCha20 keystream (libsodium) under a key drawn from the
// OS CSPRNG (randombytes_buf). A seeded stream (key = BLAKE2b of the seed and
// a stream name) exists for tests and the simulator only: it makes runs
// reproducible and is NOT private; whoever prints results from one must say
// so (see NoiseDescription).
//
// Gaussians come from the ziggurat method (Marsaglia and Tsang 2000; 256
// layers, exact rejection sampling of the wedges and of the tail) in double
// precision on 53-bit uniforms, then are rounded to float. It needs about one
// 64-bit word and rarely a logarithm per normal, which is most of the cost
// of a DP-SGD step beyond the gradient itself. Known limitation (documented in
// docs/learner.md): like every floating-point sampler in common DP libraries,
// this is not hardened against the floating-point attacks of Mironov (CCS
// 2012) and Jin et al. (2022).
//
// Not thread-safe; one stream per node and purpose.
#ifndef DPNODE_NODE_LEARN_NOISE_H_
#define DPNODE_NODE_LEARN_NOISE_H_

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

namespace dpnode::learn {

class RandomStream {
 public:
  // A fresh key from the OS CSPRNG.
  static RandomStream Secure();
  // Deterministic: the same (seed, name) gives the same stream. NOT private.
  static RandomStream Seeded(uint64_t seed, std::string_view name);

  bool seeded() const { return seeded_; }

  uint64_t NextU64();
  double Uniform();   // in [0, 1), multiples of 2^-53
  double Gaussian();  // N(0, 1)

  // out[i] += N(0, stddev²) for i in [0, n).
  void AddGaussian(float* out, int64_t n, double stddev);

 private:
  // Layer edges x[0] > x[1] = r > ... > x[256] = 0 and f(x[i]).
  struct ZigguratTable {
    std::array<double, 257> x{};
    std::array<double, 257> f{};
  };
  static ZigguratTable MakeZigguratTable();

  RandomStream(const std::array<uint8_t, 32>& key, bool seeded);
  void Refill();

  std::array<uint8_t, 32> key_{};
  bool seeded_ = false;
  uint64_t block_counter_ = 0;            // ChaCha20 64-byte block index
  std::array<uint8_t, 4096> buffer_{};    // keystream not yet used
  size_t used_ = sizeof(buffer_);
  ZigguratTable zig_;
};

// Poisson sampling: each of `records` indices independently with
// probability q ∈ [0, 1], ascending. The batch may be empty.
std::vector<int64_t> PoissonSample(int64_t records, double sample_rate, RandomStream& stream);

// "csprng" or "seeded (NOT private)", for outputs.
const char* NoiseDescription(const RandomStream& stream);

}  // namespace dpnode::learn

#endif  // DPNODE_NODE_LEARN_NOISE_H_
