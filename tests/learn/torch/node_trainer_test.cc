// LearnerTrainer, driven through the Node's Trainer interface by hand
// (SetParameters -> Step -> Parameters, as node.cc does): it learns the
// pooled heart data, seeded DP runs repeat exactly, bad parameters are
// refused, and a checkpoint resumes the optimiser exactly.
#include "node/learn/node_trainer.h"

#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "node/learn/checkpoint.h"
#include "node/learn/data/dataset.h"
#include "node/learn/data/schema.h"
#include "node/privacy/ledger.h"

namespace dpnode::learn {
namespace {

namespace fs = std::filesystem;

struct Heart {
  SchemaFingerprint schema{};
  ExampleTable train;
  ExampleTable test;
};

Heart LoadPooledHeart() {
  const fs::path root = fs::path(DPNODE_SOURCE_DIR) / "examples" / "heart";
  Result<Schema> schema = LoadSchemaFile((root / "schema.toml").string());
  REQUIRE_MESSAGE(schema.ok(), schema.status().ToString());
  Heart h;
  h.schema = Fingerprint(*schema);
  for (const char* site : {"cleveland", "hungarian", "switzerland", "va"}) {
    Result<Dataset> d =
        LoadDataset(*schema, (root / "data" / (std::string(site) + ".csv")).string());
    REQUIRE_MESSAGE(d.ok(), d.status().ToString());
    REQUIRE(AppendRows(*d, d->train_rows, h.train).ok());
    REQUIRE(AppendRows(*d, d->test_rows, h.test).ok());
  }
  return h;
}

LearnerOptions Options(const Heart& h, bool private_training, uint64_t seed) {
  LearnerOptions o;
  o.spec.input_dim = h.train.dim;
  o.spec.num_classes = 2;
  o.schema_fingerprint = h.schema;
  o.optimizer.kind = OptimizerKind::kSgd;
  o.optimizer.learning_rate = 0.5;
  o.optimizer.momentum = 0.5;
  o.dpsgd.private_training = private_training;
  o.dpsgd.sample_rate = 32.0 / static_cast<double>(h.train.rows);
  o.dpsgd.noise_multiplier = private_training ? 1.0 : 0;
  o.dpsgd.clip_norm = 1.0;
  o.dpsgd.noise_seed = seed;
  o.init_seed = 7;
  return o;
}

std::unique_ptr<LearnerTrainer> Make(const Heart& h, const LearnerOptions& o) {
  Result<std::unique_ptr<LearnerTrainer>> t = LearnerTrainer::Create(h.train, h.test, o);
  REQUIRE_MESSAGE(t.ok(), t.status().ToString());
  return std::move(t).value();
}

// What node.cc does per step, minus the ledger: hand the current estimate
// in, step, read the result back.
void DriveSteps(node::Trainer& t, int steps) {
  for (int i = 0; i < steps; ++i) {
    const std::vector<float> estimate = t.Parameters();
    REQUIRE(t.SetParameters(estimate).ok());
    Status s = t.Step();
    REQUIRE_MESSAGE(s.ok(), s.ToString());
  }
}

TEST_CASE("the adapter learns the pooled heart data through the Trainer interface") {
  const Heart h = LoadPooledHeart();
  std::unique_ptr<LearnerTrainer> t = Make(h, Options(h, /*private_training=*/false, 1));
  CHECK(t->noise_description() == "none");
  const gossip::Layout layout = t->ParameterLayout();
  REQUIRE(layout.size() == 2);
  CHECK(layout[0].name == "layer0.weight");
  CHECK(layout[0].shape == std::vector<uint64_t>{2, static_cast<uint64_t>(h.train.dim)});
  CHECK(layout[1].name == "layer0.bias");
  CHECK(gossip::LayoutSize(layout) == t->Parameters().size());

  Result<double> before = t->Evaluate();
  REQUIRE(before.ok());
  DriveSteps(*t, 300);
  CHECK(t->steps() == 300);
  Result<double> after = t->Evaluate();
  REQUIRE(after.ok());
  Result<Metrics> m = t->TestMetrics();
  REQUIRE(m.ok());
  MESSAGE("pooled heart via LearnerTrainer, non-private, 300 steps: test loss "
          << *before << " -> " << *after << ", accuracy " << m->accuracy << ", AUROC " << m->auroc);
  CHECK(*after < *before);
  CHECK(m->rows == h.test.rows);
  CHECK(m->accuracy >= 0.75);
  // The caller-given-rows path scores the same rows the same way.
  Result<Metrics> again = t->MetricsOn(h.test.view());
  REQUIRE(again.ok());
  CHECK(again->accuracy == m->accuracy);
  CHECK(again->brier == m->brier);
}

TEST_CASE("seeded DP-SGD through the adapter is deterministic and costs {q, sigma}") {
  const Heart h = LoadPooledHeart();
  const LearnerOptions o = Options(h, /*private_training=*/true, 11);
  std::unique_ptr<LearnerTrainer> a = Make(h, o);
  std::unique_ptr<LearnerTrainer> b = Make(h, o);
  std::unique_ptr<LearnerTrainer> c = Make(h, Options(h, true, 12));
  const privacy::StepBlock cost = a->StepCost();
  CHECK(cost.sample_rate == o.dpsgd.sample_rate);
  CHECK(cost.noise_multiplier == o.dpsgd.noise_multiplier);
  CHECK(a->noise_description() == "seeded (NOT private)");
  REQUIRE(a->Parameters() == b->Parameters());
  DriveSteps(*a, 40);
  DriveSteps(*b, 40);
  DriveSteps(*c, 40);
  CHECK(a->Parameters() == b->Parameters());
  CHECK(a->Parameters() != c->Parameters());  // the seed matters: noise is really added
  Result<double> la = a->Evaluate();
  Result<double> lb = b->Evaluate();
  REQUIRE(la.ok());
  REQUIRE(lb.ok());
  CHECK(*la == *lb);
}

TEST_CASE("SetParameters refuses the wrong length and non-finite values") {
  const Heart h = LoadPooledHeart();
  std::unique_ptr<LearnerTrainer> t = Make(h, Options(h, true, 1));
  const std::vector<float> original = t->Parameters();
  std::vector<float> shorter(original.begin(), original.end() - 1);
  CHECK(t->SetParameters(shorter).code() == StatusCode::kInvalidArgument);
  std::vector<float> longer = original;
  longer.push_back(0);
  CHECK(t->SetParameters(longer).code() == StatusCode::kInvalidArgument);
  std::vector<float> nan = original;
  nan[3] = std::numeric_limits<float>::quiet_NaN();
  CHECK(t->SetParameters(nan).code() == StatusCode::kInvalidArgument);
  std::vector<float> inf = original;
  inf.back() = -std::numeric_limits<float>::infinity();
  CHECK(t->SetParameters(inf).code() == StatusCode::kInvalidArgument);
  CHECK(t->Parameters() == original);
  std::vector<float> shifted = original;
  for (float& v : shifted) v += 0.25f;
  REQUIRE(t->SetParameters(shifted).ok());
  CHECK(t->Parameters() == shifted);
}

TEST_CASE("Create refuses unusable settings and data") {
  const Heart h = LoadPooledHeart();
  LearnerOptions o = Options(h, true, 1);
  o.spec.input_dim = h.train.dim + 1;
  CHECK(!LearnerTrainer::Create(h.train, h.test, o).ok());
  o = Options(h, true, 1);
  o.dpsgd.noise_multiplier = 0;
  CHECK(!LearnerTrainer::Create(h.train, h.test, o).ok());
  o = Options(h, true, 1);
  o.initial_parameters = {1.0f, 2.0f};
  CHECK(LearnerTrainer::Create(h.train, h.test, o).status().code() == StatusCode::kInvalidArgument);
  CHECK(LearnerTrainer::Create(ExampleTable{}, h.test, Options(h, true, 1)).status().code() ==
        StatusCode::kInvalidArgument);
  ExampleTable bad_labels = h.train;
  bad_labels.labels[0] = 5;
  CHECK(LearnerTrainer::Create(bad_labels, h.test, Options(h, true, 1)).status().code() ==
        StatusCode::kInvalidArgument);
  // No test rows: training works, evaluation says why it cannot.
  Result<std::unique_ptr<LearnerTrainer>> no_test =
      LearnerTrainer::Create(h.train, ExampleTable{}, Options(h, true, 1));
  REQUIRE(no_test.ok());
  CHECK((*no_test)->Evaluate().status().code() == StatusCode::kFailedPrecondition);
  CHECK((*no_test)->Step().ok());
}

TEST_CASE("a checkpoint resumes parameters and optimiser state exactly") {
  const Heart h = LoadPooledHeart();
  // q = 1 and no dropout make a non-private step a pure function of the
  // parameters and the optimiser state, whatever the sampling stream holds.
  LearnerOptions o = Options(h, /*private_training=*/false, 1);
  o.dpsgd.sample_rate = 1.0;
  o.optimizer.learning_rate = 0.2;
  o.optimizer.momentum = 0.9;
  std::unique_ptr<LearnerTrainer> a = Make(h, o);
  DriveSteps(*a, 10);
  const fs::path dir = fs::path(DPNODE_BINARY_DIR) / "learn_torch_tmp" / "node_trainer_ckpt";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string path = (dir / "site.ckpt").string();
  REQUIRE(
      WriteCheckpoint(path, a->MakeCheckpoint({{"push_sum_weight", 0.375}, {"round", 12}})).ok());
  DriveSteps(*a, 5);

  Result<Checkpoint> c = ReadCheckpoint(path, a->model_fingerprint());
  REQUIRE_MESSAGE(c.ok(), c.status().ToString());
  CHECK(c->steps == 10);
  CHECK(c->extras.at("push_sum_weight") == 0.375);
  CHECK(c->extras.at("round") == 12);
  std::unique_ptr<LearnerTrainer> b = Make(h, o);
  REQUIRE(b->RestoreCheckpoint(*c).ok());
  CHECK(b->steps() == 10);
  DriveSteps(*b, 5);
  CHECK(b->Parameters() == a->Parameters());

  // Parameters alone (momentum lost) give a different continuation, so the
  // optimiser state really is what the checkpoint carried.
  std::unique_ptr<LearnerTrainer> d = Make(h, o);
  REQUIRE(d->SetParameters(c->parameters).ok());
  DriveSteps(*d, 5);
  CHECK(d->Parameters() != a->Parameters());

  // A state that does not fit (Adam moments for an SGD trainer, a NaN
  // parameter) is refused and changes nothing.
  const std::vector<float> before_bad = b->Parameters();
  const int64_t steps_before_bad = b->steps();
  Checkpoint adam = *c;
  adam.optimizer.v = adam.optimizer.m;
  CHECK(b->RestoreCheckpoint(adam).code() == StatusCode::kInvalidArgument);
  Checkpoint nan = *c;
  nan.parameters[0] = std::numeric_limits<float>::quiet_NaN();
  CHECK(b->RestoreCheckpoint(nan).code() == StatusCode::kInvalidArgument);
  CHECK(b->Parameters() == before_bad);
  CHECK(b->steps() == steps_before_bad);

  // Another architecture's trainer refuses it.
  LearnerOptions mlp = o;
  mlp.spec.kind = ModelKind::kMlp;
  mlp.spec.hidden = {4};
  std::unique_ptr<LearnerTrainer> e = Make(h, mlp);
  CHECK(e->RestoreCheckpoint(*c).code() == StatusCode::kFailedPrecondition);
  CHECK(ReadCheckpoint(path, e->model_fingerprint()).status().code() ==
        StatusCode::kFailedPrecondition);
}

TEST_CASE("a restart resumes from the checkpoint, the ledger keeps every charged step") {
  const Heart h = LoadPooledHeart();
  LearnerOptions o = Options(h, /*private_training=*/true, 21);
  o.dpsgd.noise_multiplier = 2.0;  // ε = 3 pays for far more than 21 steps
  const fs::path dir = fs::path(DPNODE_BINARY_DIR) / "learn_torch_tmp" / "node_trainer_restart";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string ckpt = (dir / "node.ckpt").string();
  const privacy::Budget budget{3.0, 1e-5, privacy::AccountantKind::kRdp, "restart-test"};
  double epsilon_before_crash = 0;
  ModelFingerprint fingerprint{};
  std::vector<float> checkpointed;
  {
    Result<std::unique_ptr<privacy::Ledger>> ledger = privacy::Ledger::Create(dir.string(), budget);
    REQUIRE_MESSAGE(ledger.ok(), ledger.status().ToString());
    std::unique_ptr<LearnerTrainer> t = Make(h, o);
    fingerprint = t->model_fingerprint();
    // As the Node does: charge first, then step; checkpoint now and then.
    for (int i = 1; i <= 20; ++i) {
      privacy::StepBlock cost = t->StepCost();
      Result<privacy::ChargeReceipt> charged = (*ledger)->Reserve(cost);
      REQUIRE_MESSAGE(charged.ok(), charged.status().ToString());
      REQUIRE(t->Step().ok());
      if (i == 12) {
        checkpointed = t->Parameters();
        REQUIRE(WriteCheckpoint(ckpt, t->MakeCheckpoint({{"round", 40}})).ok());
      }
    }
    Result<double> eps = (*ledger)->EpsilonSpent();
    REQUIRE(eps.ok());
    epsilon_before_crash = *eps;
    // Scope exit plays kill -9: steps 13..20 were charged, never checkpointed.
  }
  Result<std::unique_ptr<privacy::Ledger>> ledger = privacy::Ledger::Open(dir.string());
  REQUIRE(ledger.ok());
  CHECK((*ledger)->total_steps() == 20);
  Result<double> eps = (*ledger)->EpsilonSpent();
  REQUIRE(eps.ok());
  CHECK(*eps == epsilon_before_crash);  // the lost work is not refunded
  std::unique_ptr<LearnerTrainer> t = Make(h, o);
  REQUIRE(t->model_fingerprint() == fingerprint);
  Result<Checkpoint> c = ReadCheckpoint(ckpt, fingerprint);
  REQUIRE(c.ok());
  REQUIRE(t->RestoreCheckpoint(*c).ok());
  CHECK(t->steps() == 12);
  CHECK(t->steps() < (*ledger)->total_steps());
  CHECK(t->Parameters() == checkpointed);
  CHECK(c->extras.at("round") == 40);
  // Training goes on, charged on top of what the ledger already holds.
  REQUIRE((*ledger)->Reserve(t->StepCost()).ok());
  REQUIRE(t->Step().ok());
  CHECK(t->steps() == 13);
  CHECK((*ledger)->total_steps() == 21);
}

}  // namespace
}  // namespace dpnode::learn
