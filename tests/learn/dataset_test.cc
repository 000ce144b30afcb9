// Tests of loading a CSV through a schema on small hand-made inputs: the
// encoding (values computed by hand), row drops and their counts, splits, and
// every malformed-file case naming the line and the column.
#include "node/learn/data/dataset.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace dpnode::learn {
namespace {

bool Contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

Schema MustParse(const std::string& toml) {
  auto s = ParseSchema(toml, "test.toml");
  REQUIRE_MESSAGE(s.ok(), s.status().ToString());
  return *s;
}

const char kEncodingSchema[] = R"(
ignore_columns = ["junk"]
[label]
column = "y"
classes = ["a", "b", "c"]
missing = [""]
drop_missing = true

[[column]]
name = "x"
type = "numeric"
min = -10
max = 30
missing = ["", "NA"]
missing_values = [-999]
fill = 10

[[column]]
name = "k"
type = "categorical"
levels = ["red", "green", "blue"]
unknown = "other"
missing = ["?"]
fill = "green"

[[column]]
name = "b"
type = "categorical"
levels = [0, 1]
reference = 0
)";

TEST_CASE("encoding: clipping, scaling, one-hot, other, missing fill and indicators") {
  const Schema schema = MustParse(kEncodingSchema);
  const std::string csv =
      "y,x,k,b,junk\n"
      "a,0,red,0,zzz\n"       // line 2
      "b,-20,blue,1,\n"       // 3: x clipped up to -10
      "c,50,\"pink\",1.0,\n"  // 4: x clipped down to 30; unknown level -> other
      "a,NA,?,0,\n"           // 5: both missing -> fills
      ",5,red,0,\n"           // 6: no label -> dropped
      "b,-999, green ,1,\n"   // 7: sentinel -> missing; spaces trimmed
      "c,3,red,0,\n";         // 8
  auto d = ParseDataset(schema, csv, "enc.csv");
  REQUIRE_MESSAGE(d.ok(), d.status().ToString());
  CHECK(d->feature_names == std::vector<std::string>{"x", "x_missing", "k=red", "k=green", "k=blue",
                                                     "k=other", "k_missing", "b=1"});
  REQUIRE(d->dim == 8);
  REQUIRE(d->rows == 6);
  CHECK(d->features.size() == 48);
  // By hand: x' = (clip(x, -10, 30) + 10) / 40.
  const std::vector<std::vector<float>> want = {
      {0.25f, 0, 1, 0, 0, 0, 0, 0},   // 10/40
      {0.0f, 0, 0, 0, 1, 0, 0, 1},    // clipped to -10
      {1.0f, 0, 0, 0, 0, 1, 0, 1},    // clipped to 30; "pink" is other; 1.0 matches level 1
      {0.5f, 1, 0, 1, 0, 0, 1, 0},    // fill 10 -> 20/40; fill level green
      {0.5f, 1, 0, 1, 0, 0, 0, 1},    // -999 is missing -> fill
      {0.325f, 0, 1, 0, 0, 0, 0, 0},  // 13/40
  };
  for (int64_t r = 0; r < 6; ++r) {
    for (int64_t f = 0; f < 8; ++f) {
      CHECK_MESSAGE(d->at(r, f) == want[static_cast<size_t>(r)][static_cast<size_t>(f)], "row ", r,
                    " feature ", d->feature_names[static_cast<size_t>(f)]);
    }
  }
  CHECK(d->labels == std::vector<int32_t>{0, 1, 2, 0, 1, 2});
  CHECK(d->class_names == std::vector<std::string>{"a", "b", "c"});
  CHECK(d->lines == std::vector<int64_t>{2, 3, 4, 5, 7, 8});
  CHECK(d->report.records == 7);
  CHECK(d->report.rows == 6);
  CHECK(d->report.dropped_missing_label == 1);
  CHECK(d->train_rows == std::vector<int64_t>{0, 1, 2, 3, 4, 5});
  CHECK(d->test_rows.empty());
  CHECK(d->sites.empty());
}

