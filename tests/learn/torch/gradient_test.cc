// The fast ghost-norm clipped gradient sum equals the slow microbatch
// reference (per-example autograd, clip, sum) on random logistic regressions
// and MLPs, with some examples above and some below the clip norm.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "node/learn/model_spec.h"
#include "node/learn/network.h"
#include "node/learn/noise.h"

namespace dpnode::learn {
namespace {

struct Batch {
  std::vector<float> features;
  std::vector<int32_t> labels;
};

Batch RandomBatch(const ModelSpec& spec, int64_t n, uint64_t seed) {
  RandomStream rng = RandomStream::Seeded(seed, "test-batch");
  Batch b;
  for (int64_t i = 0; i < n * spec.input_dim; ++i) {
    // Rows of very different scales give gradient norms on both sides of C.
    const double scale = (i / spec.input_dim) % 3 == 0 ? 0.05 : 1.5;
    b.features.push_back(static_cast<float>(scale * rng.Gaussian()));
  }
  for (int64_t i = 0; i < n; ++i) {
    b.labels.push_back(static_cast<int32_t>(rng.NextU64() % static_cast<uint64_t>(spec.num_classes)));
  }
  return b;
}

std::unique_ptr<Network> MakeNetwork(const ModelSpec& spec, uint64_t seed) {
  Result<std::unique_ptr<Network>> net = Network::Create(spec, InitialParameters(spec, seed));
  REQUIRE_MESSAGE(net.ok(), net.status().ToString());
  return std::move(net).value();
}

double MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(double(a[i]) - double(b[i])));
  return m;
}

ModelSpec Spec(ModelKind kind, int64_t dim, int64_t classes, std::vector<int64_t> hidden,
               Activation act, double dropout) {
  ModelSpec s;
  s.kind = kind;
  s.input_dim = dim;
  s.num_classes = classes;
  s.hidden = std::move(hidden);
  s.activation = act;
  s.dropout = dropout;
  return s;
}

TEST_CASE("ghost-norm clipped sum equals the microbatch reference") {
  const std::vector<ModelSpec> specs = {
      Spec(ModelKind::kLogistic, 7, 2, {}, Activation::kRelu, 0),
      Spec(ModelKind::kLogistic, 11, 4, {}, Activation::kRelu, 0),
      Spec(ModelKind::kMlp, 9, 3, {16, 8}, Activation::kRelu, 0),
      Spec(ModelKind::kMlp, 6, 2, {5}, Activation::kTanh, 0),
      Spec(ModelKind::kMlp, 10, 3, {12, 7, 5}, Activation::kTanh, 0),
      Spec(ModelKind::kMlp, 8, 2, {14, 6}, Activation::kRelu, 0.3),
  };
  uint64_t seed = 1;
  for (const ModelSpec& spec : specs) {
    for (int trial = 0; trial < 3; ++trial, ++seed) {
      CAPTURE(CanonicalArchitecture(spec));
      CAPTURE(trial);
      const int64_t n = 24 + 5 * trial;
      std::unique_ptr<Network> net = MakeNetwork(spec, seed);
      Batch b = RandomBatch(spec, n, 100 + seed);

      // Unclipped: the mean per-example norm picks a C that clips some
      // examples and leaves others alone.
      GradientOptions unclipped;
      unclipped.mode = ClipMode::kMicrobatch;
      unclipped.clip_norm = 1e30;
      unclipped.dropout_seed = seed;
      std::vector<float> ref_unclipped, fast_unclipped;
      GradientStats ref_stats;
      REQUIRE(net->ClippedGradientSum(b.features.data(), b.labels.data(), n, unclipped,
                                      ref_unclipped, &ref_stats).ok());
      CHECK(ref_stats.clipped == 0);
      GradientOptions none = unclipped;
      none.mode = ClipMode::kNone;
      REQUIRE(net->ClippedGradientSum(b.features.data(), b.labels.data(), n, none,
                                      fast_unclipped).ok());
      CHECK(MaxAbsDiff(ref_unclipped, fast_unclipped) <= 1e-5);

      GradientOptions opt;
      opt.clip_norm = ref_stats.norm_sum / static_cast<double>(n);
      opt.dropout_seed = seed;
      opt.mode = ClipMode::kGhost;
      std::vector<float> fast, ref;
      GradientStats fast_stats, slow_stats;
      REQUIRE(net->ClippedGradientSum(b.features.data(), b.labels.data(), n, opt, fast,
                                      &fast_stats).ok());
      opt.mode = ClipMode::kMicrobatch;
      REQUIRE(net->ClippedGradientSum(b.features.data(), b.labels.data(), n, opt, ref,
                                      &slow_stats).ok());
      CHECK(fast_stats.clipped == slow_stats.clipped);
      CHECK(slow_stats.clipped > 0);
      CHECK(slow_stats.clipped < n);
      CHECK(fast_stats.norm_sum == doctest::Approx(slow_stats.norm_sum).epsilon(1e-5));
      CHECK(fast_stats.loss_sum == doctest::Approx(slow_stats.loss_sum).epsilon(1e-5));
      CHECK(MaxAbsDiff(fast, ref) <= 1e-5);
      // Clipping really changed the sum.
      CHECK(MaxAbsDiff(fast, fast_unclipped) > 1e-3);
    }
  }
}

