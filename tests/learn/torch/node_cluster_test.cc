// Four gossip Nodes, one per heart-disease site, each training a
// LearnerTrainer on its own rows with real ledgers, in the loopback world of
// tests/node/: every site stays within its budget, the sites end with the
// same model, and that model beats the sites' local-only models on the
// pooled test rows.
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "node/learn/data/dataset.h"
#include "node/learn/data/schema.h"
#include "node/learn/node_trainer.h"
#include "node/privacy/calibrate.h"
#include "tests/node/cluster.h"
#include "tests/node/loopback.h"

namespace dpnode::learn {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr double kEpsilon = 3.0;
constexpr double kDelta = 1e-5;
constexpr double kSigma = 2.0;
constexpr double kBatch = 16;

struct Site {
  ExampleTable train;
  ExampleTable test;
};

LearnerOptions SiteOptions(const SchemaFingerprint& schema, int64_t dim, int64_t rows,
                           uint64_t seed) {
  LearnerOptions o;
  o.spec.input_dim = dim;
  o.spec.num_classes = 2;
  o.schema_fingerprint = schema;
  o.optimizer.learning_rate = 0.5;
  o.optimizer.momentum = 0.5;
  o.dpsgd.sample_rate = kBatch / static_cast<double>(rows);
  o.dpsgd.noise_multiplier = kSigma;
  o.dpsgd.clip_norm = 1.0;
  o.dpsgd.noise_seed = seed;  // reproducible test; NOT private
  o.init_seed = 5;            // every site starts from the same model
  return o;
}

// DPNODE_TEST_SEED (cluster.h) varies the DP noise as well as the world.
uint64_t NoiseSeed(int site) {
  return 100 + 16 * testing::SeedOffset() + static_cast<uint64_t>(site);
}

TEST_CASE("four heart sites train one model by gossip within their budgets") {
  const fs::path root = fs::path(DPNODE_SOURCE_DIR) / "examples" / "heart";
  Result<Schema> schema = LoadSchemaFile((root / "schema.toml").string());
  REQUIRE(schema.ok());
  const SchemaFingerprint schema_fp = Fingerprint(*schema);
  std::vector<Site> sites;
  ExampleTable pooled_test;
  for (const char* name : {"cleveland", "hungarian", "switzerland", "va"}) {
    Result<Dataset> d =
        LoadDataset(*schema, (root / "data" / (std::string(name) + ".csv")).string());
    REQUIRE_MESSAGE(d.ok(), d.status().ToString());
    Site s;
    REQUIRE(AppendRows(*d, d->train_rows, s.train).ok());
    REQUIRE(AppendRows(*d, d->test_rows, s.test).ok());
    REQUIRE(AppendRows(*d, d->test_rows, pooled_test).ok());
    sites.push_back(std::move(s));
  }
  const int n = static_cast<int>(sites.size());

  // Declared before the cluster so that the Nodes go first (a Node's
  // trainer must outlive it).
  std::vector<std::unique_ptr<LearnerTrainer>> trainers;
  testing::Cluster c(n, 41);
  c.TinyLedgers(kEpsilon);
  std::vector<int64_t> fit;
  for (int i = 0; i < n; ++i) {
    const LearnerOptions o =
        SiteOptions(schema_fp, sites[i].train.dim, sites[i].train.rows, NoiseSeed(i));
    Result<std::unique_ptr<LearnerTrainer>> t =
        LearnerTrainer::Create(sites[i].train, sites[i].test, o);
    REQUIRE_MESSAGE(t.ok(), t.status().ToString());
    trainers.push_back(std::move(t).value());
    Result<privacy::StepsCalibration> steps = privacy::LargestSteps(
        privacy::AccountantKind::kRdp, kEpsilon, kDelta, o.dpsgd.sample_rate, kSigma);
    REQUIRE_MESSAGE(steps.ok(), steps.status().ToString());
    fit.push_back(steps->steps);
    MESSAGE("site " << i << ": q " << o.dpsgd.sample_rate << ", " << steps->steps << " steps fit");
    REQUIRE(steps->steps < 3000);  // keeps the test fast
    const ModelFingerprint& fp = trainers.back()->model_fingerprint();
    node::NodeOptions& opt = c.options[i];
    opt.model_fingerprint = protocol::Bytes(fp.begin(), fp.end());
    opt.policy = gossip::PolicyKind::kPushSum;
    opt.reserve_block_steps = 16;
    opt.step_interval = 20ms;
    opt.settle_tolerance = 1e-4;
  }
  for (int i = 0; i < n; ++i) {
    c.nodes.push_back(std::make_unique<node::Node>(c.world.env(c.sites[i]), c.ids[i], c.peers,
                                                   c.ledgers[i].get(), *trainers[i], c.options[i]));
  }
  c.Start();
  c.Wire(testing::CompleteEdges(n));
  const bool done = c.world.RunUntil(
      [&] {
        for (auto& node : c.nodes) {
          if (!node->done()) return false;
        }
        return true;
      },
      3600s);
  REQUIRE(done);

  // Budgets: each site ran exactly what its ledger paid for, no more.
  for (int i = 0; i < n; ++i) {
    CAPTURE(i);
    const node::Node& node = *c.nodes[i];
    CHECK(node.training_stop_reason().code() == StatusCode::kBudgetExhausted);
    CHECK(node.metrics().steps == trainers[i]->steps());
    CHECK(node.metrics().steps <= c.ledgers[i]->total_steps());
    CHECK(c.ledgers[i]->total_steps() == fit[i]);
    Result<double> eps = c.ledgers[i]->EpsilonSpent();
    REQUIRE(eps.ok());
    CHECK(*eps <= kEpsilon);
  }

  // Agreement: every site's estimate is close to site 0's.
  const std::vector<double> ref = c.nodes[0]->Estimate();
  double worst = 0;
  for (int i = 1; i < n; ++i) {
    const std::vector<double> x = c.nodes[i]->Estimate();
    REQUIRE(x.size() == ref.size());
    for (size_t k = 0; k < x.size(); ++k) {
      worst = std::max(worst, std::abs(x[k] - ref[k]) / (1 + std::abs(ref[k])));
    }
  }
  CHECK(worst < 1e-2);

  // The gossip model on the pooled test rows.
  std::vector<float> consensus(ref.begin(), ref.end());
  REQUIRE(trainers[0]->SetParameters(consensus).ok());
  Result<Metrics> gossip_metrics = trainers[0]->MetricsOn(pooled_test.view());
  REQUIRE(gossip_metrics.ok());

  // Local-only baselines: the same DP-SGD, the same number of steps, alone.
  double local_sum = 0;
  for (int i = 0; i < n; ++i) {
    const LearnerOptions o =
        SiteOptions(schema_fp, sites[i].train.dim, sites[i].train.rows, NoiseSeed(i));
    Result<std::unique_ptr<LearnerTrainer>> t =
        LearnerTrainer::Create(sites[i].train, sites[i].test, o);
    REQUIRE(t.ok());
    for (int64_t s = 0; s < fit[i]; ++s) REQUIRE((*t)->Step().ok());
    Result<Metrics> m = (*t)->MetricsOn(pooled_test.view());
    REQUIRE(m.ok());
    MESSAGE("local-only site " << i << ": " << fit[i] << " steps, pooled accuracy " << m->accuracy);
    local_sum += m->accuracy;
  }
  const double local_mean = local_sum / n;
  MESSAGE("gossip (push-sum, eps "
          << kEpsilon << ", seeded noise): pooled accuracy " << gossip_metrics->accuracy
          << ", AUROC " << gossip_metrics->auroc << "; local-only mean accuracy " << local_mean
          << "; max relative disagreement " << worst << "; virtual time "
          << std::chrono::duration<double>(c.world.now().time_since_epoch()).count() << " s");
  CHECK(gossip_metrics->accuracy > local_mean);
  for (auto& node : c.nodes) node->Stop();
}

}  // namespace
}  // namespace dpnode::learn
