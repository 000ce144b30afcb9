// Evaluation metrics against values computed by hand (worked in comments).
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "node/learn/metrics.h"

namespace dpnode::learn {
namespace {

TEST_CASE("AUROC counts pairs, ties as one half") {
  // Positives 0.35, 0.8; negatives 0.1, 0.4: 3 of 4 pairs ordered.
  CHECK(Auroc({0.1, 0.4, 0.35, 0.8}, {0, 0, 1, 1}) == doctest::Approx(0.75));
  // Positives 0.5, 0.9; negatives 0.5, 0.2: pairs 0.5, 1, 1, 1 -> 3.5/4.
  CHECK(Auroc({0.5, 0.5, 0.2, 0.9}, {1, 0, 0, 1}) == doctest::Approx(0.875));
  CHECK(Auroc({0.3, 0.3, 0.3}, {1, 0, 1}) == doctest::Approx(0.5));
  CHECK(std::isnan(Auroc({0.1, 0.2}, {1, 1})));
}

TEST_CASE("average precision: tied scores enter together") {
  // Descending 0.8(+) 0.4(-) 0.35(+) 0.1(-): precisions at the positives 1
  // and 2/3, each recall step 1/2 -> 0.8333.
  CHECK(AveragePrecision({0.1, 0.4, 0.35, 0.8}, {0, 0, 1, 1}) == doctest::Approx(5.0 / 6));
  // 0.9(+), then the tie {0.5(+), 0.5(-)} at precision 2/3: 1/2 + 1/3.
  CHECK(AveragePrecision({0.5, 0.5, 0.2, 0.9}, {1, 0, 0, 1}) == doctest::Approx(5.0 / 6));
  CHECK(std::isnan(AveragePrecision({0.1, 0.2}, {0, 0})));
}

TEST_CASE("expected calibration error over 10 bins") {
  // bin 0: {0.05 vs 0}; bin 1: {0.15, 0.12} vs one hit: |0.27 - 1|;
  // bin 9 (1.0 included): {0.95, 1.0} vs two hits: 0.05. (0.05+0.73+0.05)/5.
  CHECK(ExpectedCalibrationError({0.05, 0.15, 0.12, 0.95, 1.0}, {0, 1, 0, 1, 1}) ==
        doctest::Approx(0.166));
}

TEST_CASE("binary metrics on the positive class") {
  std::vector<float> p = {0.9f, 0.1f, 0.3f, 0.7f, 0.6f, 0.4f, 0.2f, 0.8f};
  std::vector<int32_t> y = {0, 1, 1, 1};
  Result<Metrics> m = ComputeMetrics(p, y, 2);
  REQUIRE(m.ok());
  CHECK(m->rows == 4);
  CHECK(m->accuracy == doctest::Approx(0.75));  // row 2 predicts class 0
  // (0.1² + 0.3² + 0.6² + 0.2²) / 4
  CHECK(m->brier == doctest::Approx(0.125).epsilon(1e-6));
  CHECK(m->auroc == doctest::Approx(1.0));
  CHECK(m->auprc == doctest::Approx(1.0));
  // One score per bin: (0.1 + 0.3 + 0.6 + 0.2) / 4
  CHECK(m->ece == doctest::Approx(0.3).epsilon(1e-6));
}

TEST_CASE("multi-class metrics") {
  // Confidences kept off bin edges: 0.7f is just below 0.7 in float.
  std::vector<float> p = {0.75f, 0.15f, 0.1f, 0.1f, 0.25f, 0.65f, 0.2f, 0.55f, 0.25f};
  std::vector<int32_t> y = {0, 1, 1};
  Result<Metrics> m = ComputeMetrics(p, y, 3);
  REQUIRE(m.ok());
  CHECK(m->accuracy == doctest::Approx(2.0 / 3));
  // (0.0625+0.0225+0.01) + (0.01+0.5625+0.4225) + (0.04+0.2025+0.0625) = 1.395, / 3 rows
  CHECK(m->brier == doctest::Approx(1.395 / 3).epsilon(1e-6));
  // Class 0: positive 0.75 vs negatives 0.1, 0.2 -> 1. Class 1: positives
  // 0.25, 0.55 vs negative 0.15 -> 1. Class 2 has no positive: skipped.
  CHECK(m->auroc == doctest::Approx(1.0));
  CHECK(m->auprc == doctest::Approx(1.0));
  // Top-class confidences 0.75 (hit), 0.65 (miss), 0.55 (hit) in bins 7, 6, 5.
  CHECK(m->ece == doctest::Approx((0.25 + 0.65 + 0.45) / 3).epsilon(1e-6));
}

TEST_CASE("malformed inputs are refused") {
  CHECK(!ComputeMetrics({0.5f, 0.5f}, {0, 1}, 2).ok());
  CHECK(!ComputeMetrics({0.5f, 0.5f}, {2}, 2).ok());
  CHECK(!ComputeMetrics({}, {}, 2).ok());
}

}  // namespace
}  // namespace dpnode::learn
