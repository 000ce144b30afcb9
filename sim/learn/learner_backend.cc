// LearnerTrainer behind the simulator's ModelBackend (learner_backend.h).
#include "sim/learn/learner_backend.h"

#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <tuple>
#include <vector>

#include "node/learn/examples.h"
#include "node/learn/node_trainer.h"

namespace dpnode::sim {
namespace {

learn::LearnerOptions Options(const ExperimentSpec& spec, const learn::Dataset& data, int num_classes,
                              const TrainPlan& plan, uint64_t seed) {
  learn::LearnerOptions o;
  o.spec.kind = spec.model == "mlp" ? learn::ModelKind::kMlp : learn::ModelKind::kLogistic;
  o.spec.input_dim = data.dim;
  o.spec.num_classes = num_classes;
  o.spec.hidden = spec.hidden;
  o.optimizer.kind = learn::OptimizerKind::kSgd;
  o.optimizer.learning_rate = plan.learning_rate;
  o.dpsgd.private_training = plan.is_private;
  o.dpsgd.sample_rate = plan.sample_rate;
  o.dpsgd.noise_multiplier = plan.is_private ? plan.noise_multiplier : 0;
  o.dpsgd.clip_norm = plan.clip;
  o.dpsgd.noise_seed = seed;  // simulation: reproducible, NOT private
  o.dpsgd.dropout_seed = seed ^ 0x5bd1e995u;
  // Every site starts from the same parameters (as the built-in trainer's
  // zeros): a function of the experiment seed only.
  o.init_seed = spec.seed;
  return o;
}

struct EvalState {
  std::unique_ptr<learn::LearnerTrainer> scratch;
  // Test tables by data set and row list (the pooled test set, each site's
  // own test rows).
  using Key = std::tuple<const learn::Dataset*, int64_t, std::vector<int64_t>>;
  std::map<Key, learn::ExampleTable> tables;
};

}  // namespace

ModelBackend LearnerBackend() {
  ModelBackend b;
  b.make_trainer = [](const ExperimentSpec& spec, const learn::Dataset& data,
                      const std::vector<int64_t>& rows, int num_classes, const TrainPlan& plan,
                      uint64_t seed) -> Result<std::unique_ptr<node::Trainer>> {
    learn::ExampleTable train;
    DPNODE_RETURN_IF_ERROR(learn::AppendRows(data, rows, train));
    Result<std::unique_ptr<learn::LearnerTrainer>> t = learn::LearnerTrainer::Create(
        std::move(train), learn::ExampleTable{}, Options(spec, data, num_classes, plan, seed));
    if (!t.ok()) return t.status().WithContext("experiment key 'model'");
    return std::unique_ptr<node::Trainer>(std::move(*t));
  };
  // The trainers passed in are the ones make_trainer built above.
  b.make_checkpoint = [](const node::Trainer& t) -> Result<learn::Checkpoint> {
    const auto* learner = dynamic_cast<const learn::LearnerTrainer*>(&t);
    if (!learner) return Status::InvalidArgument("not a trainer of the LibTorch backend");
    return learner->MakeCheckpoint();
  };
  b.restore_checkpoint = [](node::Trainer& t, const learn::Checkpoint& c) -> Status {
    auto* learner = dynamic_cast<learn::LearnerTrainer*>(&t);
    if (!learner) return Status::InvalidArgument("not a trainer of the LibTorch backend");
    return learner->RestoreCheckpoint(c);
  };
  auto state = std::make_shared<EvalState>();
  b.evaluate = [state](const ExperimentSpec& spec, const learn::Dataset& data,
                       const std::vector<int64_t>& rows, int num_classes,
                       const std::vector<float>& params) -> Result<EvalResult> {
    EvalState::Key key{&data, data.rows, rows};
    auto table = state->tables.find(key);
    if (table == state->tables.end()) {
      learn::ExampleTable t;
      DPNODE_RETURN_IF_ERROR(learn::AppendRows(data, rows, t));
      table = state->tables.emplace(std::move(key), std::move(t)).first;
    }
    if (!state->scratch) {
      TrainPlan plan;
      plan.is_private = false;
      // Never steps: any rows do as its training set.
      Result<std::unique_ptr<learn::LearnerTrainer>> t = learn::LearnerTrainer::Create(
          table->second, learn::ExampleTable{}, Options(spec, data, num_classes, plan, 0));
      if (!t.ok()) return t.status();
      state->scratch = std::move(*t);
    }
    DPNODE_RETURN_IF_ERROR(state->scratch->SetParameters(params));
    const learn::Examples view = table->second.view();
    Result<learn::Metrics> m = state->scratch->MetricsOn(view);
    if (!m.ok()) return m.status();
    Result<double> loss = state->scratch->LossOn(view);
    if (!loss.ok()) return loss.status();
    EvalResult e;
    e.accuracy = m->accuracy;
    e.auroc = num_classes == 2 ? m->auroc : std::numeric_limits<double>::quiet_NaN();
    e.loss = *loss;
    return e;
  };
  return b;
}

}  // namespace dpnode::sim