TEST_CASE("an empty batch has a zero gradient sum") {
  ModelSpec spec = Spec(ModelKind::kMlp, 4, 2, {3}, Activation::kRelu, 0);
  std::unique_ptr<Network> net = MakeNetwork(spec, 7);
  std::vector<float> g(5, 1.0f);
  GradientStats stats;
  REQUIRE(net->ClippedGradientSum(nullptr, nullptr, 0, GradientOptions{}, g, &stats).ok());
  CHECK(static_cast<int64_t>(g.size()) == ParameterCount(spec));
  CHECK(std::all_of(g.begin(), g.end(), [](float v) { return v == 0.0f; }));
  CHECK(stats.examples == 0);
}

TEST_CASE("bad inputs are refused, not crashed on") {
  ModelSpec spec = Spec(ModelKind::kLogistic, 3, 2, {}, Activation::kRelu, 0);
  CHECK(!Network::Create(spec, std::vector<float>(3)).ok());
  spec.hidden = {4};
  CHECK(!ValidateModelSpec(spec).ok());
  spec = Spec(ModelKind::kLogistic, 3, 2, {}, Activation::kRelu, 0);
  std::unique_ptr<Network> net = MakeNetwork(spec, 1);
  std::vector<float> x(3, 0.5f), g;
  int32_t bad_label = 2;
  CHECK(net->ClippedGradientSum(x.data(), &bad_label, 1, GradientOptions{}, g).code() ==
        StatusCode::kInvalidArgument);
  GradientOptions zero_clip;
  zero_clip.clip_norm = 0;
  int32_t label = 1;
  CHECK(!net->ClippedGradientSum(x.data(), &label, 1, zero_clip, g).ok());
}

TEST_CASE("parameter layout, initialisation and fingerprint") {
  ModelSpec spec = Spec(ModelKind::kMlp, 64, 2, {128, 128}, Activation::kRelu, 0);
  std::vector<ParameterInfo> layout = ParameterLayout(spec);
  REQUIRE(layout.size() == 6);
  CHECK(layout[0].name == "layer0.weight");
  CHECK(layout[0].shape == std::vector<int64_t>{128, 64});
  CHECK(layout[5].name == "layer2.bias");
  CHECK(layout[5].offset + layout[5].size == ParameterCount(spec));
  CHECK(ParameterCount(spec) == 64 * 128 + 128 + 128 * 128 + 128 + 128 * 2 + 2);
  std::vector<float> p = InitialParameters(spec, 3);
  CHECK(p == InitialParameters(spec, 3));
  CHECK(p != InitialParameters(spec, 4));
  const float bound0 = 1.0f / 8.0f;  // 1/sqrt(64)
  for (int64_t i = 0; i < layout[0].size; ++i) CHECK(std::fabs(p[static_cast<size_t>(i)]) <= bound0);

  SchemaFingerprint schema{};
  ModelFingerprint f = ComputeModelFingerprint(schema, spec);
  ModelSpec dropout = spec;
  dropout.dropout = 0.5;
  CHECK(ComputeModelFingerprint(schema, dropout) == f);  // training-only setting
  ModelSpec tanh = spec;
  tanh.activation = Activation::kTanh;
  CHECK(ComputeModelFingerprint(schema, tanh) != f);
  ModelSpec wider = spec;
  wider.hidden = {128, 129};
  CHECK(ComputeModelFingerprint(schema, wider) != f);
  SchemaFingerprint other{};
  other[0] = 1;
  CHECK(ComputeModelFingerprint(other, spec) != f);
  CHECK(ModelFingerprintHex(f).size() == 64);
}

}  // namespace
}  // namespace dpnode::learn
