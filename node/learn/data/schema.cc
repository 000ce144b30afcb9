// Schema parsing (toml++), validation, canonical serialisation, fingerprint.
#include "node/learn/data/schema.h"

#include <sodium.h>
#include <toml++/toml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <utility>

#include "base/check.h"
#include "node/learn/data/csv.h"

namespace dpnode::learn {

std::string_view TrimCell(std::string_view cell) {
  size_t b = 0, e = cell.size();
  while (b < e && (cell[b] == ' ' || cell[b] == '\t')) ++b;
  while (e > b && (cell[e - 1] == ' ' || cell[e - 1] == '\t')) --e;
  return cell.substr(b, e - b);
}

std::optional<double> ParseFiniteNumber(std::string_view cell) {
  if (!cell.empty() && cell[0] == '+') cell.remove_prefix(1);
  if (cell.empty()) return std::nullopt;
  // from_chars also reads "inf", "nan" and "infinity"; only digits, a sign,
  // a point and an exponent can start a number we accept.
  const char c0 = cell[0];
  if (!(c0 == '-' || c0 == '.' || (c0 >= '0' && c0 <= '9'))) return std::nullopt;
  double value = 0;
  const char* first = cell.data();
  const char* last = cell.data() + cell.size();
  const auto [ptr, ec] = std::from_chars(first, last, value, std::chars_format::general);
  if (ec != std::errc() || ptr != last || !std::isfinite(value)) return std::nullopt;
  return value;
}

std::string Level::Name() const {
  if (!numeric) return text;
  char buf[64];
  const double v = number == 0 ? 0.0 : number;  // "-0" would read oddly
  const auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, v);
  if (ec != std::errc()) return "?";
  return std::string(buf, ptr);
}

bool LevelMatches(const Level& level, std::string_view trimmed_cell) {
  if (!level.numeric) return trimmed_cell == level.text;
  const auto v = ParseFiniteNumber(trimmed_cell);
  return v.has_value() && *v == level.number;
}

namespace {

bool SameLevel(const Level& a, const Level& b) {
  if (a.numeric != b.numeric) return false;
  return a.numeric ? a.number == b.number : a.text == b.text;
}

std::string LevelForMessage(const Level& level) {
  return level.numeric ? level.Name() : "\"" + QuoteForMessage(level.text) + "\"";
}

std::string NumberForMessage(double v) { return Level{true, v, {}}.Name(); }

// Builds "<source>:<line>: <context>: <problem>" errors.
class Parser {
 public:
  explicit Parser(std::string source) : source_(std::move(source)) {}

  Status Error(const toml::source_region& where, const std::string& context,
               const std::string& problem) const {
    std::string msg = source_;
    if (where.begin.line > 0) msg += ":" + std::to_string(where.begin.line);
    msg += ": ";
    if (!context.empty()) msg += context + ": ";
    return Status::InvalidArgument(msg + problem);
  }

  // Refuses any key of `table` outside `allowed`.
  Status CheckKeys(const toml::table& table, const std::set<std::string>& allowed,
                   const std::string& context) const {
    for (auto&& [key, node] : table) {
      (void)node;
      if (allowed.count(std::string(key.str())) == 0) {
        std::string list;
        for (const auto& k : allowed) list += (list.empty() ? "" : ", ") + k;
        return Error(key.source(), context,
                     "unknown key '" + std::string(key.str()) + "' (known: " + list + ")");
      }
    }
    return Status::Ok();
  }

  Result<std::string> String(const toml::node& node, const std::string& context,
                             const std::string& key) const {
    if (!node.is_string()) return Error(node.source(), context, "'" + key + "' must be a string");
    return std::string(node.as_string()->get());
  }

  Result<double> Number(const toml::node& node, const std::string& context,
                        const std::string& key) const {
    double v = 0;
    if (node.is_integer()) {
      v = static_cast<double>(node.as_integer()->get());
    } else if (node.is_floating_point()) {
      v = node.as_floating_point()->get();
    } else {
      return Error(node.source(), context, "'" + key + "' must be a number");
    }
    if (!std::isfinite(v)) return Error(node.source(), context, "'" + key + "' must be finite");
    return v == 0 ? 0.0 : v;  // -0 and 0 mean the same
  }

  Result<bool> Bool(const toml::node& node, const std::string& context,
                    const std::string& key) const {
    if (!node.is_boolean())
      return Error(node.source(), context, "'" + key + "' must be true or false");
    return node.as_boolean()->get();
  }

