// `dpnode run` (and the bare `dpnode --peers peers.txt`): one hospital's
// daemon; also `dpnode check` (the same validation, without joining) and
// `dpnode eval` (a model file scored on pooled test rows).
//
// The daemon reads the site configuration, its identity and the pinned peers,
// builds the AsioEnv (real sockets, secure channel), the LearnerTrainer on the
// site's data and the privacy ledger in the state directory, and runs the
// gossip Node until it has settled (or a signal arrives). Then it checkpoints,
// says goodbye to its peers and exports the model (.npz + .json + .dpm).
//
// Threads: the Node lives on the AsioEnv's loop thread; this file's main
// thread runs its own small io_context for SIGINT/SIGTERM and a periodic tick
// and talks to the Node only through AsioEnv::RunOnLoop. Everything is
// validated before the ledger is created or opened, so a bad configuration
// writes nothing to it. Details and every config key: docs/daemon.md,
// docs/config.md.
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "crypto/identity.h"
#include "crypto/peers.h"
#include "node/asio/asio_env.h"
#include "node/cli/commands.h"
#include "node/cli/daemon.h"
#include "node/cli/logging.h"
#include "node/cli/output.h"
#include "node/cli/site_ledger.h"
#include "node/cli/plan.h"
#include "node/cli/site_config.h"
#include "node/learn/checkpoint.h"
#include "node/learn/data/dataset.h"
#include "node/learn/data/schema.h"
#include "node/learn/dpsgd.h"
#include "node/learn/examples.h"
#include "node/learn/model_file.h"
#include "node/learn/network.h"
#include "node/learn/node_trainer.h"
#include "node/node.h"
#include "node/privacy/ledger.h"

namespace dpnode::cli {
namespace {

namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

constexpr char kCheckpointFile[] = "checkpoint.ckpt";
constexpr char kSequenceFile[] = "record_sequence";
constexpr char kStatusFile[] = "status.json";

struct RunFlags {
  std::string config;
  std::string peers;
};

// record_sequence must grow across restarts so peers replace our old record.
Result<uint64_t> NextRecordSequence(const std::string& state_dir) {
  const std::string path = (fs::path(state_dir) / kSequenceFile).string();
  uint64_t seq = 0;
  std::ifstream in(path);
  if (in) in >> seq;
  ++seq;
  DPNODE_RETURN_IF_ERROR(WriteFileAtomically(path, std::to_string(seq) + "\n"));
  return seq;
}

std::string Megabytes(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f MB", static_cast<double>(bytes) / 1e6);
  return buf;
}

double Finite(double v) { return std::isfinite(v) ? v : -1; }

// What the main thread learns from the loop at each tick.
struct Snapshot {
  node::Phase phase = node::Phase::kTraining;
  node::NodeMetrics metrics;
  std::vector<double> estimate;
  size_t partners = 0;  // greeted, alive peers
  size_t pinned = 0;    // other sites in peers.txt
  size_t records = 0;   // signed peer records held (ours included)
  Status stop_reason;
  bool waiting_for_peers = false;
};

class Daemon {
 public:
  explicit Daemon(RunFlags flags) : flags_(std::move(flags)) {}
  int Run();
  // `dpnode check`: Prepare() plus the checks of Build() that write nothing.
  int Check();

 private:
  Status Prepare();  // everything that can fail before the ledger is touched
  Status Build();    // ledger, trainer, env, node
  Snapshot Take();
  void Tick();
  void Progress(const Snapshot& s);
  nlohmann::json StatusJson(const Snapshot& s) const;
  void RequestCheckpoint();
  Status StartMetricsEndpoint();
  void AcceptMetrics();
  std::string PrometheusText() const;
  Status Finish(const Snapshot& s);

  RunFlags flags_;
  SiteConfig site_;
  DaemonConfig daemon_;
  std::string state_dir_;
  std::string export_path_;
  crypto::PeerList peers_;
  std::optional<crypto::SiteIdentity> identity_;
  crypto::HostPort listen_;
  std::optional<crypto::HostPort> announce_;
  learn::Schema schema_;
  learn::Dataset data_;
  PrivacyPlan plan_;
  learn::LearnerOptions learner_options_;

  std::unique_ptr<privacy::Ledger> ledger_;
  std::unique_ptr<learn::LearnerTrainer> trainer_;
  std::unique_ptr<learn::LearnerTrainer> evaluator_;  // scores the estimate off the loop
  std::unique_ptr<asio::AsioEnv> env_;
  std::unique_ptr<node::Node> node_;
  int64_t restored_steps_ = 0;
  int64_t ledger_steps_at_start_ = 0;
  double epsilon_at_start_ = 0;

