// Tests of schema parsing, validation errors (with key and line), feature
// names and the fingerprint's stability and sensitivity.
#include "node/learn/data/schema.h"

#include <doctest/doctest.h>

#include <set>
#include <string>
#include <vector>

namespace dpnode::learn {
namespace {

bool Contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

// Replaces the one occurrence of `from` (which must exist) with `to`.
std::string Replace(std::string s, const std::string& from, const std::string& to) {
  const auto pos = s.find(from);
  REQUIRE_MESSAGE(pos != std::string::npos, from);
  return s.replace(pos, from.size(), to);
}

const char kBase[] = R"(site_column = "site"
ignore_columns = ["id", "note"]

[label]
column = "y"
negative = "no"
positive = "yes"
missing = ["", "NA"]
drop_missing = true

[split]
test_fraction = 0.25
seed = 7

[[column]]
name = "age"
type = "numeric"
min = 20
max = 90

[[column]]
name = "chol"
type = "numeric"
min = 100
max = 400
missing = ["", "?"]
missing_values = [0]
fill = 200

[[column]]
name = "cp"
type = "categorical"
levels = [1, 2, 3]
unknown = "other"
reference = 1
missing = ["?"]
)";

// The same schema written differently: other order of keys and tables,
// comments, inline tables, floats for integers, reordered sets.
const char kReformatted[] = R"(# a comment
ignore_columns = [ "note",   "id" ]   # order of a set is not meaning
site_column="site"
column = [
  { name = "age", type = "numeric", max = 90.0, min = 20 },
  { type = "numeric", name = "chol", fill = 200.0, missing_values = [0.0], missing = ["?", ""], max = 4e2, min = 100 },
  { name = "cp", type = "categorical", missing = ["?"], reference = 1.0, unknown = "other", levels = [1.0, 2, 3] },
]
split = { seed = 7, test_fraction = 0.25 }

[label]
drop_missing = true
missing = ["NA", ""]
positive = "yes"
negative = "no"
column = "y"
)";

TEST_CASE("a schema parses into columns, label, split and feature names") {
  auto s = ParseSchema(kBase, "s.toml");
  REQUIRE_MESSAGE(s.ok(), s.status().ToString());
  CHECK(s->site_column == "site");
  CHECK(s->ignore_columns == std::vector<std::string>{"id", "note"});
  CHECK(s->label.column == "y");
  REQUIRE(s->label.classes.size() == 2);
  CHECK(s->label.classes[0].text == "no");
  CHECK(s->label.classes[1].text == "yes");
  CHECK(s->label.missing == std::vector<std::string>{"", "NA"});
  CHECK(s->label.drop_missing);
  CHECK(s->split.kind == SplitKind::kSeeded);
  CHECK(s->split.test_fraction == 0.25);
  CHECK(s->split.seed == 7);
  CHECK(s->split.stratify);
  REQUIRE(s->columns.size() == 3);
  CHECK(s->columns[1].missing_values == std::vector<double>{0.0});
  CHECK(s->columns[1].fill == 200.0);
  CHECK(s->columns[1].indicator);
  CHECK(!s->columns[0].indicator);  // age cannot be missing
  CHECK(s->columns[2].reference == size_t{0});
  CHECK(FeatureNames(*s) == std::vector<std::string>{"age", "chol", "chol_missing", "cp=2", "cp=3",
                                                     "cp=other", "cp_missing"});
}

TEST_CASE("fingerprint is stable under reformatting") {
  auto a = ParseSchema(kBase, "a.toml");
  auto b = ParseSchema(kReformatted, "b.toml");
  REQUIRE_MESSAGE(a.ok(), a.status().ToString());
  REQUIRE_MESSAGE(b.ok(), b.status().ToString());
  CHECK(CanonicalSchema(*a) == CanonicalSchema(*b));
  CHECK(Fingerprint(*a) == Fingerprint(*b));
  CHECK(FingerprintHex(Fingerprint(*a)).size() == 64);
}