TEST_CASE("categorical missing without a fill leaves the one-hot all zero") {
  const Schema schema = MustParse(R"(
[label]
column = "y"
classes = [0, 1]
[[column]]
name = "k"
type = "categorical"
levels = [1, 2]
missing = [""]
missing_values = [0]
)");
  auto d = ParseDataset(schema, "k,y\n,0\n0,1\n2,1\n", "m.csv");
  REQUIRE_MESSAGE(d.ok(), d.status().ToString());
  REQUIRE(d->dim == 3);  // k=1, k=2, k_missing
  CHECK(d->features == std::vector<float>{0, 0, 1, 0, 0, 1, 0, 1, 0});
}

TEST_CASE("indicator = false keeps the fill but drops the indicator feature") {
  const Schema schema = MustParse(R"(
[label]
column = "y"
classes = [0, 1]
[[column]]
name = "x"
type = "numeric"
min = 0
max = 4
missing = [""]
fill = 1
indicator = false
)");
  auto d = ParseDataset(schema, "x,y\n,0\n3,1\n", "i.csv");
  REQUIRE(d.ok());
  CHECK(d->feature_names == std::vector<std::string>{"x"});
  CHECK(d->features == std::vector<float>{0.25f, 0.75f});
}

const char kStrictSchema[] = R"(
[label]
column = "y"
negative = 0
positive = 1
[[column]]
name = "x"
type = "numeric"
min = 0
max = 10
[[column]]
name = "k"
type = "categorical"
levels = ["u", "v"]
)";

struct Malformed {
  std::string what;
  std::string csv;
  std::string where;  // "bad.csv:<line>: column '<name>'" or similar
  std::string mention;
};

TEST_CASE("malformed files are refused naming the file, the line and the column") {
  const Schema schema = MustParse(kStrictSchema);
  const std::vector<Malformed> cases = {
      {"empty file", "", "bad.csv", "empty file"},
      {"header only", "x,k,y\n", "bad.csv", "no data records"},
      {"missing header column", "x,y\n1,0\n", "bad.csv:1: column 'k'", "missing from the header"},
      {"unknown header column", "x,k,y,extra\n1,u,0,9\n", "bad.csv:1: column 'extra'",
       "not in the schema"},
      {"duplicate header column", "x,k,y,x\n1,u,0,1\n", "bad.csv:1: field 4", "appears twice"},
      {"empty header name", "x,k,,y\n1,u,0,1\n", "bad.csv:1: field 3", "empty column name"},
      {"non-numeric cell", "x,k,y\n1,u,0\nabc,v,1\n", "bad.csv:3: column 'x'",
       "'abc' is not a finite number"},
      {"NaN text", "x,k,y\n1,u,0\n2,u,1\nnan,v,1\n", "bad.csv:4: column 'x'", "not a finite"},
      {"inf text", "x,k,y\ninf,u,0\n", "bad.csv:2: column 'x'", "not a finite"},
      {"-Infinity text", "x,k,y\n-Infinity,u,0\n", "bad.csv:2: column 'x'", "not a finite"},
      {"overflowing number", "x,k,y\n1e999,u,0\n", "bad.csv:2: column 'x'", "not a finite"},
      {"empty numeric cell without missing", "x,k,y\n,u,0\n", "bad.csv:2: column 'x'",
       "declares no missing texts"},
      {"out-of-schema level", "x,k,y\n1,u,0\n2,w,1\n", "bad.csv:3: column 'k'",
       "'w' is not a declared level (u, v)"},
      {"unknown label class", "x,k,y\n1,u,2\n", "bad.csv:2: column 'y'", "not a declared class"},
      {"missing label not allowed", "x,k,y\n1,u,\n", "bad.csv:2: column 'y'",
       "not a declared class"},
      {"ragged short row", "x,k,y\n1,u,0\n2,v\n", "bad.csv:3: column 'y'", "2 fields"},
      {"ragged long row", "x,k,y\n1,u,0,5\n", "bad.csv:2: field 4", "4 fields"},
      {"unterminated quote", "x,k,y\n1,u,0\n2,\"v,1\n", "bad.csv:3: column 'k'", "unterminated"},
  };
  for (const Malformed& c : cases) {
    auto d = ParseDataset(schema, c.csv, "bad.csv");
    REQUIRE_MESSAGE(!d.ok(), c.what);
    CHECK_MESSAGE(d.status().code() == StatusCode::kInvalidArgument, c.what);
    CHECK_MESSAGE(Contains(d.status().message(), c.where), c.what, ": ", d.status().message());
    CHECK_MESSAGE(Contains(d.status().message(), c.mention), c.what, ": ", d.status().message());
  }
}