  boost::asio::io_context main_io_;
  std::unique_ptr<boost::asio::steady_timer> tick_timer_;
  SteadyClock::time_point started_;
  SteadyClock::time_point last_progress_;
  SteadyClock::time_point last_checkpoint_;
  std::optional<SteadyClock::time_point> done_at_;
  std::optional<SteadyClock::time_point> mixing_since_;
  std::atomic<bool> node_done_{false};
  std::string exit_reason_;
  std::optional<learn::Metrics> last_metrics_;
  Snapshot last_snapshot_;
  std::unique_ptr<boost::asio::ip::tcp::acceptor> metrics_acceptor_;
};

std::string Daemon::PrometheusText() const {
  const Snapshot& s = last_snapshot_;
  std::string out;
  auto metric = [&](const char* name, const char* help, double v) {
    out += fmt::format("# HELP dpnode_{} {}\n# TYPE dpnode_{} gauge\ndpnode_{}{{site=\"{}\"}} {}\n",
                       name, help, name, name, site_.name, v);
  };
  metric("steps_done", "local DP-SGD steps run (all runs)",
         static_cast<double>(restored_steps_ + s.metrics.steps));
  metric("steps_planned", "steps the privacy plan allows", static_cast<double>(plan_.steps));
  metric("epsilon_spent", "privacy budget spent (ledger)",
         std::max(epsilon_at_start_, s.metrics.epsilon_spent));
  metric("epsilon_budget", "privacy budget", site_.privacy.target_epsilon);
  metric("peers_connected", "peers with a live session", static_cast<double>(s.partners));
  metric("peers_pinned", "other sites in peers.txt", static_cast<double>(s.pinned));
  metric("bytes_in", "protocol bytes received this run", static_cast<double>(s.metrics.bytes_received));
  metric("bytes_out", "protocol bytes sent this run", static_cast<double>(s.metrics.bytes_sent));
  metric("shares_accepted", "gossip shares accepted", static_cast<double>(s.metrics.shares_accepted));
  metric("shares_rejected", "gossip shares refused", static_cast<double>(s.metrics.shares_rejected));
  metric("phase", "0 training, 1 mixing, 2 done", static_cast<double>(static_cast<int>(s.phase)));
  if (last_metrics_) {
    metric("validation_accuracy", "shared model on local validation rows", last_metrics_->accuracy);
    metric("validation_auroc", "shared model on local validation rows", Finite(last_metrics_->auroc));
  }
  return out;
}

Status Daemon::StartMetricsEndpoint() {
  if (daemon_.run.metrics_listen.empty()) return Status::Ok();
  Result<crypto::HostPort> hp = crypto::ParseHostPort(daemon_.run.metrics_listen);
  if (!hp.ok()) return hp.status().WithContext("run.metrics_listen");
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(hp->host, ec);
  if (ec) return Status::InvalidArgument("run.metrics_listen: " + ec.message());
  metrics_acceptor_ = std::make_unique<boost::asio::ip::tcp::acceptor>(main_io_);
  const boost::asio::ip::tcp::endpoint ep(address, hp->port);
  metrics_acceptor_->open(ep.protocol(), ec);
  if (!ec) metrics_acceptor_->set_option(boost::asio::socket_base::reuse_address(true), ec);
  if (!ec) metrics_acceptor_->bind(ep, ec);
  if (!ec) metrics_acceptor_->listen(16, ec);
  if (ec) return Status::Unavailable("run.metrics_listen " + daemon_.run.metrics_listen + ": " + ec.message());
  spdlog::info("Prometheus metrics on http://{}/metrics", daemon_.run.metrics_listen);
  AcceptMetrics();
  return Status::Ok();
}

// One response per connection, whatever the request; the request is not read.
void Daemon::AcceptMetrics() {
  metrics_acceptor_->async_accept([this](const boost::system::error_code& ec,
                                         boost::asio::ip::tcp::socket socket) {
    if (ec) return;
    const std::string body = PrometheusText();
    auto response = std::make_shared<std::string>(
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
    auto sock = std::make_shared<boost::asio::ip::tcp::socket>(std::move(socket));
    boost::asio::async_write(*sock, boost::asio::buffer(*response),
                             [sock, response](const boost::system::error_code&, size_t) {
                               boost::system::error_code ignored;
                               sock->shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
                             });
    AcceptMetrics();
  });
}

Status Daemon::Prepare() {
  std::string config = flags_.config.empty() ? "dpnode.toml" : flags_.config;
  if (!fs::exists(config)) {
    return Status::NotFound(config + ": no such site configuration" +
                            (flags_.config.empty() ? " in the working directory (give --config FILE)"
                                                   : ""));
  }
  Result<SiteConfig> sc = LoadSiteConfig(config);
  if (!sc.ok()) return sc.status();
  site_ = *sc;
  Result<DaemonConfig> dc = LoadDaemonConfig(config);
  if (!dc.ok()) return dc.status();
  daemon_ = *dc;
  if (!site_.has_privacy) {
    return Status::InvalidArgument(config + ": missing table [privacy]: the daemon trains privately");
  }
  if (!site_.train.private_training) {
    return Status::InvalidArgument(config + ": train.private = false is not allowed in the daemon");
  }
  if (site_.train.state_dir.empty()) {
    return Status::InvalidArgument(config + ": missing key 'train.state_dir' (ledger, checkpoints, exports)");
  }
  state_dir_ = site_.train.state_dir;
  if (!daemon_.run.stderr_level.empty()) {
    // Only stderr's own threshold: the file sink below still gets every line
    // the logger passes (--log-level). Stderr is not size-capped by dpnode,
    // so with a log file "warn" keeps it to incidents.
    spdlog::default_logger()->sinks().front()->set_level(
        spdlog::level::from_str(daemon_.run.stderr_level));
  }
  if (!daemon_.run.log_file.empty()) {
    // A size-capped copy of the log: a long run cannot fill the disk.
    try {
      spdlog::default_logger()->sinks().push_back(
          std::make_shared<spdlog::sinks::rotating_file_sink_mt>(
              daemon_.run.log_file, static_cast<size_t>(daemon_.run.log_max_bytes),
              static_cast<size_t>(daemon_.run.log_files)));
    } catch (const spdlog::spdlog_ex& e) {
      return Status::IoError("run.log_file " + daemon_.run.log_file + ": " + e.what());
    }
  }
  export_path_ = daemon_.run.export_path.empty() ? (fs::path(state_dir_) / "model.npz").string()
                                                 : daemon_.run.export_path;
  if (!crypto::IsValidSiteName(site_.name)) {
    return Status::InvalidArgument(config + ": site.name '" + site_.name + "' is not a valid site name");
  }

  const std::string peers_path = !flags_.peers.empty() ? flags_.peers : daemon_.network.peers;
  if (peers_path.empty()) {
    return Status::InvalidArgument("no peers file: give --peers FILE or network.peers in " + config);
  }
  Result<crypto::PeerList> peers = crypto::ReadPeersFile(peers_path);
  if (!peers.ok()) return peers.status();
  peers_ = *peers;

  Result<crypto::SiteIdentity> id = crypto::ReadIdentity(daemon_.network.identity_dir);
  if (!id.ok()) {
    return id.status().WithContext("network.identity_dir " + daemon_.network.identity_dir);
  }
  identity_ = *id;
  const crypto::PeerEntry* me = peers_.FindByKey(identity_->public_key());
  if (me == nullptr) {
    spdlog::warn("our key {} is not in {}: the other sites will refuse us unless their peers.txt "
                 "lists it", crypto::Fingerprint(identity_->public_key()), peers_path);
  } else if (me->name != site_.name) {
    spdlog::warn("{} names our key '{}' but site.name is '{}'", peers_path, me->name, site_.name);
  }

  Result<crypto::HostPort> listen = crypto::ParseHostPort(daemon_.network.listen);
  if (!listen.ok()) {
    return Status::InvalidArgument(config + ": network.listen: " + listen.status().message());
  }
  listen_ = *listen;
  {
    // Refuse a listen address we cannot bind before anything is written
    // (the Node binds it for real later; a race here only fails later).
    boost::asio::io_context probe_io;
    boost::system::error_code ec;
    const auto address = boost::asio::ip::make_address(listen_.host, ec);
    if (!ec) {
      boost::asio::ip::tcp::acceptor probe(probe_io);
      const boost::asio::ip::tcp::endpoint ep(address, listen_.port);
      probe.open(ep.protocol(), ec);
      if (!ec) probe.set_option(boost::asio::socket_base::reuse_address(true), ec);
      if (!ec) probe.bind(ep, ec);
      if (ec) {
        return Status::Unavailable(config + ": network.listen " + listen_.ToString() +
                                   " cannot be bound: " + ec.message());
      }
    }
  }
  if (!daemon_.network.announce.empty()) {
    Result<crypto::HostPort> a = crypto::ParseHostPort(daemon_.network.announce);
    if (!a.ok()) {
      return Status::InvalidArgument(config + ": network.announce: " + a.status().message());
    }
    announce_ = *a;
  } else if (listen_.host != "0.0.0.0" && listen_.host != "::") {
    announce_ = listen_;
  }

  Result<learn::Schema> schema = learn::LoadSchemaFile(site_.schema);
  if (!schema.ok()) return schema.status();
  schema_ = *schema;
  Result<learn::Dataset> d = learn::LoadDataset(schema_, site_.csv);
  if (!d.ok()) return d.status();
  data_ = *d;
  LogLoadReport(site_.csv, data_);
  if (data_.train_rows.empty()) return Status::InvalidArgument(site_.csv + ": no training rows");

  Result<PrivacyPlan> plan =
      MakePlan(site_.name, static_cast<int64_t>(data_.train_rows.size()), site_.privacy);
  if (!plan.ok()) return plan.status();
  plan_ = *plan;

  learn::ModelSpec spec;
  spec.kind = site_.model.kind == "mlp" ? learn::ModelKind::kMlp : learn::ModelKind::kLogistic;
  spec.input_dim = data_.dim;
  spec.num_classes = static_cast<int64_t>(data_.class_names.size());
  spec.hidden = site_.model.hidden;
  spec.activation =
      site_.model.activation == "tanh" ? learn::Activation::kTanh : learn::Activation::kRelu;
  spec.dropout = site_.model.dropout;
  DPNODE_RETURN_IF_ERROR(learn::ValidateModelSpec(spec));

  const TrainConfig& tc = site_.train;
  learn::LearnerOptions& lo = learner_options_;
  lo.spec = spec;
  lo.schema_fingerprint = learn::Fingerprint(schema_);
  lo.optimizer.kind =
      tc.optimizer == "adam" ? learn::OptimizerKind::kAdam : learn::OptimizerKind::kSgd;
  lo.optimizer.learning_rate =
      tc.learning_rate > 0 ? tc.learning_rate
                           : (lo.optimizer.kind == learn::OptimizerKind::kAdam ? 0.01 : 0.5);
  lo.optimizer.momentum = lo.optimizer.kind == learn::OptimizerKind::kSgd ? tc.momentum : 0;
  lo.dpsgd.private_training = true;
  lo.dpsgd.sample_rate = plan_.sample_rate;
  lo.dpsgd.noise_multiplier = plan_.noise_multiplier;
  lo.dpsgd.clip_norm = site_.privacy.clip_norm;
  lo.dpsgd.max_steps = plan_.steps;
  if (tc.seeded_noise) lo.dpsgd.noise_seed = tc.seed;
  lo.dpsgd.dropout_seed = tc.seed;
  lo.init_seed = tc.seed;
  return Status::Ok();
}

Status Daemon::Build() {
  learn::SetComputeThreads(site_.train.threads);
  Result<std::unique_ptr<learn::LearnerTrainer>> trainer =
      learn::LearnerTrainer::FromDataset(data_, learner_options_);
  if (!trainer.ok()) return trainer.status();
  trainer_ = std::move(trainer).value();
  learn::LearnerOptions eval_options = learner_options_;
  eval_options.dpsgd.private_training = false;
  eval_options.dpsgd.noise_multiplier = 0;
  Result<std::unique_ptr<learn::LearnerTrainer>> evaluator =
      learn::LearnerTrainer::FromDataset(data_, eval_options);
  if (!evaluator.ok()) return evaluator.status();
  evaluator_ = std::move(evaluator).value();

  // Resume before the ledger so a foreign checkpoint stops us with nothing written.
  const std::string ckpt_path = (fs::path(state_dir_) / kCheckpointFile).string();
  if (fs::exists(ckpt_path)) {
    Result<learn::Checkpoint> c = learn::ReadCheckpoint(ckpt_path, trainer_->model_fingerprint());
    if (!c.ok()) return c.status();
    DPNODE_RETURN_IF_ERROR(trainer_->RestoreCheckpoint(*c));
    restored_steps_ = c->steps;
    spdlog::info("resumed from {}: {} local steps run before", ckpt_path, restored_steps_);
  }

  Result<std::unique_ptr<privacy::Ledger>> ledger =
      OpenOrCreateLedger(state_dir_, {site_.privacy.target_epsilon, site_.privacy.delta,
                                      site_.privacy.accountant, LedgerLabel({site_.name})});
  if (!ledger.ok()) return ledger.status();
  ledger_ = std::move(ledger).value();
  ledger_steps_at_start_ = ledger_->total_steps();
  Result<double> eps = ledger_->EpsilonSpent();
  if (eps.ok()) epsilon_at_start_ = *eps;

  Result<uint64_t> seq = NextRecordSequence(state_dir_);
  if (!seq.ok()) return seq.status();

  asio::NetworkOptions net;
  net.channel.consortium_id = daemon_.network.consortium_id;
  asio::AsioEnvOptions eo;
  eo.log = [](const std::string& line) { spdlog::info("net: {}", line); };
  const crypto::PeerList& pinned = peers_;
  Result<std::unique_ptr<asio::AsioEnv>> env = asio::AsioEnv::Create(
      *identity_, [&pinned](const crypto::Ed25519PublicKey& k) { return pinned.IsPinned(k); }, net,
      eo);
  if (!env.ok()) return env.status();
  env_ = std::move(env).value();

  node::NodeOptions o;
  o.site_name = site_.name;
  o.consortium_id = daemon_.network.consortium_id;
  const learn::ModelFingerprint& fp = trainer_->model_fingerprint();
  o.model_fingerprint.assign(fp.begin(), fp.end());
  o.listen = NetAddress{listen_.host, listen_.port};
  if (announce_) o.announce.push_back(NetAddress{announce_->host, announce_->port});
  o.record_sequence = *seq;
  Result<gossip::PolicyKind> policy = gossip::ParsePolicyKind(daemon_.network.policy);
  if (!policy.ok()) return policy.status();
  o.policy = *policy;
  o.gossip_interval = std::chrono::milliseconds(daemon_.network.gossip_interval_ms);
  o.step_interval = std::chrono::milliseconds(daemon_.network.step_interval_ms);
  o.wait_for_peers = static_cast<int>(daemon_.network.wait_for_peers);
  o.wait_for_peers_timeout = std::chrono::duration_cast<Duration>(
      std::chrono::duration<double>(daemon_.network.wait_for_peers_timeout_s));
  o.reserve_block_steps = site_.train.ledger_block_steps;
  const int64_t planned = daemon_.run.max_steps >= 0 ? daemon_.run.max_steps : plan_.steps;
  o.max_steps = std::max<int64_t>(0, planned - ledger_steps_at_start_);
  o.settle_tolerance = daemon_.run.settle_tolerance;
  o.settle_window = static_cast<int>(daemon_.run.settle_window);
  o.log = [](const std::string& line) { spdlog::info("node: {}", line); };
  node_ = std::make_unique<node::Node>(*env_, *identity_, peers_, ledger_.get(), *trainer_, o);
  node_->set_on_done([this] { node_done_ = true; });
  Status started;
  env_->RunOnLoop([&] { started = node_->Start(); });
  if (!started.ok()) return started;
  spdlog::info("{} listening on {} (consortium '{}', key {}, model {}); {} other sites pinned; "
               "plan: {} steps, q {:.4f}, sigma {:.4f}, epsilon {} at delta {}; ledger holds {} steps",
               site_.name, listen_.ToString(), daemon_.network.consortium_id,
               crypto::Fingerprint(identity_->public_key()), learn::ModelFingerprintHex(fp),
               node_->membership().Members().size(), plan_.steps, plan_.sample_rate,
               plan_.noise_multiplier, ShortNumber(site_.privacy.target_epsilon),
               ShortNumber(site_.privacy.delta), ledger_steps_at_start_);
  if (site_.train.seeded_noise) {
    spdlog::warn("{}: train.noise = \"seeded\": the DP noise is reproducible from train.seed and "
                 "gives NO privacy; for tests only", site_.name);
  }
  env_->Start();
  return Status::Ok();
}

Snapshot Daemon::Take() {
  Snapshot s;
  env_->RunOnLoop([&] {
    s.phase = node_->phase();
    s.waiting_for_peers = node_->waiting_for_peers();
    s.metrics = node_->metrics();
    s.estimate = node_->Estimate();
    s.partners = node_->membership().Partners().size();
    s.pinned = node_->membership().Members().size();
    s.records = node_->membership().Records().size();
    s.stop_reason = node_->training_stop_reason();
  });
  return s;
}

nlohmann::json Daemon::StatusJson(const Snapshot& s) const {
  const double uptime =
      std::chrono::duration<double>(SteadyClock::now() - started_).count();
  nlohmann::json j = {
      {"site", site_.name},
      {"phase", node::PhaseName(s.phase)},
      {"waiting_for_peers", s.waiting_for_peers},
      {"uptime_s", uptime},
      {"steps_done", restored_steps_ + s.metrics.steps},
      {"steps_this_run", s.metrics.steps},
      {"steps_planned", plan_.steps},
      {"ledger_steps", ledger_steps_at_start_ + s.metrics.steps_reserved},
      {"epsilon_spent", std::max(epsilon_at_start_, s.metrics.epsilon_spent)},
      {"epsilon_budget", site_.privacy.target_epsilon},
      {"delta", site_.privacy.delta},
      {"peers_connected", s.partners},
      {"peers_pinned", s.pinned},
      {"peer_records", s.records},
      {"bytes_in", s.metrics.bytes_received},
      {"bytes_out", s.metrics.bytes_sent},
      {"shares_accepted", s.metrics.shares_accepted},
      {"shares_rejected", s.metrics.shares_rejected},
      {"rounds", s.metrics.rounds},
      {"training_stop", s.stop_reason.ok() ? "" : s.stop_reason.ToString()},
  };
  if (last_metrics_) {
    j["validation"] = {{"rows", last_metrics_->rows},
                       {"accuracy", last_metrics_->accuracy},
                       {"auroc", Finite(last_metrics_->auroc)},
                       {"brier", last_metrics_->brier}};
  }
  return j;
}

void Daemon::Progress(const Snapshot& s) {
  std::vector<float> params(s.estimate.begin(), s.estimate.end());
  if (evaluator_->SetParameters(params).ok() && evaluator_->test_rows() > 0) {
    Result<learn::Metrics> m = evaluator_->TestMetrics();
    if (m.ok()) last_metrics_ = *m;
  }
  const nlohmann::json j = StatusJson(s);
  spdlog::info("{}: {} | steps {}/{} | eps {:.3f} of {} | peers {}/{} connected | in {} out {}{}",
               site_.name, s.waiting_for_peers ? "waiting for peers" : node::PhaseName(s.phase),
               j["steps_done"].get<int64_t>(), plan_.steps,
               j["epsilon_spent"].get<double>(), ShortNumber(site_.privacy.target_epsilon),
               s.partners, s.pinned, Megabytes(s.metrics.bytes_received),
               Megabytes(s.metrics.bytes_sent),
               last_metrics_ ? fmt::format(" | val acc {:.3f} AUROC {:.3f}", last_metrics_->accuracy,
                                           last_metrics_->auroc)
                             : std::string());
  const Status w = WriteFileAtomically((fs::path(state_dir_) / kStatusFile).string(), j.dump(2) + "\n");
  if (!w.ok()) spdlog::warn("status file: {}", w.ToString());
}

void Daemon::RequestCheckpoint() {
  // The trainer's optimiser state may be read only between steps: the Node
  // hands us that moment (at once, or right after the running step has been
  // applied). The copy is taken on the loop; the file is written here on the
  // main thread, so the loop never waits for an fsync.
  env_->Post([this] {
    node_->WhenIdle([this] {
      learn::Checkpoint c = trainer_->MakeCheckpoint();
      const std::vector<double> estimate = node_->Estimate();
      c.parameters.assign(estimate.begin(), estimate.end());
      c.steps = restored_steps_ + node_->metrics().steps;
      boost::asio::post(main_io_, [this, c = std::move(c)] {
        for (float v : c.parameters) {
          if (!std::isfinite(v)) {
            spdlog::warn("checkpoint: estimate is not finite; checkpoint skipped");
            return;
          }
        }
        const Status w = learn::WriteCheckpoint((fs::path(state_dir_) / kCheckpointFile).string(), c);
        if (!w.ok()) spdlog::warn("checkpoint: {}", w.ToString());
      });
    });
  });
}

void Daemon::Tick() {
  const auto now = SteadyClock::now();
  const Snapshot s = Take();
  last_snapshot_ = s;
  const RunConfig& rc = daemon_.run;
  auto seconds = [](SteadyClock::duration d) { return std::chrono::duration<double>(d).count(); };
  if (seconds(now - last_progress_) >= rc.progress_interval_s) {
    last_progress_ = now;
    Progress(s);
  }
  if (seconds(now - last_checkpoint_) >= rc.checkpoint_interval_s) {
    last_checkpoint_ = now;
    RequestCheckpoint();
  }
  if (s.phase != node::Phase::kTraining && !mixing_since_) {
    mixing_since_ = now;
    spdlog::info("{}: training stopped after {} local steps ({}); mixing until the models settle",
                 site_.name, restored_steps_ + s.metrics.steps,
                 s.stop_reason.ok() ? "step limit reached" : s.stop_reason.ToString());
  }
  if (node_done_ && !done_at_) {
    done_at_ = now;
    spdlog::info("{}: the model has settled", site_.name);
  }
  if (rc.exit_when_done) {
    if (done_at_ && seconds(now - *done_at_) >= rc.linger_s) {
      exit_reason_ = "settled";
      main_io_.stop();
      return;
    }
    if (mixing_since_ && !done_at_ && seconds(now - *mixing_since_) >= rc.mixing_timeout_s) {
      spdlog::warn("{}: not settled {} s after training stopped (run.mixing_timeout_s); exiting",
                   site_.name, rc.mixing_timeout_s);
      exit_reason_ = "mixing timeout";
      main_io_.stop();
      return;
    }
  }
  tick_timer_->expires_after(std::chrono::milliseconds(200));
  tick_timer_->async_wait([this](const boost::system::error_code& ec) {
    if (!ec) Tick();
  });
}

Status Daemon::Finish(const Snapshot& s) {
  // No step is running (a signal held training and waited for the running
  // step to be applied; a settled node had stopped training), so the
  // snapshot's estimate includes every step run, and the trainer's optimiser
  // state is the one after the last step.
  std::vector<float> params(s.estimate.begin(), s.estimate.end());
  DPNODE_RETURN_IF_ERROR(trainer_->SetParameters(params));
  learn::Checkpoint c = trainer_->MakeCheckpoint();
  c.steps = restored_steps_ + s.metrics.steps;
  DPNODE_RETURN_IF_ERROR(learn::WriteCheckpoint((fs::path(state_dir_) / kCheckpointFile).string(), c));
  Result<learn::Metrics> m = trainer_->TestMetrics();
  if (m.ok()) last_metrics_ = *m;
  Result<double> eps = ledger_->EpsilonSpent();
  const double epsilon = eps.ok() ? *eps : -1;

  std::vector<NpyArray> arrays;
  size_t at = 0;
  for (const gossip::TensorSpec& t : trainer_->ParameterLayout()) {
    NpyArray a;
    a.name = t.name;
    size_t n = 1;
    for (uint64_t d : t.shape) {
      a.shape.push_back(static_cast<int64_t>(d));
      n *= static_cast<size_t>(d);
    }
    a.values.assign(params.begin() + static_cast<std::ptrdiff_t>(at),
                    params.begin() + static_cast<std::ptrdiff_t>(at + n));
    at += n;
    arrays.push_back(std::move(a));
  }
  std::error_code ec;
  if (fs::path(export_path_).has_parent_path()) fs::create_directories(fs::path(export_path_).parent_path(), ec);
  DPNODE_RETURN_IF_ERROR(WriteNpz(export_path_, arrays));

  const learn::ModelSpec& spec = trainer_->spec();
  nlohmann::json meta = {
      {"site", site_.name},
      {"consortium_id", daemon_.network.consortium_id},
      {"model_fingerprint", learn::ModelFingerprintHex(trainer_->model_fingerprint())},
      {"schema_fingerprint", learn::FingerprintHex(learner_options_.schema_fingerprint)},
      {"model", learn::ModelKindName(spec.kind)},
      {"hidden", spec.hidden},
      {"activation", spec.activation == learn::Activation::kTanh ? "tanh" : "relu"},
      {"tensors", nlohmann::json::array()},
      {"feature_names", data_.feature_names},
      {"class_names", data_.class_names},
      {"epsilon_spent", epsilon},
      {"epsilon_budget", site_.privacy.target_epsilon},
      {"delta", site_.privacy.delta},
      {"accountant", privacy::AccountantName(site_.privacy.accountant)},
      {"noise", trainer_->noise_description()},
      {"ledger_steps", ledger_->total_steps()},
      {"local_steps", c.steps},
      {"steps_planned", plan_.steps},
      {"settled", node_done_.load()},
      {"exit", exit_reason_},
  };
  for (const NpyArray& a : arrays) meta["tensors"].push_back({{"name", a.name}, {"shape", a.shape}});
  if (last_metrics_) {
    meta["validation"] = {{"rows", last_metrics_->rows},
                          {"accuracy", last_metrics_->accuracy},
                          {"auroc", Finite(last_metrics_->auroc)},
                          {"auprc", Finite(last_metrics_->auprc)},
                          {"brier", last_metrics_->brier},
                          {"ece", last_metrics_->ece}};
  }
  const std::string json_path = fs::path(export_path_).replace_extension(".json").string();
  DPNODE_RETURN_IF_ERROR(WriteFileAtomically(json_path, meta.dump(2) + "\n"));

  learn::ModelFile file;
  file.spec = spec;
  file.schema_fingerprint = learner_options_.schema_fingerprint;
  file.fingerprint = trainer_->model_fingerprint();
  file.feature_names = data_.feature_names;
  file.class_names = data_.class_names;
  file.parameters = params;
  const std::string dpm_path = fs::path(export_path_).replace_extension(".dpm").string();
  DPNODE_RETURN_IF_ERROR(learn::WriteModelFile(dpm_path, file, meta.dump()));

  nlohmann::json st = StatusJson(s);
  st["phase"] = "exited";
  st["epsilon_spent"] = epsilon;
  st["export"] = export_path_;
  DPNODE_RETURN_IF_ERROR(
      WriteFileAtomically((fs::path(state_dir_) / kStatusFile).string(), st.dump(2) + "\n"));
  spdlog::info("{}: exported {} (+ .json, .dpm): epsilon {:.3f} of {}, {} local steps, {}", site_.name,
               export_path_, epsilon, ShortNumber(site_.privacy.target_epsilon), c.steps,
               last_metrics_ ? fmt::format("validation accuracy {:.3f} AUROC {:.3f}",
                                           last_metrics_->accuracy, last_metrics_->auroc)
                             : std::string("no validation rows"));
  return Status::Ok();
}

int Daemon::Check() {
  const std::string name = "check";
  if (Status s = Prepare(); !s.ok()) return ReportError(name, s);
  const learn::ModelFingerprint fp =
      learn::ComputeModelFingerprint(learner_options_.schema_fingerprint, learner_options_.spec);
  const std::string ckpt_path = (fs::path(state_dir_) / kCheckpointFile).string();
  std::string resume = "none (a fresh start)";
  if (fs::exists(ckpt_path)) {
    Result<learn::Checkpoint> c = learn::ReadCheckpoint(ckpt_path, fp);
    if (!c.ok()) return ReportError(name, c.status());
    resume = std::to_string(c->steps) + " local steps";
  }
  std::string ledger = "none yet (created at the first run)";
  if (fs::exists(fs::path(state_dir_) / privacy::Ledger::kFileName)) {
    Result<privacy::LedgerSnapshot> l = privacy::Ledger::Inspect(state_dir_);
    if (!l.ok()) return ReportError(name, l.status());
    const privacy::Budget& have = l->budget;
    if (have.epsilon != site_.privacy.target_epsilon || have.delta != site_.privacy.delta ||
        have.accountant != site_.privacy.accountant) {
      return ReportError(name, Status::FailedPrecondition(
                                   state_dir_ + ": the ledger holds a budget of epsilon " +
                                   ShortNumber(have.epsilon) + " at delta " + ShortNumber(have.delta) +
                                   ", not the configured one"));
    }
    ledger = std::to_string(l->total_steps) + " steps charged";
  }
  std::printf("site %s: configuration, identity, peers, data and plan are valid\n", site_.name.c_str());
  std::printf("  identity   %s\n", crypto::Fingerprint(identity_->public_key()).c_str());
  std::printf("  peers      %zu pinned sites\n", peers_.size());
  std::printf("  listen     %s (consortium '%s', policy %s)\n", listen_.ToString().c_str(),
              daemon_.network.consortium_id.c_str(), daemon_.network.policy.c_str());
  std::printf("  data       %zu train rows, %zu validation rows, %lld features\n",
              data_.train_rows.size(), data_.test_rows.size(), static_cast<long long>(data_.dim));
  std::printf("  model      %s, fingerprint %s\n", learn::ModelKindName(learner_options_.spec.kind),
              learn::ModelFingerprintHex(fp).c_str());
  std::printf("  plan       %lld steps, q %.5f, sigma %.4f: epsilon %s at delta %s\n",
              static_cast<long long>(plan_.steps), plan_.sample_rate, plan_.noise_multiplier,
              ShortNumber(site_.privacy.target_epsilon).c_str(), ShortNumber(site_.privacy.delta).c_str());
  std::printf("  state      %s: ledger %s; checkpoint %s\n", state_dir_.c_str(), ledger.c_str(),
              resume.c_str());
  return kExitOk;
}

int Daemon::Run() {
  const std::string name = "run";
  if (Status s = Prepare(); !s.ok()) return ReportError(name, s);
  // Signals are caught from here on: a signal during Build stops the run
  // right after it.
  boost::asio::signal_set signals(main_io_, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    exit_reason_ = signo == SIGINT ? "SIGINT" : "SIGTERM";
    spdlog::info("{}: {}: finishing the current step, checkpointing, saying goodbye", site_.name,
                 exit_reason_);
    // No new step starts; the one running (if any) completes and is applied
    // to the estimate, then the main loop stops and Finish() checkpoints and
    // exports a model that includes it. A second signal stops at once.
    signals.async_wait([&](const boost::system::error_code& ec2, int) {
      if (!ec2) main_io_.stop();
    });
    env_->Post([this] {
      node_->HoldTraining([this] { boost::asio::post(main_io_, [this] { main_io_.stop(); }); });
    });
  });
  if (Status s = Build(); !s.ok()) {
    if (env_) env_->Stop("startup failed");
    if (node_) node_.reset();
    return ReportError(name, s);
  }
  if (Status s = StartMetricsEndpoint(); !s.ok()) {
    env_->RunOnLoop([&] { node_->Stop(); });
    env_->Stop("startup failed");
    node_.reset();
    return ReportError(name, s);
  }
  started_ = last_progress_ = last_checkpoint_ = SteadyClock::now();
  tick_timer_ = std::make_unique<boost::asio::steady_timer>(main_io_);
  tick_timer_->expires_after(std::chrono::milliseconds(200));
  tick_timer_->async_wait([this](const boost::system::error_code& ec) {
    if (!ec) Tick();
  });
  main_io_.run();

  Snapshot last = Take();
  env_->RunOnLoop([&] { node_->Stop(); });
  env_->Stop("site shutting down");
  node_.reset();
  const Status stop = last.stop_reason;
  if (Status s = Finish(last); !s.ok()) return ReportError(name, s);
  if (!stop.ok() && stop.code() != StatusCode::kBudgetExhausted) {
    return ReportError(name, stop.WithContext("training failed"));
  }
  return kExitOk;
}

struct EvalFlags {
  std::string model;
  std::vector<std::string> configs;
  bool json = false;
};

// `dpnode eval`: a model file scored on the test rows of one or more sites
// (e.g. the shared model on the pooled test data of the whole consortium).
int RunEval(const EvalFlags& f) {
  const std::string name = "eval";
  Result<learn::ModelFile> model = learn::ReadModelFile(f.model);
  if (!model.ok()) return ReportError(name, model.status());
  learn::ExampleTable pool;
  std::vector<std::string> sites;
  for (const std::string& file : f.configs) {
    Result<SiteConfig> c = LoadSiteConfig(file, /*data_only=*/true);
    if (!c.ok()) return ReportError(name, c.status());
    Result<learn::Schema> schema = learn::LoadSchemaFile(c->schema);
    if (!schema.ok()) return ReportError(name, schema.status());
    if (learn::Fingerprint(*schema) != model->schema_fingerprint) {
      return ReportError(name, Status::InvalidArgument(
                                   file + ": schema " + c->schema + " is not the one " + f.model +
                                   " was trained on"));
    }
    Result<learn::Dataset> d = learn::LoadDataset(*schema, c->csv);
    if (!d.ok()) return ReportError(name, d.status());
    if (Status s = learn::AppendRows(*d, d->test_rows, pool); !s.ok()) return ReportError(name, s);
    sites.push_back(c->name);
  }
  if (pool.rows == 0) return ReportError(name, Status::InvalidArgument("no test rows"));
  Result<std::unique_ptr<learn::Network>> net = learn::Network::Create(model->spec, model->parameters);
  if (!net.ok()) return ReportError(name, net.status());
  Result<learn::Metrics> m = learn::Evaluate(**net, pool.view());
  if (!m.ok()) return ReportError(name, m.status());
  nlohmann::json j = {{"model", f.model},
                      {"model_fingerprint", learn::ModelFingerprintHex(model->fingerprint)},
                      {"test_sites", sites},
                      {"rows", m->rows},
                      {"accuracy", m->accuracy},
                      {"auroc", Finite(m->auroc)},
                      {"auprc", Finite(m->auprc)},
                      {"brier", m->brier},
                      {"ece", m->ece}};
  if (f.json) {
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("%s on %lld test rows: accuracy %.4f  AUROC %.4f  AUPRC %.4f  Brier %.4f  ECE %.4f\n",
                f.model.c_str(), static_cast<long long>(m->rows), m->accuracy, m->auroc, m->auprc,
                m->brier, m->ece);
  }
  return kExitOk;
}

}  // namespace

void RegisterRunCommand(CLI::App& app, int& exit_code) {
  auto f = std::make_shared<RunFlags>();
  CLI::App* cmd = app.add_subcommand(
      "run", "Run this site's daemon: join the consortium, train under the ledger, export the model");
  cmd->add_option("--config", f->config, "site configuration (default ./dpnode.toml)");
  cmd->add_option("--peers", f->peers, "pinned peers file (default network.peers)");
  cmd->callback([f, &exit_code] { exit_code = Daemon(*f).Run(); });

  auto c = std::make_shared<RunFlags>();
  CLI::App* check = app.add_subcommand(
      "check", "Validate configuration, identity, peers, data and the privacy plan without joining");
  check->add_option("--config", c->config, "site configuration (default ./dpnode.toml)");
  check->add_option("--peers", c->peers, "pinned peers file (default network.peers)");
  check->callback([c, &exit_code] { exit_code = Daemon(*c).Check(); });

  auto e = std::make_shared<EvalFlags>();
  CLI::App* eval = app.add_subcommand(
      "eval", "Score a model file (e.g. a daemon's export) on the test rows of one or more sites");
  eval->add_option("--model", e->model, "model file (.dpm)")->required()->check(CLI::ExistingFile);
  eval->add_option("--config", e->configs, "site configuration whose test rows join the evaluation")
      ->required()
      ->check(CLI::ExistingFile);
  eval->add_flag("--json", e->json, "print one JSON object");
  eval->callback([e, &exit_code] { exit_code = RunEval(*e); });

  // The bare form `dpnode --peers peers.txt [--config FILE]` runs the daemon too.
  auto bare = std::make_shared<RunFlags>();
  app.require_subcommand(0, 1);
  app.add_option("--config", bare->config, "with no subcommand: site configuration for the daemon");
  app.add_option("--peers", bare->peers, "with no subcommand: run the daemon with these peers");
  app.callback([bare, &app, &exit_code] {
    if (!app.get_subcommands().empty()) return;
    // As before the bare form existed: no subcommand and no daemon flags is a usage error.
    if (bare->peers.empty() && bare->config.empty()) throw CLI::RequiredError("A subcommand");
    exit_code = Daemon(*bare).Run();
  });
}

}  // namespace dpnode::cli
