// The DP-SGD loop: charge, sample, clip, noise, update.
#include "node/learn/dpsgd.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace dpnode::learn {

const char* StopReasonName(StopReason reason) {
  return reason == StopReason::kCompleted ? "completed" : "budget_exhausted";
}

DpSgdTrainer::DpSgdTrainer(Network& network, const OptimizerConfig& optimizer,
                           const DpSgdConfig& config, privacy::Ledger* ledger,
                           RandomStream sampling, RandomStream noise)
    : network_(network),
      optimizer_(optimizer, static_cast<int64_t>(network.parameters().size())),
      config_(config),
      ledger_(ledger),
      sampling_(std::move(sampling)),
      noise_(std::move(noise)) {}

Result<std::unique_ptr<DpSgdTrainer>> DpSgdTrainer::Create(Network& network,
                                                           const OptimizerConfig& optimizer,
                                                           const DpSgdConfig& config,
                                                           privacy::Ledger* ledger) {
  DPNODE_RETURN_IF_ERROR(ValidateOptimizerConfig(optimizer));
  DPNODE_RETURN_IF_ERROR(privacy::ValidateSampleRate(config.sample_rate));
  if (config.max_steps < 0) return Status::InvalidArgument("max_steps must be >= 0");
  if (config.private_training) {
    DPNODE_RETURN_IF_ERROR(privacy::ValidateNoiseMultiplier(config.noise_multiplier));
    if (!(config.clip_norm > 0) || !std::isfinite(config.clip_norm)) {
      return Status::InvalidArgument("clip_norm must be a finite number > 0");
    }
    if (config.clip_mode == ClipMode::kNone) {
      return Status::InvalidArgument("private training must clip");
    }
    if (config.caller_charges) {
      if (ledger) {
        return Status::InvalidArgument("caller_charges: the caller's ledger pays, pass none");
      }
    } else if (!ledger) {
      return Status::InvalidArgument("private training needs a ledger");
    }
    if (config.ledger_block_steps < 1) {
      return Status::InvalidArgument("ledger_block_steps must be >= 1");
    }
  }
  RandomStream sampling = config.noise_seed ? RandomStream::Seeded(*config.noise_seed, "sampling")
                                            : RandomStream::Secure();
  RandomStream noise = config.noise_seed ? RandomStream::Seeded(*config.noise_seed, "noise")
                                         : RandomStream::Secure();
  return std::unique_ptr<DpSgdTrainer>(new DpSgdTrainer(
      network, optimizer, config, config.private_training ? ledger : nullptr,
      std::move(sampling), std::move(noise)));
}

Result<bool> DpSgdTrainer::Charge() {
  if (reserved_ > 0) return true;
  const int64_t left = config_.max_steps - steps_run_;
  int64_t block = std::max<int64_t>(1, std::min(config_.ledger_block_steps, left));
  const privacy::StepBlock want{config_.sample_rate, config_.noise_multiplier, block};
  Result<privacy::ChargeReceipt> r = ledger_->Reserve(want);
  if (!r.ok() && r.status().code() == StatusCode::kBudgetExhausted) {
    // The whole block does not fit; charge what still does, if anything.
    exhausted_message_ = r.status().message();
    Result<privacy::StepsCalibration> rem =
        ledger_->StepsRemaining(config_.sample_rate, config_.noise_multiplier);
    if (!rem.ok()) {
      if (rem.status().code() == StatusCode::kBudgetExhausted ||
          rem.status().code() == StatusCode::kInvalidArgument) {
        return false;
      }
      return rem.status();
    }
    if (rem->steps < 1) return false;
    block = std::min(block, rem->steps);
    r = ledger_->Reserve({config_.sample_rate, config_.noise_multiplier, block});
    if (!r.ok() && r.status().code() == StatusCode::kBudgetExhausted) return false;
  }
  if (!r.ok()) return r.status();
  reserved_ = block;
  return true;
}

namespace {

Status CheckExamples(const Examples& data, const ModelSpec& spec) {
  if (data.dim != spec.input_dim) {
    return Status::InvalidArgument("examples have " + std::to_string(data.dim) +
                                   " features, the model expects " +
                                   std::to_string(spec.input_dim));
  }
  if (data.rows < 1) return Status::InvalidArgument("no training examples");
  return Status::Ok();
}

}  // namespace

