// Parsing and validation of experiment files, and the site splits.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "sim/experiment/experiment.h"
#include "sim/seeds.h"

namespace dpnode::sim {
namespace {

// Reads one TOML table, naming keys by their dotted path in errors and
// refusing keys it was never asked about.
class Table {
 public:
  Table(const toml::table* t, std::string path) : t_(t), path_(std::move(path)) {}

  std::string Key(const std::string& k) const { return path_.empty() ? k : path_ + "." + k; }
  Status Bad(const std::string& k, const std::string& why) const {
    return Status::InvalidArgument("experiment key '" + Key(k) + "': " + why);
  }
  const toml::node* Get(const std::string& k) {
    seen_.insert(k);
    return t_ ? t_->get(k) : nullptr;
  }
  Status Double(const std::string& k, double* out, double lo, double hi, bool required = false) {
    const toml::node* n = Get(k);
    if (!n) return required ? Bad(k, "required") : Status::Ok();
    std::optional<double> v = n->value<double>();
    if (!v || !n->is_number()) return Bad(k, "must be a number");
    if (!std::isfinite(*v) || *v < lo || *v > hi) {
      std::ostringstream s;
      s << "must lie in [" << lo << ", " << hi << "], got " << *v;
      return Bad(k, s.str());
    }
    *out = *v;
    return Status::Ok();
  }
  template <typename I>
  Status Int(const std::string& k, I* out, int64_t lo, int64_t hi, bool required = false) {
    const toml::node* n = Get(k);
    if (!n) return required ? Bad(k, "required") : Status::Ok();
    if (!n->is_integer()) return Bad(k, "must be an integer");
    const int64_t v = *n->value<int64_t>();
    if (v < lo || v > hi) {
      return Bad(k, "must lie in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
                        std::to_string(v));
    }
    *out = static_cast<I>(v);
    return Status::Ok();
  }
  Status String(const std::string& k, std::string* out, const std::vector<std::string>& allowed = {},
                bool required = false) {
    const toml::node* n = Get(k);
    if (!n) return required ? Bad(k, "required") : Status::Ok();
    if (!n->is_string()) return Bad(k, "must be a string");
    std::string v = *n->value<std::string>();
    if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), v) == allowed.end()) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      return Bad(k, "unknown value '" + v + "' (one of: " + list + ")");
    }
    *out = v;
    return Status::Ok();
  }
  Status Bool(const std::string& k, bool* out) {
    const toml::node* n = Get(k);
    if (!n) return Status::Ok();
    if (!n->is_boolean()) return Bad(k, "must be true or false");
    *out = *n->value<bool>();
    return Status::Ok();
  }
  Status UintList(const std::string& k, std::vector<uint32_t>* out, bool required) {
    const toml::node* n = Get(k);
    if (!n) return required ? Bad(k, "required") : Status::Ok();
    const toml::array* a = n->as_array();
    if (!a) return Bad(k, "must be a list of site indices");
    out->clear();
    for (const toml::node& e : *a) {
      if (!e.is_integer() || *e.value<int64_t>() < 0) return Bad(k, "must be a list of site indices");
      out->push_back(static_cast<uint32_t>(*e.value<int64_t>()));
    }
    return Status::Ok();
  }
  // Unknown keys are errors (a misspelt key must not silently use a default).
  Status CheckUnknown() const {
    if (!t_) return Status::Ok();
    for (const auto& [k, v] : *t_) {
      const std::string key(k.str());
      if (!seen_.count(key)) return Bad(key, "unknown key");
    }
    return Status::Ok();
  }
  Result<Table> Sub(const std::string& k) {
    const toml::node* n = Get(k);
    if (!n) return Table(nullptr, Key(k));
    if (!n->is_table()) return Bad(k, "must be a table");
    return Table(n->as_table(), Key(k));
  }

 private:
  const toml::table* t_;
  std::string path_;
  std::set<std::string> seen_;
};

std::string Resolve(const std::string& base, const std::string& p) {
  if (p.empty() || std::filesystem::path(p).is_absolute()) return p;
  return (std::filesystem::path(base) / p).lexically_normal().string();
}