TEST_CASE("fingerprint changes with every semantic change") {
  auto base = ParseSchema(kBase, "s.toml");
  REQUIRE(base.ok());
  const SchemaFingerprint base_fp = Fingerprint(*base);
  const std::vector<std::pair<std::string, std::string>> edits = {
      {"site_column = \"site\"", "site_column = \"hospital\""},
      {"[\"id\", \"note\"]", "[\"id\"]"},
      {"column = \"y\"", "column = \"z\""},
      {"negative = \"no\"", "negative = \"No\""},
      {"negative = \"no\"\npositive = \"yes\"", "negative = \"yes\"\npositive = \"no\""},
      {"missing = [\"\", \"NA\"]", "missing = [\"\"]"},
      {"drop_missing = true", "drop_missing = false"},
      {"test_fraction = 0.25", "test_fraction = 0.3"},
      {"seed = 7", "seed = 8"},
      {"seed = 7", "seed = 7\nstratify = false"},
      {"min = 20", "min = 21"},
      {"max = 90", "max = 90.5"},
      {"fill = 200", "fill = 201"},
      {"missing_values = [0]", "missing_values = [0, -1]"},
      {"missing = [\"\", \"?\"]", "missing = [\"?\"]"},
      {"levels = [1, 2, 3]", "levels = [1, 3, 2]"},
      {"levels = [1, 2, 3]\nunknown = \"other\"\nreference = 1",
       "levels = [\"1\", \"2\", \"3\"]\nunknown = \"other\"\nreference = \"1\""},
      {"unknown = \"other\"", "unknown = \"error\""},
      {"reference = 1\n", ""},
      {"reference = 1\n", "reference = 1\nfill = 2\n"},
      {"missing = [\"?\"]\n", "missing = [\"?\"]\nindicator = false\n"},
      {"name = \"age\"", "name = \"Age\""},
      {"type = \"numeric\"\nmin = 20\nmax = 90", "type = \"categorical\"\nlevels = [20, 90]"},
  };
  std::set<SchemaFingerprint> seen = {base_fp};
  for (const auto& [from, to] : edits) {
    const std::string text = Replace(kBase, from, to);
    auto s = ParseSchema(text, "edit.toml");
    REQUIRE_MESSAGE(s.ok(), from, " -> ", to, ": ", s.status().ToString());
    const SchemaFingerprint fp = Fingerprint(*s);
    CHECK_MESSAGE(fp != base_fp, from, " -> ", to);
    CHECK_MESSAGE(seen.insert(fp).second, "two edits collide: ", from, " -> ", to);
  }
}

TEST_CASE("swapping column order changes the fingerprint") {
  const std::string a =
      "[label]\ncolumn = \"y\"\nnegative = 0\npositive = 1\n"
      "[[column]]\nname = \"p\"\ntype = \"numeric\"\nmin = 0\nmax = 1\n"
      "[[column]]\nname = \"q\"\ntype = \"numeric\"\nmin = 0\nmax = 1\n";
  const std::string b =
      "[label]\ncolumn = \"y\"\nnegative = 0\npositive = 1\n"
      "[[column]]\nname = \"q\"\ntype = \"numeric\"\nmin = 0\nmax = 1\n"
      "[[column]]\nname = \"p\"\ntype = \"numeric\"\nmin = 0\nmax = 1\n";
  auto sa = ParseSchema(a, "a.toml");
  auto sb = ParseSchema(b, "b.toml");
  REQUIRE(sa.ok());
  REQUIRE(sb.ok());
  CHECK(Fingerprint(*sa) != Fingerprint(*sb));
}

TEST_CASE("binary label sugar equals the two-class list") {
  const std::string head = "[[column]]\nname = \"p\"\ntype = \"numeric\"\nmin = 0\nmax = 1\n";
  auto sugar = ParseSchema(head + "[label]\ncolumn = \"y\"\nnegative = 0\npositive = 1\n", "a");
  auto list = ParseSchema(head + "[label]\ncolumn = \"y\"\nclasses = [0, 1]\n", "b");
  REQUIRE(sugar.ok());
  REQUIRE(list.ok());
  CHECK(Fingerprint(*sugar) == Fingerprint(*list));
}

struct BadCase {
  std::string what;
  std::string from;
  std::string to;
  std::string line;     // expected "s.toml:<n>:" prefix
  std::string mention;  // expected in the message
};