TEST_CASE("line numbers count the line ends inside quoted fields") {
  const Schema schema = MustParse(kEncodingSchema);
  auto d = ParseDataset(schema, "y,x,k,b,junk\na,0,red,0,\"two\nlines\"\nb,abc,red,0,\n", "ml.csv");
  REQUIRE(!d.ok());
  CHECK(Contains(d.status().message(), "ml.csv:4: column 'x'"));
  CHECK(Contains(d.status().message(), "'abc' is not a finite number"));
}

TEST_CASE("a quoted label cell with a line end in it is refused as an unknown class") {
  // "1\n" is not the class 1: the loader never reinterprets quoted bytes.
  const Schema schema = MustParse(kStrictSchema);
  auto d = ParseDataset(schema, "x,k,y\n1,u,\"1\n\"\n", "q.csv");
  REQUIRE(!d.ok());
  CHECK(Contains(d.status().message(), "q.csv:2: column 'y'"));
}

TEST_CASE("quoted cells and CRLF load like plain ones") {
  const Schema schema = MustParse(kStrictSchema);
  auto plain = ParseDataset(schema, "x,k,y\n1,u,0\n2.5,v,1\n", "a.csv");
  auto quoted =
      ParseDataset(schema, "\"x\",\"k\",\"y\"\r\n\"1\",\"u\",\"0\"\r\n\"2.5\",v,1\r\n", "b.csv");
  REQUIRE(plain.ok());
  REQUIRE_MESSAGE(quoted.ok(), quoted.status().ToString());
  CHECK(plain->features == quoted->features);
  CHECK(plain->labels == quoted->labels);
  CHECK(quoted->features == std::vector<float>{0.1f, 1, 0, 0.25f, 0, 1});
}

TEST_CASE("unknown columns can be ignored wholesale when the schema says so") {
  const Schema schema = MustParse(std::string("unknown_columns = \"ignore\"\n") + kStrictSchema);
  auto d = ParseDataset(schema, "x,k,y,extra\n1,u,0,9\n", "e.csv");
  REQUIRE(d.ok());
  CHECK(d->rows == 1);
}

const char kSplitHead[] = R"(
site_column = "site"
[label]
column = "y"
negative = 0
positive = 1
[[column]]
name = "x"
type = "numeric"
min = 0
max = 10
[split]
column = "s"
train = ["train"]
test = ["test", "TEST"]
)";

const char kSplitCsv[] =
    "site,x,y,s\n"
    "A,1,0,train\n"   // row 0
    "A,2,1,test\n"    // 1
    "B,3,0,\n"        // unassigned
    "B,4,1,TEST\n"    // 2
    "A,5,0,train\n";  // 3