Status ParseFaults(Table& faults, ExperimentSpec& spec) {
  auto list = [&](const std::string& k) -> Result<std::vector<Table>> {
    std::vector<Table> out;
    const toml::node* n = faults.Get(k);
    if (!n) return out;
    const toml::array* a = n->as_array();
    if (!a) return faults.Bad(k, "must be an array of tables ([[" + faults.Key(k) + "]])");
    for (size_t i = 0; i < a->size(); ++i) {
      const toml::table* t = (*a)[i].as_table();
      if (!t) return faults.Bad(k, "must be an array of tables");
      out.emplace_back(t, faults.Key(k) + "[" + std::to_string(i) + "]");
    }
    return out;
  };
  DPNODE_RETURN_IF_ERROR(
      faults.Double("checkpoint_interval_s", &spec.checkpoint_interval_s, 1e-3, 1e9));
  Result<std::vector<Table>> parts = list("partition");
  if (!parts.ok()) return parts.status();
  for (Table& t : *parts) {
    PartitionSpec p;
    DPNODE_RETURN_IF_ERROR(t.UintList("sites", &p.sites, true));
    DPNODE_RETURN_IF_ERROR(t.Double("start_s", &p.start_s, 0, 1e9, true));
    DPNODE_RETURN_IF_ERROR(t.Double("heal_s", &p.heal_s, 0, 1e9, true));
    if (p.heal_s <= p.start_s) return t.Bad("heal_s", "must be after start_s");
    DPNODE_RETURN_IF_ERROR(t.CheckUnknown());
    spec.partitions.push_back(p);
  }
  Result<std::vector<Table>> crashes = list("crash");
  if (!crashes.ok()) return crashes.status();
  for (Table& t : *crashes) {
    CrashSpec c;
    DPNODE_RETURN_IF_ERROR(t.Int("site", &c.site, 0, 1 << 24, true));
    DPNODE_RETURN_IF_ERROR(t.Double("at_s", &c.at_s, 0, 1e9, true));
    DPNODE_RETURN_IF_ERROR(t.Double("restart_s", &c.restart_s, 0, 1e9));
    if (c.restart_s >= 0 && c.restart_s <= c.at_s) return t.Bad("restart_s", "must be after at_s");
    DPNODE_RETURN_IF_ERROR(t.CheckUnknown());
    spec.crashes.push_back(c);
  }
  Result<std::vector<Table>> strag = list("straggler");
  if (!strag.ok()) return strag.status();
  for (Table& t : *strag) {
    StragglerSpec s;
    DPNODE_RETURN_IF_ERROR(t.Int("site", &s.site, 0, 1 << 24, true));
    DPNODE_RETURN_IF_ERROR(t.Double("factor", &s.factor, 1e-3, 1e6, true));
    DPNODE_RETURN_IF_ERROR(t.CheckUnknown());
    spec.stragglers.push_back(s);
  }
  return faults.CheckUnknown();
}

// [crypto]: each key present replaces one CryptoModel field; the others keep
// their (measured) defaults.
Status ParseCrypto(Table& t, CryptoModel& crypto) {
  // Non-negative and finite; the upper bounds only keep the Durations (int64
  // nanoseconds) far from overflow.
  double v = 0;
  if (t.Get("aead_mb_per_s")) {
    DPNODE_RETURN_IF_ERROR(t.Double("aead_mb_per_s", &v, 0, 1e9));
    crypto.aead_bytes_per_second = v * 1e6;  // 0: free
  }
  if (t.Get("aead_per_message_us")) {
    DPNODE_RETURN_IF_ERROR(t.Double("aead_per_message_us", &v, 0, 1e9));
    crypto.aead_per_message =
        std::chrono::round<Duration>(std::chrono::duration<double, std::micro>(v));
  }
  if (t.Get("handshake_ms")) {
    DPNODE_RETURN_IF_ERROR(t.Double("handshake_ms", &v, 0, 1e9));
    crypto.handshake =
        std::chrono::round<Duration>(std::chrono::duration<double, std::milli>(v));
  }
  return t.CheckUnknown();
}

}  // namespace