  Result<Level> ParseLevel(const toml::node& node, const std::string& context,
                           const std::string& key) const {
    Level level;
    if (node.is_string()) {
      level.text = std::string(node.as_string()->get());
      if (TrimCell(level.text) != level.text) {
        return Error(node.source(), context,
                     "'" + key + "' value \"" + QuoteForMessage(level.text) +
                         "\" has surrounding spaces, which cells never match (they are trimmed)");
      }
      return level;
    }
    if (node.is_integer() || node.is_floating_point()) {
      auto v = Number(node, context, key);
      if (!v.ok()) return v.status();
      level.numeric = true;
      level.number = *v;
      return level;
    }
    return Error(node.source(), context, "'" + key + "' values must be strings or numbers");
  }

  // A list of strings, returned sorted and without duplicates.
  Result<std::vector<std::string>> StringSet(const toml::node& node, const std::string& context,
                                             const std::string& key) const {
    const toml::array* arr = node.as_array();
    if (arr == nullptr)
      return Error(node.source(), context, "'" + key + "' must be a list of strings");
    std::set<std::string> out;
    for (const toml::node& item : *arr) {
      if (!item.is_string()) {
        return Error(item.source(), context, "'" + key + "' must be a list of strings");
      }
      out.insert(std::string(TrimCell(item.as_string()->get())));
    }
    return std::vector<std::string>(out.begin(), out.end());
  }

  Result<std::vector<Level>> LevelList(const toml::node& node, const std::string& context,
                                       const std::string& key) const {
    const toml::array* arr = node.as_array();
    if (arr == nullptr || arr->empty()) {
      return Error(node.source(), context, "'" + key + "' must be a non-empty list");
    }
    std::vector<Level> out;
    for (const toml::node& item : *arr) {
      auto level = ParseLevel(item, context, key);
      if (!level.ok()) return level.status();
      if (!out.empty() && out[0].numeric != level->numeric) {
        return Error(item.source(), context,
                     "'" + key + "' mixes numbers and strings; use one kind");
      }
      for (const Level& seen : out) {
        if (SameLevel(seen, *level)) {
          return Error(item.source(), context,
                       "'" + key + "' lists " + LevelForMessage(*level) + " twice");
        }
      }
      out.push_back(*level);
    }
    return out;
  }

  // Index of the level equal to `node` among `levels`.
  Result<size_t> LevelIndex(const toml::node& node, const std::vector<Level>& levels,
                            const std::string& context, const std::string& key) const {
    auto level = ParseLevel(node, context, key);
    if (!level.ok()) return level.status();
    for (size_t i = 0; i < levels.size(); ++i) {
      if (SameLevel(levels[i], *level)) return i;
    }
    return Error(node.source(), context,
                 "'" + key + "' " + LevelForMessage(*level) + " is not one of the levels");
  }

  Result<ColumnSpec> ParseColumn(const toml::node& node) const;
  Status ParseLabel(const toml::node& node, LabelSpec* label) const;
  Status ParseSplit(const toml::node& node, SplitSpec* split) const;

