// Softmax regression with DP-SGD for the simulator (see logistic_trainer.h).
#include "sim/experiment/logistic_trainer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "crypto/noise_primitives.h"
#include "node/learn/metrics.h"

namespace dpnode::sim {
namespace {

// Softmax probabilities of one row into `p` (size classes).
void Probabilities(const learn::Dataset& data, int64_t row, int classes, const float* w,
                   const float* b, std::vector<double>& p) {
  double max_z = -std::numeric_limits<double>::infinity();
  for (int c = 0; c < classes; ++c) {
    double z = b[c];
    const float* wc = w + static_cast<int64_t>(c) * data.dim;
    const float* x = &data.features[static_cast<size_t>(row * data.dim)];
    for (int64_t k = 0; k < data.dim; ++k) z += static_cast<double>(wc[k]) * x[k];
    p[static_cast<size_t>(c)] = z;
    max_z = std::max(max_z, z);
  }
  double sum = 0;
  for (int c = 0; c < classes; ++c) {
    p[static_cast<size_t>(c)] = std::exp(p[static_cast<size_t>(c)] - max_z);
    sum += p[static_cast<size_t>(c)];
  }
  for (int c = 0; c < classes; ++c) p[static_cast<size_t>(c)] /= sum;
}

double Uniform01(Xoshiro256& rng) { return static_cast<double>(rng.Next() >> 11) * 0x1.0p-53; }

}  // namespace

LogisticTrainer::LogisticTrainer(const learn::Dataset& data, std::vector<int64_t> rows,
                                 int num_classes, TrainPlan plan, uint64_t seed)
    : data_(data),
      rows_(std::move(rows)),
      classes_(num_classes),
      dim_(data.dim),
      plan_(plan),
      rng_(seed),
      params_(static_cast<size_t>(num_classes * (data.dim + 1)), 0.0f) {
  // Its own domain tag: a LibTorch logistic model of the same sizes has
  // another layout, so its checkpoints must not load here.
  const std::string tag = "dpnode-sim-logistic-v1 classes=" + std::to_string(classes_) +
                          " dim=" + std::to_string(dim_);
  const crypto::noise::HashOutput h = crypto::noise::Blake2b512(
      crypto::ByteView(reinterpret_cast<const uint8_t*>(tag.data()), tag.size()));
  std::copy(h.data(), h.data() + fingerprint_.size(), fingerprint_.begin());
}

gossip::Layout LogisticTrainer::ParameterLayout() const {
  return {{"w", {static_cast<uint64_t>(classes_), static_cast<uint64_t>(dim_)}},
          {"b", {static_cast<uint64_t>(classes_)}}};
}

Status LogisticTrainer::SetParameters(const std::vector<float>& params) {
  if (params.size() != params_.size()) return Status::InvalidArgument("parameter length");
  for (float v : params) {
    if (!std::isfinite(v)) return Status::InvalidArgument("non-finite parameter");
  }
  params_ = params;
  return Status::Ok();
}

learn::Checkpoint LogisticTrainer::MakeCheckpoint() const {
  learn::Checkpoint c;
  c.fingerprint = fingerprint_;
  c.steps = steps_taken_;
  c.parameters = params_;
  return c;
}

Status LogisticTrainer::RestoreCheckpoint(const learn::Checkpoint& checkpoint) {
  if (checkpoint.fingerprint != fingerprint_) {
    return Status::FailedPrecondition("checkpoint is of another model");
  }
  if (!checkpoint.optimizer.m.empty() || !checkpoint.optimizer.v.empty()) {
    return Status::InvalidArgument("checkpoint has optimiser state; this trainer keeps none");
  }
  if (checkpoint.steps < 0) return Status::InvalidArgument("negative step count");
  DPNODE_RETURN_IF_ERROR(SetParameters(checkpoint.parameters));
  steps_taken_ = checkpoint.steps;
  return Status::Ok();
}

privacy::StepBlock LogisticTrainer::StepCost() const {
  return {plan_.sample_rate, plan_.noise_multiplier, 1};
}

Status LogisticTrainer::Step() {
  const size_t n_w = static_cast<size_t>(classes_ * dim_);
  std::vector<double> grad(params_.size(), 0.0);
  std::vector<double> g(params_.size());
  std::vector<double> p(static_cast<size_t>(classes_));
  int64_t drawn = 0;
  for (int64_t row : rows_) {
    if (Uniform01(rng_) >= plan_.sample_rate) continue;  // Poisson sampling
    ++drawn;
    Probabilities(data_, row, classes_, params_.data(), params_.data() + n_w, p);
    const int32_t y = data_.labels[static_cast<size_t>(row)];
    const float* x = &data_.features[static_cast<size_t>(row * dim_)];
    double norm2 = 0;
    for (int c = 0; c < classes_; ++c) {
      const double e = p[static_cast<size_t>(c)] - (c == y ? 1.0 : 0.0);
      for (int64_t k = 0; k < dim_; ++k) {
        const double v = e * x[k];
        g[static_cast<size_t>(c * dim_ + k)] = v;
        norm2 += v * v;
      }
      g[n_w + static_cast<size_t>(c)] = e;
      norm2 += e * e;
    }
    double scale = 1.0;
    if (plan_.is_private) {
      const double norm = std::sqrt(norm2);
      if (norm > plan_.clip) scale = plan_.clip / norm;
    }
    for (size_t i = 0; i < grad.size(); ++i) grad[i] += scale * g[i];
  }
  double denom;
  if (plan_.is_private) {
    const double sd = plan_.noise_multiplier * plan_.clip;
    for (double& v : grad) v += sd * rng_.Normal();
    denom = plan_.sample_rate * static_cast<double>(rows_.size());
  } else {
    denom = static_cast<double>(std::max<int64_t>(drawn, 1));
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    params_[i] -= static_cast<float>(plan_.learning_rate * grad[i] / denom);
  }
  ++steps_taken_;
  return Status::Ok();
}

Result<double> LogisticTrainer::Evaluate() {
  return EvaluateParams(data_, rows_, classes_, params_).loss;
}

EvalResult EvaluateParams(const learn::Dataset& data, const std::vector<int64_t>& rows,
                          int num_classes, const std::vector<float>& params) {
  EvalResult out;
  if (rows.empty()) {
    out.accuracy = out.auroc = out.loss = std::numeric_limits<double>::quiet_NaN();
    return out;
  }
  const size_t n_w = static_cast<size_t>(num_classes * data.dim);
  std::vector<double> p(static_cast<size_t>(num_classes));
  std::vector<double> scores;
  std::vector<int> positive;
  int64_t correct = 0;
  double loss = 0;
  for (int64_t row : rows) {
    Probabilities(data, row, num_classes, params.data(), params.data() + n_w, p);
    const int32_t y = data.labels[static_cast<size_t>(row)];
    int best = 0;
    for (int c = 1; c < num_classes; ++c) {
      if (p[static_cast<size_t>(c)] > p[static_cast<size_t>(best)]) best = c;
    }
    if (best == y) ++correct;
    loss -= std::log(std::max(p[static_cast<size_t>(y)], 1e-12));
    if (num_classes == 2) {
      scores.push_back(p[1]);
      positive.push_back(y == 1 ? 1 : 0);
    }
  }
  const double n = static_cast<double>(rows.size());
  out.accuracy = static_cast<double>(correct) / n;
  out.loss = loss / n;
  out.auroc = num_classes == 2 ? learn::Auroc(scores, positive)
                               : std::numeric_limits<double>::quiet_NaN();
  return out;
}

}  // namespace dpnode::sim
