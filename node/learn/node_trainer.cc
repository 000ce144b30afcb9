// LearnerTrainer: DpSgdTrainer and Network behind node::Trainer.
#include "node/learn/node_trainer.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "node/learn/noise.h"

namespace dpnode::learn {
namespace {

Status CheckTable(const ExampleTable& t, const ModelSpec& spec, const char* what) {
  if (t.rows == 0) return Status::Ok();
  if (t.dim != spec.input_dim) {
    return Status::InvalidArgument(std::string(what) + " rows have " + std::to_string(t.dim) +
                                   " features, the model expects " +
                                   std::to_string(spec.input_dim));
  }
  if (t.features.size() != static_cast<size_t>(t.rows * t.dim) ||
      t.labels.size() != static_cast<size_t>(t.rows)) {
    return Status::InvalidArgument(std::string(what) + " table sizes are inconsistent");
  }
  for (int32_t y : t.labels) {
    if (y < 0 || y >= spec.num_classes) {
      return Status::InvalidArgument(std::string(what) + " label " + std::to_string(y) +
                                     " outside [0, " + std::to_string(spec.num_classes) + ")");
    }
  }
  return Status::Ok();
}

}  // namespace

LearnerTrainer::LearnerTrainer(ExampleTable train, ExampleTable test, const LearnerOptions& options)
    : options_(options), train_(std::move(train)), test_(std::move(test)) {}

LearnerTrainer::~LearnerTrainer() = default;

Result<std::unique_ptr<LearnerTrainer>> LearnerTrainer::Create(ExampleTable train,
                                                               ExampleTable test,
                                                               const LearnerOptions& options) {
  DPNODE_RETURN_IF_ERROR(ValidateModelSpec(options.spec));
  if (train.rows < 1) return Status::InvalidArgument("no training rows");
  DPNODE_RETURN_IF_ERROR(CheckTable(train, options.spec, "training"));
  DPNODE_RETURN_IF_ERROR(CheckTable(test, options.spec, "test"));

  std::unique_ptr<LearnerTrainer> t(new LearnerTrainer(std::move(train), std::move(test), options));
  t->options_.dpsgd.caller_charges = t->options_.dpsgd.private_training;
  t->options_.dpsgd.max_steps = 0;
  t->fingerprint_ = ComputeModelFingerprint(options.schema_fingerprint, options.spec);

  std::vector<float> initial = options.initial_parameters.empty()
                                   ? InitialParameters(options.spec, options.init_seed)
                                   : options.initial_parameters;
  DPNODE_RETURN_IF_ERROR(t->CheckParameters(initial));
  Result<std::unique_ptr<Network>> net = Network::Create(options.spec, std::move(initial));
  if (!net.ok()) return net.status();
  t->network_ = std::move(net).value();
  Result<std::unique_ptr<DpSgdTrainer>> d =
      DpSgdTrainer::Create(*t->network_, options.optimizer, t->options_.dpsgd, nullptr);
  if (!d.ok()) return d.status();
  t->dpsgd_ = std::move(d).value();
  t->options_.initial_parameters.clear();  // not needed any more
  return t;
}

Result<std::unique_ptr<LearnerTrainer>> LearnerTrainer::FromDataset(const Dataset& data,
                                                                    const LearnerOptions& options) {
  ExampleTable train;
  ExampleTable test;
  DPNODE_RETURN_IF_ERROR(AppendRows(data, data.train_rows, train));
  DPNODE_RETURN_IF_ERROR(AppendRows(data, data.test_rows, test));
  return Create(std::move(train), std::move(test), options);
}

gossip::Layout LearnerTrainer::ParameterLayout() const {
  gossip::Layout layout;
  for (const ParameterInfo& p : learn::ParameterLayout(options_.spec)) {
    gossip::TensorSpec t;
    t.name = p.name;
    for (int64_t d : p.shape) t.shape.push_back(static_cast<uint64_t>(d));
    layout.push_back(std::move(t));
  }
  return layout;
}

std::vector<float> LearnerTrainer::Parameters() const { return network_->parameters(); }

Status LearnerTrainer::CheckParameters(const std::vector<float>& params) const {
  const int64_t want = ParameterCount(options_.spec);
  if (static_cast<int64_t>(params.size()) != want) {
    return Status::InvalidArgument("parameter vector has " + std::to_string(params.size()) +
                                   " values, the model has " + std::to_string(want));
  }
  for (size_t i = 0; i < params.size(); ++i) {
    if (!std::isfinite(params[i])) {
      return Status::InvalidArgument("parameter " + std::to_string(i) + " is not finite");
    }
  }
  return Status::Ok();
}

Status LearnerTrainer::SetParameters(const std::vector<float>& params) {
  DPNODE_RETURN_IF_ERROR(CheckParameters(params));
  std::vector<float>& p = network_->mutable_parameters();
  std::copy(params.begin(), params.end(), p.begin());
  return Status::Ok();
}

privacy::StepBlock LearnerTrainer::StepCost() const {
  return {options_.dpsgd.sample_rate,
          options_.dpsgd.private_training ? options_.dpsgd.noise_multiplier : 0.0, 1};
}

Status LearnerTrainer::Step() {
  StepReport report;
  if (options_.dpsgd.private_training) {
    DPNODE_RETURN_IF_ERROR(dpsgd_->RunChargedStep(train_.view(), &report));
  } else {
    Result<bool> ran = dpsgd_->TryStep(train_.view(), &report);
    if (!ran.ok()) return ran.status();
    if (!*ran) return Status::Internal("non-private step did not run");
  }
  last_step_ = report;
  ++steps_;
  return Status::Ok();
}

Result<double> LearnerTrainer::LossOn(const Examples& data) {
  if (data.dim != options_.spec.input_dim) {
    return Status::InvalidArgument("examples do not match the model's input size");
  }
  if (data.rows < 1) return Status::InvalidArgument("no rows to evaluate");
  std::vector<float> probabilities;
  DPNODE_RETURN_IF_ERROR(network_->Predict(data.features, data.rows, probabilities));
  const int64_t k = options_.spec.num_classes;
  double sum = 0;
  for (int64_t i = 0; i < data.rows; ++i) {
    const int32_t y = data.labels[i];
    if (y < 0 || y >= k) return Status::InvalidArgument("label out of range");
    // Clamp so one confident mistake gives a large, finite loss.
    const double p =
        std::max(static_cast<double>(probabilities[static_cast<size_t>(i * k + y)]), 1e-12);
    sum -= std::log(p);
  }
  return sum / static_cast<double>(data.rows);
}

Result<double> LearnerTrainer::Evaluate() {
  if (test_.rows < 1) return Status::FailedPrecondition("this site has no test rows");
  return LossOn(test_.view());
}

Result<Metrics> LearnerTrainer::MetricsOn(const Examples& data) {
  return learn::Evaluate(*network_, data);
}

Result<Metrics> LearnerTrainer::TestMetrics() {
  if (test_.rows < 1) return Status::FailedPrecondition("this site has no test rows");
  return MetricsOn(test_.view());
}

Checkpoint LearnerTrainer::MakeCheckpoint(std::map<std::string, double> extras) const {
  Checkpoint c;
  c.fingerprint = fingerprint_;
  c.steps = steps_;
  c.parameters = network_->parameters();
  c.optimizer = dpsgd_->optimizer().state();
  c.extras = std::move(extras);
  return c;
}

Status LearnerTrainer::RestoreCheckpoint(const Checkpoint& checkpoint) {
  if (checkpoint.fingerprint != fingerprint_) {
    return Status::FailedPrecondition("checkpoint is for model " +
                                      ModelFingerprintHex(checkpoint.fingerprint) + ", not " +
                                      ModelFingerprintHex(fingerprint_));
  }
  if (checkpoint.steps < 0) return Status::InvalidArgument("negative step count");
  DPNODE_RETURN_IF_ERROR(CheckParameters(checkpoint.parameters));
  DPNODE_RETURN_IF_ERROR(dpsgd_->mutable_optimizer().RestoreState(checkpoint.optimizer));
  network_->mutable_parameters() = checkpoint.parameters;
  steps_ = checkpoint.steps;
  return Status::Ok();
}

std::string LearnerTrainer::noise_description() const {
  if (!options_.dpsgd.private_training) return "none";
  return NoiseDescription(dpsgd_->noise_stream());
}

}  // namespace dpnode::learn