 private:
  std::string source_;
};

Result<ColumnSpec> Parser::ParseColumn(const toml::node& node) const {
  const toml::table* t = node.as_table();
  if (t == nullptr) return Error(node.source(), "", "each [[column]] entry must be a table");
  ColumnSpec col;
  const toml::node* name = t->get("name");
  if (name == nullptr) return Error(node.source(), "[[column]]", "missing key 'name'");
  auto name_s = String(*name, "[[column]]", "name");
  if (!name_s.ok()) return name_s.status();
  if (name_s->empty()) return Error(name->source(), "[[column]]", "'name' must not be empty");
  col.name = *name_s;
  const std::string ctx = "column '" + QuoteForMessage(col.name) + "'";

  const toml::node* type = t->get("type");
  if (type == nullptr)
    return Error(node.source(), ctx, "missing key 'type' (numeric or categorical)");
  auto type_s = String(*type, ctx, "type");
  if (!type_s.ok()) return type_s.status();
  if (*type_s == "numeric") {
    col.type = ColumnType::kNumeric;
    DPNODE_RETURN_IF_ERROR(CheckKeys(
        *t, {"name", "type", "min", "max", "fill", "missing", "missing_values", "indicator"}, ctx));
  } else if (*type_s == "categorical") {
    col.type = ColumnType::kCategorical;
    DPNODE_RETURN_IF_ERROR(CheckKeys(*t,
                                     {"name", "type", "levels", "unknown", "reference", "fill",
                                      "missing", "missing_values", "indicator"},
                                     ctx));
  } else {
    return Error(
        type->source(), ctx,
        "'type' must be \"numeric\" or \"categorical\", not \"" + QuoteForMessage(*type_s) + "\"");
  }

  if (const toml::node* m = t->get("missing")) {
    auto v = StringSet(*m, ctx, "missing");
    if (!v.ok()) return v.status();
    col.missing = std::move(*v);
  }
  if (const toml::node* m = t->get("missing_values")) {
    const toml::array* arr = m->as_array();
    if (arr == nullptr)
      return Error(m->source(), ctx, "'missing_values' must be a list of numbers");
    std::set<double> values;
    for (const toml::node& item : *arr) {
      auto v = Number(item, ctx, "missing_values");
      if (!v.ok()) return v.status();
      values.insert(*v);
    }
    col.missing_values.assign(values.begin(), values.end());
  }

  if (col.type == ColumnType::kNumeric) {
    const toml::node* mn = t->get("min");
    const toml::node* mx = t->get("max");
    if (mn == nullptr) return Error(node.source(), ctx, "missing key 'min'");
    if (mx == nullptr) return Error(node.source(), ctx, "missing key 'max'");
    auto min_v = Number(*mn, ctx, "min");
    if (!min_v.ok()) return min_v.status();
    auto max_v = Number(*mx, ctx, "max");
    if (!max_v.ok()) return max_v.status();
    if (!(*min_v < *max_v)) {
      return Error(mx->source(), ctx,
                   "'min' (" + NumberForMessage(*min_v) + ") must be below 'max' (" +
                       NumberForMessage(*max_v) + ")");
    }
    col.min = *min_v;
    col.max = *max_v;
    if (const toml::node* f = t->get("fill")) {
      auto fill = Number(*f, ctx, "fill");
      if (!fill.ok()) return fill.status();
      if (*fill < col.min || *fill > col.max) {
        return Error(f->source(), ctx,
                     "'fill' (" + NumberForMessage(*fill) + ") is outside [min, max]");
      }
      col.fill = *fill;
    }
  } else {
    const toml::node* lv = t->get("levels");
    if (lv == nullptr) return Error(node.source(), ctx, "missing key 'levels'");
    auto levels = LevelList(*lv, ctx, "levels");
    if (!levels.ok()) return levels.status();
    col.levels = std::move(*levels);
    if (!col.missing_values.empty() && !col.levels[0].numeric) {
      return Error(t->get("missing_values")->source(), ctx,
                   "'missing_values' needs numeric levels; list missing texts in 'missing'");
    }
    if (const toml::node* u = t->get("unknown")) {
      auto s = String(*u, ctx, "unknown");
      if (!s.ok()) return s.status();
      if (*s == "error") {
        col.unknown = UnknownLevel::kError;
      } else if (*s == "other") {
        col.unknown = UnknownLevel::kOther;
      } else {
        return Error(u->source(), ctx, "'unknown' must be \"error\" or \"other\"");
      }
    }
    if (const toml::node* r = t->get("reference")) {
      auto idx = LevelIndex(*r, col.levels, ctx, "reference");
      if (!idx.ok()) return idx.status();
      col.reference = *idx;
    }
    if (const toml::node* f = t->get("fill")) {
      auto idx = LevelIndex(*f, col.levels, ctx, "fill");
      if (!idx.ok()) return idx.status();
      col.fill_level = *idx;
    }
    for (const std::string& m : col.missing) {
      for (const Level& level : col.levels) {
        if (LevelMatches(level, m)) {
          return Error(t->get("missing")->source(), ctx,
                       "missing text \"" + QuoteForMessage(m) + "\" is also a level");
        }
      }
    }
    for (double m : col.missing_values) {
      for (const Level& level : col.levels) {
        if (level.numeric && level.number == m) {
          return Error(t->get("missing_values")->source(), ctx,
                       "missing value " + NumberForMessage(m) + " is also a level");
        }
      }
    }
  }

  const toml::node* fill_node = t->get("fill");
  if (fill_node != nullptr && !col.CanBeMissing()) {
    return Error(fill_node->source(), ctx, "'fill' needs 'missing' or 'missing_values'");
  }
  if (col.type == ColumnType::kNumeric && col.CanBeMissing() && !col.fill) {
    return Error(node.source(), ctx,
                 "missing key 'fill' (the value a missing cell stands for; the column declares "
                 "missing values)");
  }
  bool indicator = true;
  if (const toml::node* ind = t->get("indicator")) {
    auto b = Bool(*ind, ctx, "indicator");
    if (!b.ok()) return b.status();
    if (*b && !col.CanBeMissing()) {
      return Error(ind->source(), ctx, "'indicator' needs 'missing' or 'missing_values'");
    }
    indicator = *b;
  }
  col.indicator = indicator && col.CanBeMissing();
  return col;
}

Status Parser::ParseLabel(const toml::node& node, LabelSpec* label) const {
  const std::string ctx = "[label]";
  const toml::table* t = node.as_table();
  if (t == nullptr) return Error(node.source(), "", "'label' must be a table");
  DPNODE_RETURN_IF_ERROR(
      CheckKeys(*t, {"column", "positive", "negative", "classes", "missing", "drop_missing"}, ctx));
  const toml::node* column = t->get("column");
  if (column == nullptr) return Error(node.source(), ctx, "missing key 'column'");
  auto col = String(*column, ctx, "column");
  if (!col.ok()) return col.status();
  if (col->empty()) return Error(column->source(), ctx, "'column' must not be empty");
  label->column = *col;

  const toml::node* pos = t->get("positive");
  const toml::node* neg = t->get("negative");
  const toml::node* classes = t->get("classes");
  if (classes != nullptr) {
    if (pos != nullptr || neg != nullptr) {
      return Error(classes->source(), ctx,
                   "give either 'classes' or 'positive'/'negative', not both");
    }
    auto list = LevelList(*classes, ctx, "classes");
    if (!list.ok()) return list.status();
    if (list->size() < 2)
      return Error(classes->source(), ctx, "'classes' needs at least two classes");
    label->classes = std::move(*list);
  } else {
    if (pos == nullptr) {
      return Error(node.source(), ctx,
                   "missing key 'positive' (binary) or 'classes' (multi-class)");
    }
    if (neg == nullptr) {
      return Error(pos->source(), ctx,
                   "missing key 'negative': a binary label names both classes, so that a "
                   "misspelt value is an error rather than a negative");
    }
    auto p = ParseLevel(*pos, ctx, "positive");
    if (!p.ok()) return p.status();
    auto n = ParseLevel(*neg, ctx, "negative");
    if (!n.ok()) return n.status();
    if (p->numeric != n->numeric) {
      return Error(pos->source(), ctx, "'positive' and 'negative' must both be numbers or strings");
    }
    if (SameLevel(*p, *n)) return Error(pos->source(), ctx, "'positive' equals 'negative'");
    label->classes = {*n, *p};
  }
  if (const toml::node* m = t->get("missing")) {
    auto v = StringSet(*m, ctx, "missing");
    if (!v.ok()) return v.status();
    label->missing = std::move(*v);
    for (const std::string& s : label->missing) {
      for (const Level& c : label->classes) {
        if (LevelMatches(c, s)) {
          return Error(m->source(), ctx,
                       "missing text \"" + QuoteForMessage(s) + "\" is also a class");
        }
      }
    }
  }
  if (const toml::node* d = t->get("drop_missing")) {
    auto b = Bool(*d, ctx, "drop_missing");
    if (!b.ok()) return b.status();
    if (*b && label->missing.empty()) {
      return Error(d->source(), ctx, "'drop_missing' needs 'missing' (which texts mean no label)");
    }
    label->drop_missing = *b;
  }
  return Status::Ok();
}

Status Parser::ParseSplit(const toml::node& node, SplitSpec* split) const {
  const std::string ctx = "[split]";
  const toml::table* t = node.as_table();
  if (t == nullptr) return Error(node.source(), "", "'split' must be a table");
  DPNODE_RETURN_IF_ERROR(CheckKeys(
      *t, {"column", "train", "test", "unassigned", "test_fraction", "seed", "stratify"}, ctx));
  const toml::node* column = t->get("column");
  const toml::node* fraction = t->get("test_fraction");
  if ((column == nullptr) == (fraction == nullptr)) {
    return Error(node.source(), ctx,
                 "give either 'column' (a column holding train/test) or 'test_fraction' and "
                 "'seed' (a seeded split)");
  }
  if (column != nullptr) {
    for (const char* k : {"seed", "stratify"}) {
      if (const toml::node* x = t->get(k)) {
        return Error(x->source(), ctx, std::string("'") + k + "' belongs to a seeded split");
      }
    }
    split->kind = SplitKind::kColumn;
    auto col = String(*column, ctx, "column");
    if (!col.ok()) return col.status();
    if (col->empty()) return Error(column->source(), ctx, "'column' must not be empty");
    split->column = *col;
    const toml::node* train = t->get("train");
    const toml::node* test = t->get("test");
    if (train == nullptr) return Error(node.source(), ctx, "missing key 'train'");
    if (test == nullptr) return Error(node.source(), ctx, "missing key 'test'");
    auto tr = StringSet(*train, ctx, "train");
    if (!tr.ok()) return tr.status();
    auto te = StringSet(*test, ctx, "test");
    if (!te.ok()) return te.status();
    if (tr->empty()) return Error(train->source(), ctx, "'train' must not be empty");
    if (te->empty()) return Error(test->source(), ctx, "'test' must not be empty");
    for (const std::string& s : *tr) {
      if (std::binary_search(te->begin(), te->end(), s)) {
        return Error(test->source(), ctx, "\"" + QuoteForMessage(s) + "\" is both train and test");
      }
    }
    split->train_values = std::move(*tr);
    split->test_values = std::move(*te);
    if (const toml::node* u = t->get("unassigned")) {
      auto s = String(*u, ctx, "unassigned");
      if (!s.ok()) return s.status();
      static const std::map<std::string, Unassigned> kNames = {{"error", Unassigned::kError},
                                                               {"drop", Unassigned::kDrop},
                                                               {"train", Unassigned::kTrain},
                                                               {"test", Unassigned::kTest}};
      const auto it = kNames.find(*s);
      if (it == kNames.end()) {
        return Error(u->source(), ctx,
                     "'unassigned' must be \"error\", \"drop\", \"train\" or \"test\"");
      }
      split->unassigned = it->second;
    }
    return Status::Ok();
  }
  for (const char* k : {"train", "test", "unassigned"}) {
    if (const toml::node* x = t->get(k)) {
      return Error(x->source(), ctx, std::string("'") + k + "' belongs to a column split");
    }
  }
  split->kind = SplitKind::kSeeded;
  auto f = Number(*fraction, ctx, "test_fraction");
  if (!f.ok()) return f.status();
  if (!(*f > 0 && *f < 1))
    return Error(fraction->source(), ctx, "'test_fraction' must be in (0, 1)");
  split->test_fraction = *f;
  const toml::node* seed = t->get("seed");
  if (seed == nullptr) {
    return Error(node.source(), ctx, "missing key 'seed' (a seeded split must say its seed)");
  }
  if (!seed->is_integer() || seed->as_integer()->get() < 0) {
    return Error(seed->source(), ctx, "'seed' must be a non-negative integer");
  }
  split->seed = static_cast<uint64_t>(seed->as_integer()->get());
  if (const toml::node* s = t->get("stratify")) {
    auto b = Bool(*s, ctx, "stratify");
    if (!b.ok()) return b.status();
    split->stratify = *b;
  }
  return Status::Ok();
}

// Canonical serialisation helpers.
void PutString(std::string* out, std::string_view s) {
  *out += std::to_string(s.size());
  *out += ':';
  out->append(s.data(), s.size());
  *out += ' ';
}

void PutNumber(std::string* out, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%a ", v == 0 ? 0.0 : v);
  *out += buf;
}

void PutLevel(std::string* out, const Level& level) {
  if (level.numeric) {
    *out += "n";
    PutNumber(out, level.number);
  } else {
    *out += "t";
    PutString(out, level.text);
  }
}

void PutStrings(std::string* out, const std::vector<std::string>& v) {
  *out += std::to_string(v.size()) + " ";
  for (const auto& s : v) PutString(out, s);
}

void PutIndex(std::string* out, const std::optional<size_t>& i) {
  *out += i ? std::to_string(*i) + " " : std::string("- ");
}

}  // namespace

