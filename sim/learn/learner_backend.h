// The LibTorch learner (learn::LearnerTrainer, node/learn/node_trainer.h) as
// the simulator's ModelBackend, for experiment files with model.kind =
// "mlp" or "torch_logistic". Lives in its own target (dpnode_sim_learn) so
// that dpnode_sim and dpnode_sim_experiment stay torch-free.
//
// Noise: every trainer gets noise_seed = the seed the runner passes (one per
// arm, site and incarnation, so a restarted site does not replay its noise),
// so runs are reproducible and NOT private (as the built-in logistic
// trainer). Checkpoints: LearnerTrainer's own (SGD momentum included).
#ifndef DPNODE_SIM_LEARN_LEARNER_BACKEND_H_
#define DPNODE_SIM_LEARN_LEARNER_BACKEND_H_

#include "sim/experiment/experiment.h"

namespace dpnode::sim {

// A backend whose evaluate() keeps one scratch learner for test metrics and
// the test tables it has been asked about (by data set and row list); the
// backend object may be copied (the copies share them). Single-threaded.
ModelBackend LearnerBackend();

}  // namespace dpnode::sim

#endif  // DPNODE_SIM_LEARN_LEARNER_BACKEND_H_