TEST_CASE("schema errors name the file, the line and the key") {
  // Line numbers refer to kBase after the edit; the edits keep line counts.
  const std::vector<BadCase> cases = {
      {"unknown top-level key", "site_column = \"site\"", "site_colum = \"site\"",
       "s.toml:1:", "unknown key 'site_colum'"},
      {"unknown column key", "max = 90", "maxx = 90", "s.toml:19:", "unknown key 'maxx'"},
      {"bad type", "max = 90", "max = \"90\"", "s.toml:19:", "'max' must be a number"},
      {"min >= max", "max = 90", "max = 20", "s.toml:19:", "'min' (20) must be below 'max' (20)"},
      {"duplicate column", "name = \"chol\"", "name = \"age\"",
       "s.toml:21:", "'age' is named twice"},
      {"column used as label too", "name = \"chol\"", "name = \"y\"",
       "s.toml:21:", "'y' is named twice"},
      {"unknown type", "type = \"categorical\"", "type = \"ordinal\"",
       "s.toml:32:", "'type' must be"},
      {"duplicate level", "levels = [1, 2, 3]", "levels = [1, 2, 2.0]",
       "s.toml:33:", "lists 2 twice"},
      {"mixed levels", "levels = [1, 2, 3]", "levels = [1, \"2\", 3]", "s.toml:33:", "mixes"},
      {"reference not a level", "reference = 1", "reference = 4",
       "s.toml:35:", "'reference' 4 is not one of the levels"},
      {"fill outside range", "fill = 200", "fill = 500", "s.toml:28:", "'fill' (500) is outside"},
      {"missing numeric fill", "fill = 200", "# no fill", "s.toml:21:", "missing key 'fill'"},
      {"non-finite number", "min = 20", "min = -inf", "s.toml:18:", "'min' must be finite"},
      {"bad unknown policy", "unknown = \"other\"", "unknown = \"ignore\"",
       "s.toml:34:", "'unknown' must be"},
      {"label without negative", "negative = \"no\"", "# none",
       "s.toml:7:", "missing key 'negative'"},
      {"positive equals negative", "positive = \"yes\"", "positive = \"no\"",
       "s.toml:7:", "'positive' equals 'negative'"},
      {"label missing also a class", "missing = [\"\", \"NA\"]", "missing = [\"\", \"no\"]",
       "s.toml:8:", "is also a class"},
      {"split fraction", "test_fraction = 0.25", "test_fraction = 1.5",
       "s.toml:12:", "'test_fraction' must be in (0, 1)"},
      {"split without seed", "seed = 7", "# no seed", "s.toml:11:", "missing key 'seed'"},
      {"split mixes kinds", "seed = 7", "seed = 7\ncolumn = \"s\"",
       "s.toml:11:", "give either 'column'"},
      {"TOML syntax", "max = 90", "max = = 90", "s.toml:19:", "TOML syntax"},
      {"indicator without missing", "max = 90", "max = 90\nindicator = true",
       "s.toml:20:", "'indicator' needs"},
      {"version", "site_column = \"site\"", "schema_version = 2",
       "s.toml:1:", "'schema_version' must be 1"},
  };
  for (const BadCase& c : cases) {
    auto s = ParseSchema(Replace(kBase, c.from, c.to), "s.toml");
    REQUIRE_MESSAGE(!s.ok(), c.what);
    CHECK_MESSAGE(s.status().code() == StatusCode::kInvalidArgument, c.what);
    CHECK_MESSAGE(Contains(s.status().message(), c.line), c.what, ": ", s.status().message());
    CHECK_MESSAGE(Contains(s.status().message(), c.mention), c.what, ": ", s.status().message());
  }
}

TEST_CASE("a schema without a label or without columns is refused") {
  auto no_label =
      ParseSchema("[[column]]\nname = \"p\"\ntype = \"numeric\"\nmin = 0\nmax = 1\n", "s");
  REQUIRE(!no_label.ok());
  CHECK(Contains(no_label.status().message(), "missing table [label]"));
  auto no_columns = ParseSchema("[label]\ncolumn = \"y\"\nclasses = [0, 1]\n", "s");
  REQUIRE(!no_columns.ok());
  CHECK(Contains(no_columns.status().message(), "no [[column]] entries"));
}

TEST_CASE("colliding feature names are refused") {
  auto s = ParseSchema(
      "[label]\ncolumn = \"y\"\nclasses = [0, 1]\n"
      "[[column]]\nname = \"a\"\ntype = \"numeric\"\nmin = 0\nmax = 1\nmissing = [\"\"]\nfill = 0\n"
      "[[column]]\nname = \"a_missing\"\ntype = \"numeric\"\nmin = 0\nmax = 1\n",
      "s.toml");
  REQUIRE(!s.ok());
  CHECK(Contains(s.status().message(), "s.toml:11:"));
  CHECK(Contains(s.status().message(), "'a_missing' is produced twice"));
}

TEST_CASE("numbers and levels: finite decimal only, shortest names") {
  CHECK(ParseFiniteNumber("1.5") == 1.5);
  CHECK(ParseFiniteNumber("-2e3") == -2000.0);
  CHECK(ParseFiniteNumber("+3") == 3.0);
  CHECK(ParseFiniteNumber(".5") == 0.5);
  CHECK(!ParseFiniteNumber("nan"));
  CHECK(!ParseFiniteNumber("inf"));
  CHECK(!ParseFiniteNumber("-inf"));
  CHECK(!ParseFiniteNumber("1e999"));
  CHECK(!ParseFiniteNumber("0x10"));
  CHECK(!ParseFiniteNumber("1.5x"));
  CHECK(!ParseFiniteNumber(""));
  CHECK(Level{true, 1.0, {}}.Name() == "1");
  CHECK(Level{true, 0.1, {}}.Name() == "0.1");
  CHECK(LevelMatches(Level{true, 1.0, {}}, "1.0"));
  CHECK(LevelMatches(Level{true, 1.0, {}}, "1"));
  CHECK(!LevelMatches(Level{false, 0, "1"}, "1.0"));
}

}  // namespace
}  // namespace dpnode::learn