Result<Schema> ParseSchema(std::string_view toml_text, std::string_view source_name) {
  const std::string source(source_name);
  Parser p(source);
  toml::table root;
  try {
    root = toml::parse(toml_text, source_name);
  } catch (const toml::parse_error& e) {
    return p.Error(e.source(), "", "TOML syntax: " + std::string(e.description()));
  }

  Schema schema;
  DPNODE_RETURN_IF_ERROR(p.CheckKeys(root,
                                     {"schema_version", "site_column", "ignore_columns",
                                      "unknown_columns", "label", "split", "column"},
                                     ""));
  if (const toml::node* v = root.get("schema_version")) {
    if (!v->is_integer() || v->as_integer()->get() != 1) {
      return p.Error(v->source(), "",
                     "'schema_version' must be 1 (the only version this build reads)");
    }
  }
  if (const toml::node* s = root.get("site_column")) {
    auto v = p.String(*s, "", "site_column");
    if (!v.ok()) return v.status();
    if (v->empty()) return p.Error(s->source(), "", "'site_column' must not be empty");
    schema.site_column = *v;
  }
  if (const toml::node* s = root.get("ignore_columns")) {
    auto v = p.StringSet(*s, "", "ignore_columns");
    if (!v.ok()) return v.status();
    schema.ignore_columns = std::move(*v);
  }
  if (const toml::node* s = root.get("unknown_columns")) {
    auto v = p.String(*s, "", "unknown_columns");
    if (!v.ok()) return v.status();
    if (*v == "error") {
      schema.ignore_unknown_columns = false;
    } else if (*v == "ignore") {
      schema.ignore_unknown_columns = true;
    } else {
      return p.Error(s->source(), "", "'unknown_columns' must be \"error\" or \"ignore\"");
    }
  }
  const toml::node* label = root.get("label");
  if (label == nullptr) {
    return Status::InvalidArgument(source + ": missing table [label] (which column is the label)");
  }
  DPNODE_RETURN_IF_ERROR(p.ParseLabel(*label, &schema.label));
  if (const toml::node* s = root.get("split")) {
    DPNODE_RETURN_IF_ERROR(p.ParseSplit(*s, &schema.split));
  }
  const toml::node* columns = root.get("column");
  if (columns == nullptr) {
    return Status::InvalidArgument(source + ": no [[column]] entries (the schema has no inputs)");
  }
  const toml::array* arr = columns->as_array();
  if (arr == nullptr) {
    return p.Error(columns->source(), "", "'column' must be an array of tables ([[column]])");
  }

  // Every CSV column the schema names, so that no column has two roles.
  std::map<std::string, std::string> roles;
  auto claim = [&](const std::string& name, const std::string& role,
                   const toml::source_region& where) -> Status {
    const auto [it, fresh] = roles.emplace(name, role);
    if (!fresh) {
      const std::string roles_text =
          it->second == role ? "twice as " + role : "as " + it->second + " and as " + role;
      return p.Error(where, "",
                     "column '" + QuoteForMessage(name) + "' is named twice (" + roles_text + ")");
    }
    return Status::Ok();
  };
  DPNODE_RETURN_IF_ERROR(claim(schema.label.column, "the label", label->source()));
  if (!schema.site_column.empty()) {
    DPNODE_RETURN_IF_ERROR(
        claim(schema.site_column, "the site column", root.get("site_column")->source()));
  }
  if (schema.split.kind == SplitKind::kColumn) {
    DPNODE_RETURN_IF_ERROR(
        claim(schema.split.column, "the split column", root.get("split")->source()));
  }
  for (const std::string& name : schema.ignore_columns) {
    DPNODE_RETURN_IF_ERROR(claim(name, "an ignored column", root.get("ignore_columns")->source()));
  }
  for (const toml::node& entry : *arr) {
    auto col = p.ParseColumn(entry);
    if (!col.ok()) return col.status();
    DPNODE_RETURN_IF_ERROR(claim(col->name, "an input", entry.source()));
    schema.columns.push_back(std::move(*col));
  }
  if (schema.columns.empty()) {
    return p.Error(columns->source(), "", "no [[column]] entries (the schema has no inputs)");
  }
  // Feature names must be unique too: a column "chol_missing" would collide
  // with the indicator of a column "chol".
  std::set<std::string> feature_names;
  for (size_t i = 0; i < schema.columns.size(); ++i) {
    Schema one;
    one.columns = {schema.columns[i]};
    for (const std::string& f : FeatureNames(one)) {
      if (!feature_names.insert(f).second) {
        return p.Error((*arr)[i].source(),
                       "column '" + QuoteForMessage(schema.columns[i].name) + "'",
                       "feature name '" + QuoteForMessage(f) + "' is produced twice");
      }
    }
  }
  return schema;
}