Result<ExperimentSpec> ParseExperiment(std::string_view toml_text, std::string_view source_name,
                                       const std::string& base_dir) {
  toml::table root;
  try {
    root = toml::parse(toml_text, source_name);
  } catch (const toml::parse_error& e) {
    std::ostringstream s;
    s << source_name << ":" << e.source().begin.line << ": TOML syntax error: " << e.description();
    return Status::InvalidArgument(s.str());
  }
  ExperimentSpec spec;
  spec.base_dir = base_dir;
  Table top(&root, "");
  DPNODE_RETURN_IF_ERROR(top.String("name", &spec.name));
  DPNODE_RETURN_IF_ERROR(top.Int("seed", &spec.seed, 0, INT64_MAX));

  {
    Result<Table> t = top.Sub("data");
    if (!t.ok()) return t.status();
    DPNODE_RETURN_IF_ERROR(t->String("schema", &spec.schema_path, {}, true));
    const toml::node* csv = t->Get("csv");
    if (!csv) return t->Bad("csv", "required");
    if (csv->is_string()) {
      spec.csv_paths.push_back(*csv->value<std::string>());
    } else if (const toml::array* a = csv->as_array(); a && !a->empty()) {
      for (const toml::node& e : *a) {
        if (!e.is_string()) return t->Bad("csv", "must be a path or a list of paths");
        spec.csv_paths.push_back(*e.value<std::string>());
      }
    } else {
      return t->Bad("csv", "must be a path or a non-empty list of paths");
    }
    std::string split = "site_column";
    DPNODE_RETURN_IF_ERROR(t->String("split", &split, {"site_column", "iid", "dirichlet", "quantity"}));
    spec.split = split == "site_column" ? SplitKind::kSiteColumn
                 : split == "iid"       ? SplitKind::kIid
                 : split == "dirichlet" ? SplitKind::kDirichlet
                                        : SplitKind::kQuantity;
    DPNODE_RETURN_IF_ERROR(t->Int("sites", &spec.sites, 1, 100000));
    if (spec.split != SplitKind::kSiteColumn && spec.sites == 0) {
      return t->Bad("sites", "required when split = \"" + split + "\"");
    }
    DPNODE_RETURN_IF_ERROR(t->Double("alpha", &spec.alpha, 1e-3, 1e6));
    DPNODE_RETURN_IF_ERROR(t->CheckUnknown());
    spec.schema_path = Resolve(base_dir, spec.schema_path);
    for (auto& p : spec.csv_paths) p = Resolve(base_dir, p);
  }
  {
    Result<Table> t = top.Sub("topology");
    if (!t.ok()) return t.status();
    DPNODE_RETURN_IF_ERROR(t->String("kind", &spec.topology,
                         {"complete", "ring", "star", "torus", "erdos_renyi", "regular",
                          "watts_strogatz", "barabasi_albert", "edge_list"}));
    DPNODE_RETURN_IF_ERROR(t->Double("p", &spec.p, 0, 1));
    DPNODE_RETURN_IF_ERROR(t->Int("k", &spec.k, 1, 100000));
    DPNODE_RETURN_IF_ERROR(t->Double("beta", &spec.beta, 0, 1));
    DPNODE_RETURN_IF_ERROR(t->Int("m", &spec.m, 1, 100000));
    DPNODE_RETURN_IF_ERROR(t->Int("rows", &spec.rows, 1, 100000));
    DPNODE_RETURN_IF_ERROR(t->String("file", &spec.edge_file));
    if (spec.topology == "edge_list" && spec.edge_file.empty()) {
      return t->Bad("file", "required when kind = \"edge_list\"");
    }
    spec.edge_file = Resolve(base_dir, spec.edge_file);
    DPNODE_RETURN_IF_ERROR(t->CheckUnknown());
  }
  {
    Result<Table> t = top.Sub("gossip");
    if (!t.ok()) return t.status();
    DPNODE_RETURN_IF_ERROR(t->String("policy", &spec.policy, {"push-sum", "pairwise", "d-psgd"}));
    DPNODE_RETURN_IF_ERROR(t->Double("interval_s", &spec.gossip_interval_s, 1e-3, 1e4));
    DPNODE_RETURN_IF_ERROR(t->Double("step_time_s", &spec.step_time_s, 0, 1e4));
    DPNODE_RETURN_IF_ERROR(t->Double("horizon_s", &spec.horizon_s, 1e-3, 1e7));
    DPNODE_RETURN_IF_ERROR(t->Double("eval_interval_s", &spec.eval_interval_s, 1e-3, 1e7));
    DPNODE_RETURN_IF_ERROR(t->CheckUnknown());
  }
  {
    Result<Table> t = top.Sub("link");
    if (!t.ok()) return t.status();
    DPNODE_RETURN_IF_ERROR(t->String("latency", &spec.latency, {"constant", "uniform", "lognormal"}));
    DPNODE_RETURN_IF_ERROR(t->Double("latency_ms", &spec.latency_ms, 0, 1e6));
    DPNODE_RETURN_IF_ERROR(t->Double("latency_hi_ms", &spec.latency_hi_ms, 0, 1e6));
    DPNODE_RETURN_IF_ERROR(t->Double("sigma", &spec.latency_sigma, 0, 10));
    DPNODE_RETURN_IF_ERROR(t->Double("bandwidth_mbps", &spec.bandwidth_mbps, 0, 1e7));
    DPNODE_RETURN_IF_ERROR(t->Double("loss", &spec.loss, 0, 0.99));
    if (spec.latency == "uniform" && spec.latency_hi_ms < spec.latency_ms) {
      return t->Bad("latency_hi_ms", "must be >= latency_ms");
    }
    DPNODE_RETURN_IF_ERROR(t->CheckUnknown());
  }
  {
    Result<Table> t = top.Sub("crypto");
    if (!t.ok()) return t.status();
    DPNODE_RETURN_IF_ERROR(ParseCrypto(*t, spec.crypto));
  }
  {
    Result<Table> t = top.Sub("privacy");
    if (!t.ok()) return t.status();
    DPNODE_RETURN_IF_ERROR(t->Double("delta", &spec.delta, 1e-300, 0.999999));
    if (spec.delta <= 0) return t->Bad("delta", "must be > 0");
    DPNODE_RETURN_IF_ERROR(t->Int("batch", &spec.batch, 1, 1 << 24));
    DPNODE_RETURN_IF_ERROR(t->Double("epochs", &spec.epochs, 1e-3, 1e5));
    DPNODE_RETURN_IF_ERROR(t->Double("clip", &spec.clip, 1e-6, 1e6));
    DPNODE_RETURN_IF_ERROR(t->Double("learning_rate", &spec.learning_rate, 1e-9, 1e3));
    std::string acc = "rdp";
    DPNODE_RETURN_IF_ERROR(t->String("accountant", &acc, {"rdp", "prv"}));
    spec.accountant = acc == "rdp" ? privacy::AccountantKind::kRdp : privacy::AccountantKind::kPrv;
    DPNODE_RETURN_IF_ERROR(t->CheckUnknown());
  }
  {
    Result<Table> t = top.Sub("model");
    if (!t.ok()) return t.status();
    DPNODE_RETURN_IF_ERROR(t->String("kind", &spec.model, {"logistic", "torch_logistic", "mlp"}));
    if (const toml::node* h = t->Get("hidden")) {
      const toml::array* a = h->as_array();
      if (!a || a->empty()) return t->Bad("hidden", "must be a non-empty list of layer widths");
      for (const toml::node& e : *a) {
        if (!e.is_integer() || *e.value<int64_t>() < 1 || *e.value<int64_t>() > 65536) {
          return t->Bad("hidden", "layer widths must be integers in [1, 65536]");
        }
        spec.hidden.push_back(*e.value<int64_t>());
      }
    }
    if (spec.model == "mlp" && spec.hidden.empty()) return t->Bad("hidden", "required when kind = \"mlp\"");
    if (spec.model != "mlp" && !spec.hidden.empty()) return t->Bad("hidden", "only for kind = \"mlp\"");
    DPNODE_RETURN_IF_ERROR(t->CheckUnknown());
  }
  {
    Result<Table> t = top.Sub("faults");
    if (!t.ok()) return t.status();
    DPNODE_RETURN_IF_ERROR(ParseFaults(*t, spec));
  }
  {
    const toml::node* n = top.Get("arm");
    if (!n) return top.Bad("arm", "required: at least one [[arm]]");
    const toml::array* a = n->as_array();
    if (!a || a->empty()) return top.Bad("arm", "must be a non-empty array of tables ([[arm]])");
    std::set<std::string> names;
    for (size_t i = 0; i < a->size(); ++i) {
      const toml::table* at = (*a)[i].as_table();
      if (!at) return top.Bad("arm", "must be an array of tables ([[arm]])");
      Table t(at, "arm[" + std::to_string(i) + "]");
      ArmSpec arm;
      std::string kind;
      DPNODE_RETURN_IF_ERROR(t.String("kind", &kind, {"gossip", "local", "pooled"}, true));
      arm.kind = kind == "gossip" ? ArmKind::kGossip : kind == "local" ? ArmKind::kLocal : ArmKind::kPooled;
      DPNODE_RETURN_IF_ERROR(t.Bool("private", &arm.is_private));
      if (arm.is_private) {
        DPNODE_RETURN_IF_ERROR(t.Double("epsilon", &arm.epsilon, 1e-6, 1e4, true));
      } else if (t.Get("epsilon")) {
        return t.Bad("epsilon", "given for a non-private arm (private = false)");
      }
      arm.name = kind + (arm.is_private ? "_dp_eps" : "_nodp");
      if (arm.is_private) {
        std::ostringstream s;
        s << arm.epsilon;
        arm.name += s.str();
      }
      DPNODE_RETURN_IF_ERROR(t.String("topology", &arm.topology,
                          {"complete", "ring", "star", "torus", "erdos_renyi", "regular",
                           "watts_strogatz", "barabasi_albert", "edge_list"}));
      DPNODE_RETURN_IF_ERROR(t.Int("sites", &arm.sites, 1, 100000));
      if (arm.sites != 0 && spec.split == SplitKind::kSiteColumn) {
        return t.Bad("sites", "cannot override the data's own sites (data.split = \"site_column\")");
      }
      DPNODE_RETURN_IF_ERROR(t.String("name", &arm.name));
      if (arm.name.empty() || arm.name.find_first_of(",\"/\\\n") != std::string::npos) {
        return t.Bad("name", "must be non-empty without , \" / \\ or newlines");
      }
      if (!names.insert(arm.name).second) return t.Bad("name", "duplicate arm name '" + arm.name + "'");
      DPNODE_RETURN_IF_ERROR(t.CheckUnknown());
      spec.arms.push_back(arm);
    }
  }
  DPNODE_RETURN_IF_ERROR(top.CheckUnknown());
  return spec;
}

