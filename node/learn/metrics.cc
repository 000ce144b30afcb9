// Evaluation metrics over predicted probabilities.
#include "node/learn/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace dpnode::learn {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Indices of `scores` sorted by descending score.
std::vector<size_t> Descending(const std::vector<double>& scores) {
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  return order;
}

}  // namespace

double Auroc(const std::vector<double>& scores, const std::vector<int>& positive) {
  const size_t n = scores.size();
  std::vector<size_t> order = Descending(scores);
  // Midranks in ascending order: rank 1 = lowest score.
  double positive_rank_sum = 0;
  double n_pos = 0;
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    while (j < n && scores[order[j]] == scores[order[i]]) ++j;
    // Descending positions i..j-1 are ascending ranks n-j+1 .. n-i.
    const double midrank = (static_cast<double>(n - j + 1) + static_cast<double>(n - i)) / 2;
    for (size_t k = i; k < j; ++k) {
      if (positive[order[k]]) {
        positive_rank_sum += midrank;
        n_pos += 1;
      }
    }
    i = j;
  }
  const double n_neg = static_cast<double>(n) - n_pos;
  if (n_pos == 0 || n_neg == 0) return kNaN;
  return (positive_rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg);
}

double AveragePrecision(const std::vector<double>& scores, const std::vector<int>& positive) {
  const size_t n = scores.size();
  std::vector<size_t> order = Descending(scores);
  double total_pos = 0;
  for (int p : positive) total_pos += p ? 1 : 0;
  if (total_pos == 0) return kNaN;
  double tp = 0, seen = 0, ap = 0;
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    double tie_pos = 0;
    while (j < n && scores[order[j]] == scores[order[i]]) {
      tie_pos += positive[order[j]] ? 1 : 0;
      ++j;
    }
    tp += tie_pos;
    seen += static_cast<double>(j - i);
    // Recall rises by tie_pos / total_pos at precision tp / seen.
    ap += (tie_pos / total_pos) * (tp / seen);
    i = j;
  }
  return ap;
}

double ExpectedCalibrationError(const std::vector<double>& confidence,
                                const std::vector<int>& outcome, int bins) {
  std::vector<double> count(static_cast<size_t>(bins), 0), conf(static_cast<size_t>(bins), 0),
      hit(static_cast<size_t>(bins), 0);
  for (size_t i = 0; i < confidence.size(); ++i) {
    int b = static_cast<int>(std::floor(confidence[i] * bins));
    b = std::clamp(b, 0, bins - 1);
    count[static_cast<size_t>(b)] += 1;
    conf[static_cast<size_t>(b)] += confidence[i];
    hit[static_cast<size_t>(b)] += outcome[i] ? 1 : 0;
  }
  const double n = static_cast<double>(confidence.size());
  double ece = 0;
  for (size_t b = 0; b < count.size(); ++b) {
    if (count[b] > 0) ece += std::fabs(conf[b] - hit[b]) / n;  // (n_b/n)·|mean diff|
  }
  return ece;
}

Result<Metrics> ComputeMetrics(const std::vector<float>& probabilities,
                               const std::vector<int32_t>& labels, int64_t num_classes) {
  const int64_t rows = static_cast<int64_t>(labels.size());
  if (num_classes < 2) return Status::InvalidArgument("metrics need at least 2 classes");
  if (rows == 0) return Status::InvalidArgument("no rows to evaluate");
  if (static_cast<int64_t>(probabilities.size()) != rows * num_classes) {
    return Status::InvalidArgument("probabilities do not match rows x classes");
  }
  const size_t k = static_cast<size_t>(num_classes);
  auto p = [&](int64_t r, size_t c) {
    return static_cast<double>(probabilities[static_cast<size_t>(r) * k + c]);
  };
  Metrics m;
  m.rows = rows;
  std::vector<double> top_conf(static_cast<size_t>(rows));
  std::vector<int> top_hit(static_cast<size_t>(rows));
  double correct = 0, brier = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t y = labels[static_cast<size_t>(r)];
    if (y < 0 || y >= num_classes) return Status::InvalidArgument("label out of range");
    size_t best = 0;
    for (size_t c = 1; c < k; ++c) {
      if (p(r, c) > p(r, best)) best = c;
    }
    correct += static_cast<int32_t>(best) == y ? 1 : 0;
    top_conf[static_cast<size_t>(r)] = p(r, best);
    top_hit[static_cast<size_t>(r)] = static_cast<int32_t>(best) == y;
    if (num_classes == 2) {
      const double d = p(r, 1) - (y == 1 ? 1 : 0);
      brier += d * d;
    } else {
      for (size_t c = 0; c < k; ++c) {
        const double d = p(r, c) - (static_cast<int32_t>(c) == y ? 1 : 0);
        brier += d * d;
      }
    }
  }
  m.accuracy = correct / static_cast<double>(rows);
  m.brier = brier / static_cast<double>(rows);
  if (num_classes == 2) {
    std::vector<double> score(static_cast<size_t>(rows));
    std::vector<int> pos(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
      score[static_cast<size_t>(r)] = p(r, 1);
      pos[static_cast<size_t>(r)] = labels[static_cast<size_t>(r)] == 1;
    }
    m.auroc = Auroc(score, pos);
    m.auprc = AveragePrecision(score, pos);
    m.ece = ExpectedCalibrationError(score, pos);
  } else {
    double auroc = 0, auprc = 0, used = 0;
    for (size_t c = 0; c < k; ++c) {
      std::vector<double> score(static_cast<size_t>(rows));
      std::vector<int> pos(static_cast<size_t>(rows));
      for (int64_t r = 0; r < rows; ++r) {
        score[static_cast<size_t>(r)] = p(r, c);
        pos[static_cast<size_t>(r)] = labels[static_cast<size_t>(r)] == static_cast<int32_t>(c);
      }
      const double a = Auroc(score, pos);
      if (std::isnan(a)) continue;
      auroc += a;
      auprc += AveragePrecision(score, pos);
      used += 1;
    }
    m.auroc = used > 0 ? auroc / used : kNaN;
    m.auprc = used > 0 ? auprc / used : kNaN;
    m.ece = ExpectedCalibrationError(top_conf, top_hit);
  }
  return m;
}

}  // namespace dpnode::learn