TEST_CASE("a split column assigns rows, and unassigned rows follow the schema") {
  {
    const Schema schema = MustParse(std::string(kSplitHead) + "unassigned = \"drop\"\n");
    auto d = ParseDataset(schema, kSplitCsv, "s.csv");
    REQUIRE_MESSAGE(d.ok(), d.status().ToString());
    CHECK(d->rows == 4);
    CHECK(d->report.dropped_unassigned_split == 1);
    CHECK(d->train_rows == std::vector<int64_t>{0, 3});
    CHECK(d->test_rows == std::vector<int64_t>{1, 2});
    CHECK(d->sites == std::vector<std::string>{"A", "A", "B", "A"});
  }
  {
    const Schema schema = MustParse(std::string(kSplitHead) + "unassigned = \"train\"\n");
    auto d = ParseDataset(schema, kSplitCsv, "s.csv");
    REQUIRE(d.ok());
    CHECK(d->train_rows == std::vector<int64_t>{0, 2, 4});
    CHECK(d->test_rows == std::vector<int64_t>{1, 3});
  }
  {
    const Schema schema = MustParse(std::string(kSplitHead) + "unassigned = \"test\"\n");
    auto d = ParseDataset(schema, kSplitCsv, "s.csv");
    REQUIRE(d.ok());
    CHECK(d->train_rows == std::vector<int64_t>{0, 4});
    CHECK(d->test_rows == std::vector<int64_t>{1, 2, 3});
  }
  {
    const Schema schema = MustParse(kSplitHead);  // default: error
    auto d = ParseDataset(schema, kSplitCsv, "s.csv");
    REQUIRE(!d.ok());
    CHECK(Contains(d.status().message(), "s.csv:4: column 's'"));
    CHECK(Contains(d.status().message(), "neither a train nor a test value"));
  }
}

TEST_CASE("selecting one site of a pooled file counts the other rows") {
  const Schema schema = MustParse(std::string(kSplitHead) + "unassigned = \"drop\"\n");
  LoadOptions options;
  options.site = "B";
  auto d = ParseDataset(schema, kSplitCsv, "s.csv", options);
  REQUIRE(d.ok());
  CHECK(d->rows == 1);
  CHECK(d->report.records == 5);
  CHECK(d->report.dropped_other_site == 3);
  CHECK(d->report.dropped_unassigned_split == 1);
  CHECK(d->test_rows == std::vector<int64_t>{0});
  CHECK(d->at(0, 0) == 0.4f);

  const Schema no_site = MustParse(kStrictSchema);
  auto refused = ParseDataset(no_site, "x,k,y\n1,u,0\n", "n.csv", options);
  REQUIRE(!refused.ok());
  CHECK(Contains(refused.status().message(), "names no site_column"));
}

TEST_CASE("seeded split: deterministic, stratified counts, seed matters") {
  std::vector<int32_t> labels;
  for (int i = 0; i < 100; ++i) labels.push_back(i % 10 < 3 ? 1 : 0);  // 70 zeros, 30 ones
  const auto a = SeededTestRows(labels, 2, 0.34, 42, true);
  const auto b = SeededTestRows(labels, 2, 0.34, 42, true);
  const auto c = SeededTestRows(labels, 2, 0.34, 43, true);
  CHECK(a == b);
  CHECK(a != c);
  // round(0.34 * 70) = 24 zeros, round(0.34 * 30) = 10 ones.
  int ones = 0;
  for (int64_t r : a) ones += labels[static_cast<size_t>(r)];
  CHECK(a.size() == 34);
  CHECK(ones == 10);
  for (size_t i = 1; i < a.size(); ++i) CHECK(a[i - 1] < a[i]);
  CHECK(a.front() >= 0);
  CHECK(a.back() < 100);
  const auto u = SeededTestRows(labels, 2, 0.25, 1, false);
  CHECK(u.size() == 25);
}