Result<ExperimentSpec> LoadExperiment(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot open experiment file " + path);
  std::ostringstream s;
  s << in.rdbuf();
  std::string base = std::filesystem::path(path).parent_path().string();
  if (base.empty()) base = ".";
  return ParseExperiment(s.str(), path, base);
}

namespace {

double Uniform01(Xoshiro256& rng) { return static_cast<double>(rng.Next() >> 11) * 0x1.0p-53; }

// Gamma(shape, 1) by Marsaglia-Tsang, boosted for shape < 1.
double Gamma(double shape, Xoshiro256& rng) {
  if (shape < 1) {
    const double u = std::max(Uniform01(rng), 1e-300);
    return Gamma(shape + 1, rng) * std::pow(u, 1.0 / shape);
  }
  const double d = shape - 1.0 / 3, c = 1 / std::sqrt(9 * d);
  for (;;) {
    double x, v;
    do {
      x = rng.Normal();
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const double u = Uniform01(rng);
    if (std::log(std::max(u, 1e-300)) < 0.5 * x * x + d - d * v + d * std::log(v)) return d * v;
  }
}

std::vector<double> Dirichlet(size_t n, double alpha, Xoshiro256& rng) {
  std::vector<double> p(n);
  double sum = 0;
  for (double& v : p) sum += (v = Gamma(alpha, rng));
  if (sum <= 0) {
    std::fill(p.begin(), p.end(), 1.0 / static_cast<double>(n));
  } else {
    for (double& v : p) v /= sum;
  }
  return p;
}

void Shuffle(std::vector<int64_t>& v, Xoshiro256& rng) {
  for (size_t i = v.size(); i > 1; --i) {
    const size_t j = static_cast<size_t>(rng.Next() % i);
    std::swap(v[i - 1], v[j]);
  }
}

// Cuts `rows` (already shuffled) into consecutive pieces by proportions `p`,
// largest-remainder rounding, so the pieces cover every row once.
void Cut(const std::vector<int64_t>& rows, const std::vector<double>& p,
         std::vector<std::vector<int64_t>>& out) {
  const size_t n = rows.size();
  std::vector<size_t> count(p.size());
  std::vector<std::pair<double, size_t>> rem;
  size_t given = 0;
  for (size_t s = 0; s < p.size(); ++s) {
    const double want = p[s] * static_cast<double>(n);
    count[s] = static_cast<size_t>(std::floor(want));
    given += count[s];
    rem.push_back({-(want - std::floor(want)), s});
  }
  std::sort(rem.begin(), rem.end());
  for (size_t i = 0; given < n; ++i, ++given) ++count[rem[i % rem.size()].second];
  size_t at = 0;
  for (size_t s = 0; s < p.size(); ++s) {
    for (size_t k = 0; k < count[s]; ++k) out[s].push_back(rows[at++]);
  }
}

}  // namespace

Result<std::vector<std::vector<int64_t>>> SplitSites(const ExperimentSpec& spec,
                                                     const learn::Dataset& data,
                                                     std::vector<std::string>* site_names) {
  std::vector<std::vector<int64_t>> out;
  site_names->clear();
  if (spec.split == SplitKind::kSiteColumn) {
    if (data.sites.empty()) {
      return Status::InvalidArgument(
          "experiment key 'data.split': \"site_column\" needs a schema with site_column");
    }
    std::map<std::string, size_t> index;
    for (int64_t r : data.train_rows) {
      const std::string& s = data.sites[static_cast<size_t>(r)];
      if (!index.count(s)) {
        index[s] = out.size();
        out.emplace_back();
        site_names->push_back(s);
      }
      out[index[s]].push_back(r);
    }
    if (spec.sites != 0 && spec.sites != out.size()) {
      return Status::InvalidArgument("experiment key 'data.sites': the data has " +
                                     std::to_string(out.size()) + " sites, not " +
                                     std::to_string(spec.sites));
    }
    return out;
  }
  const size_t n = spec.sites;
  out.resize(n);
  for (size_t s = 0; s < n; ++s) site_names->push_back("site" + std::to_string(s));
  Xoshiro256 rng(SeedTree(spec.seed).Named("split"));
  std::vector<int64_t> rows = data.train_rows;
  if (spec.split == SplitKind::kIid) {
    Shuffle(rows, rng);
    Cut(rows, std::vector<double>(n, 1.0 / static_cast<double>(n)), out);
  } else if (spec.split == SplitKind::kQuantity) {
    Shuffle(rows, rng);
    Cut(rows, Dirichlet(n, spec.alpha, rng), out);
  } else {
    int32_t classes = 0;
    for (int64_t r : rows) classes = std::max(classes, data.labels[static_cast<size_t>(r)] + 1);
    for (int32_t c = 0; c < classes; ++c) {
      std::vector<int64_t> of_class;
      for (int64_t r : rows) {
        if (data.labels[static_cast<size_t>(r)] == c) of_class.push_back(r);
      }
      Shuffle(of_class, rng);
      Cut(of_class, Dirichlet(n, spec.alpha, rng), out);
    }
  }
  for (size_t s = 0; s < n; ++s) {
    std::sort(out[s].begin(), out[s].end());
    if (out[s].empty()) {
      return Status::InvalidArgument("experiment key 'data.alpha': site " + std::to_string(s) +
                                     " got no training rows; raise alpha or lower data.sites");
    }
  }
  return out;
}

}  // namespace dpnode::sim