Result<bool> DpSgdTrainer::TryStep(const Examples& data, StepReport* report) {
  if (config_.private_training && config_.caller_charges) {
    return Status::FailedPrecondition("this trainer's steps are charged by its caller");
  }
  DPNODE_RETURN_IF_ERROR(CheckExamples(data, network_.spec()));
  if (config_.private_training) {
    Result<bool> charged = Charge();
    if (!charged.ok()) return charged.status();
    if (!*charged) return false;
    --reserved_;  // from here on the step counts as run whatever happens
  }
  DPNODE_RETURN_IF_ERROR(StepPaid(data, report));
  return true;
}

Status DpSgdTrainer::RunChargedStep(const Examples& data, StepReport* report) {
  if (!config_.private_training || !config_.caller_charges) {
    return Status::FailedPrecondition("RunChargedStep needs a private trainer with caller_charges");
  }
  DPNODE_RETURN_IF_ERROR(CheckExamples(data, network_.spec()));
  return StepPaid(data, report);
}

Status DpSgdTrainer::StepPaid(const Examples& data, StepReport* report) {
  ++steps_run_;

  const std::vector<int64_t> batch = PoissonSample(data.rows, config_.sample_rate, sampling_);
  const int64_t n = static_cast<int64_t>(batch.size());
  const size_t dim = static_cast<size_t>(data.dim);
  batch_features_.resize(static_cast<size_t>(n) * dim);
  batch_labels_.resize(static_cast<size_t>(n));
  for (size_t i = 0; i < batch.size(); ++i) {
    std::memcpy(batch_features_.data() + i * dim,
                data.features + static_cast<size_t>(batch[i]) * dim, dim * sizeof(float));
    batch_labels_[i] = data.labels[batch[i]];
  }
  GradientOptions options;
  options.mode = config_.private_training ? config_.clip_mode : ClipMode::kNone;
  options.clip_norm = config_.clip_norm;
  options.training = true;
  options.dropout_seed = config_.dropout_seed + static_cast<uint64_t>(steps_run_);
  GradientStats stats;
  DPNODE_RETURN_IF_ERROR(network_.ClippedGradientSum(batch_features_.data(), batch_labels_.data(),
                                                     n, options, gradient_, &stats));
  if (config_.private_training) {
    noise_.AddGaussian(gradient_.data(), static_cast<int64_t>(gradient_.size()),
                       config_.noise_multiplier * config_.clip_norm);
  }
  const float inv_expected =
      static_cast<float>(1.0 / (config_.sample_rate * static_cast<double>(data.rows)));
  for (float& g : gradient_) g *= inv_expected;
  optimizer_.Step(network_.mutable_parameters(), gradient_);
  if (report) {
    report->batch_size = n;
    report->gradient = stats;
  }
  return Status::Ok();
}

Result<TrainReport> DpSgdTrainer::Run(const Examples& data) {
  TrainReport report;
  report.steps_planned = config_.max_steps;
  report.noise = config_.private_training ? NoiseDescription(noise_) : "none";
  while (steps_run_ < config_.max_steps) {
    StepReport step;
    Result<bool> ran = TryStep(data, &step);
    if (!ran.ok()) return ran.status();
    if (!*ran) {
      report.stop = StopReason::kBudgetExhausted;
      report.stop_message = exhausted_message_;
      break;
    }
    ++report.steps_run;
    report.examples += step.batch_size;
    report.clipped += step.gradient.clipped;
    report.loss_sum += step.gradient.loss_sum;
  }
  if (ledger_) {
    report.ledger_steps = ledger_->total_steps();
    Result<double> eps = ledger_->EpsilonSpent();
    if (!eps.ok()) return eps.status();
    report.epsilon_spent = *eps;
  }
  return report;
}

Result<Metrics> Evaluate(Network& network, const Examples& data) {
  if (data.dim != network.spec().input_dim) {
    return Status::InvalidArgument("examples do not match the model's input size");
  }
  std::vector<float> probabilities;
  DPNODE_RETURN_IF_ERROR(network.Predict(data.features, data.rows, probabilities));
  return ComputeMetrics(probabilities, std::vector<int32_t>(data.labels, data.labels + data.rows),
                        network.spec().num_classes);
}

}  // namespace dpnode::learn