TEST_CASE("a seeded split through the schema partitions the rows") {
  const Schema schema = MustParse(std::string(kStrictSchema) +
                                  "[split]\ntest_fraction = 0.5\nseed = 3\nstratify = false\n");
  std::string csv = "x,k,y\n";
  for (int i = 0; i < 10; ++i) csv += std::to_string(i) + ",u," + std::to_string(i % 2) + "\n";
  auto d = ParseDataset(schema, csv, "seeded.csv");
  REQUIRE(d.ok());
  CHECK(d->test_rows.size() == 5);
  CHECK(d->train_rows.size() == 5);
  std::vector<bool> seen(10, false);
  for (int64_t r : d->train_rows) seen[static_cast<size_t>(r)] = true;
  for (int64_t r : d->test_rows) {
    CHECK(!seen[static_cast<size_t>(r)]);
    seen[static_cast<size_t>(r)] = true;
  }
  for (bool s : seen) CHECK(s);
  CHECK(d->test_rows == SeededTestRows(d->labels, 2, 0.5, 3, false));
}

TEST_CASE("Subset copies the chosen rows in order") {
  const Schema schema = MustParse(kStrictSchema);
  auto d = ParseDataset(schema, "x,k,y\n1,u,0\n2,v,1\n3,u,1\n", "s.csv");
  REQUIRE(d.ok());
  const Dataset s = Subset(*d, {2, 0});
  CHECK(s.rows == 2);
  CHECK(s.dim == 3);
  CHECK(s.features == std::vector<float>{0.3f, 1, 0, 0.1f, 1, 0});
  CHECK(s.labels == std::vector<int32_t>{1, 0});
  CHECK(s.lines == std::vector<int64_t>{4, 2});
  CHECK(s.train_rows == std::vector<int64_t>{0, 1});
}

TEST_CASE("LoadDataset applies the file size cap and names the file") {
  const Schema schema = MustParse(kStrictSchema);
  const auto dir = std::filesystem::temp_directory_path() / "dpnode_dataset_test";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "site.csv").string();
  {
    std::ofstream out(path, std::ios::binary);
    out << "x,k,y\n1,u,0\nbad,u,1\n";
  }
  auto d = LoadDataset(schema, path);
  REQUIRE(!d.ok());
  CHECK(Contains(d.status().message(), path + ":3: column 'x'"));
  LoadOptions tiny;
  tiny.csv.max_file_bytes = 10;
  auto capped = LoadDataset(schema, path, tiny);
  REQUIRE(!capped.ok());
  CHECK(capped.status().code() == StatusCode::kInvalidArgument);
  CHECK(Contains(capped.status().message(), "over the limit of 10 bytes"));
  std::filesystem::remove_all(dir);
}

// Random byte edits of a valid file end in a data set or InvalidArgument,
// never a crash.
TEST_CASE("mutated files never crash the loader") {
  const Schema schema = MustParse(kEncodingSchema);
  const std::string valid = "y,x,k,b,junk\na,0,red,0,zzz\nb,-20,blue,1,\"q,\"\"r\"\nc,NA,?,1,\n";
  uint64_t state = 99;
  auto next = [&state] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<uint32_t>(state >> 33);
  };
  int ok = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::string bytes = valid;
    const int edits = 1 + static_cast<int>(next() % 4);
    for (int e = 0; e < edits && !bytes.empty(); ++e) {
      const size_t pos = next() % bytes.size();
      switch (next() % 3) {
        case 0:
          bytes[pos] = static_cast<char>(next() & 0xff);
          break;
        case 1:
          bytes.erase(pos, 1 + next() % 5);
          break;
        default:
          bytes.insert(pos, 1, ",\"\n\r?"[next() % 5]);
          break;
      }
    }
    auto d = ParseDataset(schema, bytes, "m.csv");
    if (d.ok()) {
      ++ok;
      CHECK(static_cast<int64_t>(d->features.size()) == d->rows * d->dim);
    } else {
      CHECK(d.status().code() == StatusCode::kInvalidArgument);
    }
  }
  CHECK(ok > 0);
  CHECK(ok < 3000);
}

}  // namespace
}  // namespace dpnode::learn