Result<Schema> LoadSchemaFile(const std::string& path) {
  constexpr int64_t kMaxSchemaBytes = int64_t{1} << 20;
  auto bytes = ReadFileCapped(path, kMaxSchemaBytes);
  if (!bytes.ok()) return bytes.status();
  return ParseSchema(*bytes, path);
}

std::vector<std::string> FeatureNames(const Schema& schema) {
  std::vector<std::string> names;
  for (const ColumnSpec& col : schema.columns) {
    if (col.type == ColumnType::kNumeric) {
      names.push_back(col.name);
    } else {
      for (size_t i = 0; i < col.levels.size(); ++i) {
        if (col.reference && *col.reference == i) continue;
        names.push_back(col.name + "=" + col.levels[i].Name());
      }
      if (col.unknown == UnknownLevel::kOther) names.push_back(col.name + "=other");
    }
    if (col.indicator) names.push_back(col.name + "_missing");
  }
  return names;
}

std::string CanonicalSchema(const Schema& schema) {
  std::string out = "dpnode-data-schema\n";
  out += "version " + std::to_string(schema.version) + "\n";
  out += "site_column ";
  PutString(&out, schema.site_column);
  out += "\nignore_columns ";
  PutStrings(&out, schema.ignore_columns);
  out += "\nunknown_columns ";
  out += schema.ignore_unknown_columns ? "ignore" : "error";
  out += "\nlabel column ";
  PutString(&out, schema.label.column);
  out += "classes " + std::to_string(schema.label.classes.size()) + " ";
  for (const Level& c : schema.label.classes) PutLevel(&out, c);
  out += "missing ";
  PutStrings(&out, schema.label.missing);
  out += "drop_missing ";
  out += schema.label.drop_missing ? "1" : "0";
  out += "\nsplit ";
  const SplitSpec& s = schema.split;
  switch (s.kind) {
    case SplitKind::kNone:
      out += "none";
      break;
    case SplitKind::kColumn:
      out += "column ";
      PutString(&out, s.column);
      out += "train ";
      PutStrings(&out, s.train_values);
      out += "test ";
      PutStrings(&out, s.test_values);
      out += "unassigned " + std::to_string(static_cast<int>(s.unassigned));
      break;
    case SplitKind::kSeeded:
      out += "seeded test_fraction ";
      PutNumber(&out, s.test_fraction);
      out += "seed " + std::to_string(s.seed) + " stratify " + (s.stratify ? "1" : "0");
      break;
  }
  out += "\ncolumns " + std::to_string(schema.columns.size()) + "\n";
  for (const ColumnSpec& col : schema.columns) {
    out += "column ";
    PutString(&out, col.name);
    if (col.type == ColumnType::kNumeric) {
      out += "numeric min ";
      PutNumber(&out, col.min);
      out += "max ";
      PutNumber(&out, col.max);
      out += "fill ";
      if (col.fill) {
        PutNumber(&out, *col.fill);
      } else {
        out += "- ";
      }
    } else {
      out += "categorical levels " + std::to_string(col.levels.size()) + " ";
      for (const Level& l : col.levels) PutLevel(&out, l);
      out += "unknown ";
      out += col.unknown == UnknownLevel::kOther ? "other " : "error ";
      out += "reference ";
      PutIndex(&out, col.reference);
      out += "fill ";
      PutIndex(&out, col.fill_level);
    }
    out += "missing ";
    PutStrings(&out, col.missing);
    out += "missing_values " + std::to_string(col.missing_values.size()) + " ";
    for (double v : col.missing_values) PutNumber(&out, v);
    out += "indicator ";
    out += col.indicator ? "1" : "0";
    out += "\n";
  }
  return out;
}

SchemaFingerprint Fingerprint(const Schema& schema) {
  const std::string canonical = CanonicalSchema(schema);
  SchemaFingerprint fp{};
  // Idempotent and thread-safe; it only fails when the CPU cannot run libsodium.
  DPNODE_CHECK(sodium_init() >= 0, "libsodium failed to initialise");
  crypto_generichash(fp.data(), fp.size(), reinterpret_cast<const unsigned char*>(canonical.data()),
                     canonical.size(), nullptr, 0);
  return fp;
}

std::string FingerprintHex(const SchemaFingerprint& fingerprint) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : fingerprint) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xf]);
  }
  return out;
}

}  // namespace dpnode::learn
