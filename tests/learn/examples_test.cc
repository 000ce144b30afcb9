// Loads the real example data sets (examples/heart, examples/diabetes) through
// their schemas and checks row counts, split counts and drops against counts
// taken independently from the raw files and from the data sets' READMEs.
#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "node/learn/data/dataset.h"

namespace dpnode::learn {
namespace {

const std::string kRoot = DPNODE_SOURCE_DIR;

// The raw lines of a file whose cells hold no quoted separators (true of the
// heart files), split at commas; element 0 is the header.
std::vector<std::vector<std::string>> RawRows(const std::string& path) {
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), path);
  std::vector<std::vector<std::string>> rows;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) cells.push_back(cell);
    if (!line.empty() && line.back() == ',') cells.emplace_back();
    rows.push_back(cells);
  }
  return rows;
}

size_t ColumnIndex(const std::vector<std::string>& header, const std::string& name) {
  const auto it = std::find(header.begin(), header.end(), name);
  REQUIRE_MESSAGE(it != header.end(), name);
  return static_cast<size_t>(it - header.begin());
}

int64_t FeatureIndex(const Dataset& d, const std::string& name) {
  const auto it = std::find(d.feature_names.begin(), d.feature_names.end(), name);
  REQUIRE_MESSAGE(it != d.feature_names.end(), name);
  return it - d.feature_names.begin();
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct HeartSite {
  const char* name;
  int64_t records;  // rows in the UCI file (SOURCE.md)
  size_t train;     // FLamby's split counts (SOURCE.md)
  size_t test;
};

const HeartSite kHeartSites[] = {
    {"cleveland", 303, 199, 104},
    {"hungarian", 294, 172, 89},
    {"switzerland", 123, 30, 16},
    {"va", 200, 85, 45},
};

TEST_CASE("heart: four sites load with FLamby's rows and split") {
  auto schema = LoadSchemaFile(kRoot + "/examples/heart/schema.toml");
  REQUIRE_MESSAGE(schema.ok(), schema.status().ToString());
  // 13 inputs: age 1, sex 1, cp 4, trestbps 2, chol 2, fbs 2, restecg 4,
  // thalach 2, exang 2, oldpeak 2, slope 4, ca 2, thal 4.
  CHECK(FeatureNames(*schema).size() == 32);
  int64_t kept_total = 0;
  for (const HeartSite& site : kHeartSites) {
    const std::string path = kRoot + "/examples/heart/data/" + site.name + ".csv";
    auto d = LoadDataset(*schema, path);
    REQUIRE_MESSAGE(d.ok(), d.status().ToString());
    CHECK(d->report.records == site.records);
    CHECK(d->train_rows.size() == site.train);
    CHECK(d->test_rows.size() == site.test);
    CHECK(d->rows == static_cast<int64_t>(site.train + site.test));
    CHECK(d->report.dropped_missing_label == 0);
    CHECK(d->report.dropped_unassigned_split == site.records - d->rows);
    kept_total += d->rows;

    // The dropped rows are exactly FLamby's unused rows: every kept row has
    // flamby_kept = 1, and the number of flamby_kept = 0 rows is the drop count.
    const auto raw = RawRows(path);
    REQUIRE(static_cast<int64_t>(raw.size()) == site.records + 1);
    const size_t kept_col = ColumnIndex(raw[0], "flamby_kept");
    const size_t target_col = ColumnIndex(raw[0], "target");
    const size_t split_col = ColumnIndex(raw[0], "flamby_split");
    int64_t unused = 0;
    for (size_t i = 1; i < raw.size(); ++i) {
      if (raw[i][kept_col] == "0") {
        ++unused;
        CHECK(raw[i][split_col].empty());
      }
    }
    CHECK(unused == d->report.dropped_unassigned_split);
    for (int64_t r = 0; r < d->rows; ++r) {
      const auto& cells = raw[static_cast<size_t>(d->lines[static_cast<size_t>(r)] - 1)];
      CHECK(cells[kept_col] == "1");
      CHECK(std::to_string(d->labels[static_cast<size_t>(r)]) == cells[target_col]);
      CHECK(d->sites[static_cast<size_t>(r)] == site.name);
    }
    for (int64_t r : d->test_rows) {
      CHECK(raw[static_cast<size_t>(d->lines[static_cast<size_t>(r)] - 1)][split_col] == "test");
    }
  }
  CHECK(kept_total == 740);
}

TEST_CASE("heart: chol = 0 is missing, and every Switzerland row says so") {
  auto schema = LoadSchemaFile(kRoot + "/examples/heart/schema.toml");
  REQUIRE(schema.ok());
  auto d = LoadDataset(*schema, kRoot + "/examples/heart/data/switzerland.csv");
  REQUIRE(d.ok());
  const int64_t chol = FeatureIndex(*d, "chol");
  const int64_t chol_missing = FeatureIndex(*d, "chol_missing");
  for (int64_t r = 0; r < d->rows; ++r) {
    CHECK(d->at(r, chol_missing) == 1.0f);
    CHECK(d->at(r, chol) == static_cast<float>((220.0 - 80.0) / (650.0 - 80.0)));  // the fill
  }
}

TEST_CASE("heart: unassigned = train keeps FLamby's test sets and trains on the rest") {
  std::string text = ReadText(kRoot + "/examples/heart/schema.toml");
  const std::string from = "unassigned = \"drop\"";
  const auto pos = text.find(from);
  REQUIRE(pos != std::string::npos);
  text.replace(pos, from.size(), "unassigned = \"train\"");
  auto schema = ParseSchema(text, "heart-train.toml");
  REQUIRE(schema.ok());
  for (const HeartSite& site : kHeartSites) {
    auto d = LoadDataset(*schema, kRoot + "/examples/heart/data/" + site.name + ".csv");
    REQUIRE_MESSAGE(d.ok(), d.status().ToString());
    CHECK(d->rows == site.records);
    CHECK(d->test_rows.size() == site.test);
    CHECK(d->train_rows.size() == static_cast<size_t>(site.records) - site.test);
  }
}

TEST_CASE("diabetes: two counties, rows without a label dropped and counted") {
  auto schema = LoadSchemaFile(kRoot + "/examples/diabetes/schema.toml");
  REQUIRE_MESSAGE(schema.ok(), schema.status().ToString());
  const auto names = FeatureNames(*schema);
  for (const char* forbidden : {"glyhb", "diabetes", "site", "location"}) {
    for (const std::string& n : names) CHECK(n.rfind(std::string(forbidden), 0) != 0);
  }
  // Empty labels per county, from the shared README: 13 in all, 10 + 3.
  const struct {
    const char* file;
    int64_t records;
    int64_t empty_labels;
  } counties[] = {{"buckingham", 200, 10}, {"louisa", 203, 3}};
  for (const auto& c : counties) {
    const std::string path = kRoot + "/examples/diabetes/data/" + c.file + ".csv";
    // Independent count: the label is the last field, so an empty label is a
    // line ending in ','.
    int64_t lines = 0, empty = 0;
    {
      std::ifstream in(path);
      std::string line;
      std::getline(in, line);  // header
      while (std::getline(in, line)) {
        ++lines;
        if (!line.empty() && line.back() == ',') ++empty;
      }
    }
    CHECK(lines == c.records);
    CHECK(empty == c.empty_labels);
    auto d = LoadDataset(*schema, path);
    REQUIRE_MESSAGE(d.ok(), d.status().ToString());
    CHECK(d->report.records == c.records);
    CHECK(d->report.dropped_missing_label == empty);
    CHECK(d->rows == c.records - empty);
    CHECK(d->train_rows.size() + d->test_rows.size() == static_cast<size_t>(d->rows));
    // Stratified 0.34: per class round(0.34 * n_c) test rows.
    for (int32_t cls = 0; cls < 2; ++cls) {
      const auto n = std::count(d->labels.begin(), d->labels.end(), cls);
      int64_t in_test = 0;
      for (int64_t r : d->test_rows) in_test += d->labels[static_cast<size_t>(r)] == cls;
      CHECK(in_test == static_cast<int64_t>(0.34 * static_cast<double>(n) + 0.5));
    }
    for (float v : d->features) {
      CHECK(v >= 0.0f);
      CHECK(v <= 1.0f);
    }
  }
}

}  // namespace
}  // namespace dpnode::learn
