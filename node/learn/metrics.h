// Evaluation of predicted class probabilities against labels: accuracy,
// AUROC, AUPRC, Brier score and expected calibration error. Torch-free, so
// the simulator and the CLI can score any model's outputs.
//
// Binary labels (2 classes) are scored on the positive class (class 1):
// AUROC and AUPRC rank rows by p(class 1), Brier is mean (p1 - y)², ECE bins
// p(class 1). With K > 2 classes AUROC and AUPRC are the unweighted mean of
// the one-vs-rest figures over the classes present among both positives and
// negatives, Brier is the mean over rows of Σ_k (p_k - 1[y = k])², and ECE
// bins the top-class confidence against top-class correctness.
#ifndef DPNODE_NODE_LEARN_METRICS_H_
#define DPNODE_NODE_LEARN_METRICS_H_

#include <cstdint>
#include <vector>

#include "base/status.h"

namespace dpnode::learn {

struct Metrics {
  int64_t rows = 0;
  double accuracy = 0;  // argmax (ties: lowest class index) == label
  // Probability that a random positive scores above a random negative, ties
  // counting one half (the Mann-Whitney statistic with midranks). NaN when
  // one of the two groups is empty.
  double auroc = 0;
  // Average precision: Σ over positives, in descending score order, of the
  // precision at that positive's score; tied scores form one threshold (all
  // rows of a tie enter together). NaN without positives.
  double auprc = 0;
  double brier = 0;
  // Expected calibration error with 10 equal-width bins on [0, 1] (bin b
  // holds confidences in [b/10, (b+1)/10), the last bin includes 1):
  // Σ_b (n_b / n) |mean confidence_b - mean outcome_b|.
  double ece = 0;
};

// `probabilities` holds rows × num_classes values, row-major; `labels` one
// class index per row. Errors: size mismatch, labels out of range, zero rows.
Result<Metrics> ComputeMetrics(const std::vector<float>& probabilities,
                               const std::vector<int32_t>& labels, int64_t num_classes);

// The rank-based AUROC and the average precision of real scores for binary
// outcomes (1 = positive). NaN when undefined (see Metrics).
double Auroc(const std::vector<double>& scores, const std::vector<int>& positive);
double AveragePrecision(const std::vector<double>& scores, const std::vector<int>& positive);
// ECE of confidences against 0/1 outcomes with `bins` equal-width bins.
double ExpectedCalibrationError(const std::vector<double>& confidence,
                                const std::vector<int>& outcome, int bins = 10);

}  // namespace dpnode::learn

#endif  // DPNODE_NODE_LEARN_METRICS_H_
