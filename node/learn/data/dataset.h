// A site's local table, loaded through a Schema into model-ready rows.
//
// Every value in `features` is a pure function of one cell and the schema
// (see ColumnSpec for the encoding), so two sites holding the same record get
// the same row, and nothing about the data set as a whole (means, ranges,
// counts) shapes the preprocessing.
//
// Rows are dropped only where the schema or the caller asks (a missing label
// with `drop_missing`, a split value with `unassigned = "drop"`, another site
// when LoadOptions::site is set), and every drop is counted in LoadReport.
// Anything else that does not fit the schema refuses the whole file with
// kInvalidArgument naming the file, the 1-based line and the column.
#ifndef DPNODE_NODE_LEARN_DATA_DATASET_H_
#define DPNODE_NODE_LEARN_DATA_DATASET_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "node/learn/data/csv.h"
#include "node/learn/data/schema.h"

namespace dpnode::learn {

struct LoadOptions {
  CsvLimits csv;
  // Keep only rows whose site column (trimmed) equals this; requires the
  // schema to name a site column. Other rows are counted, not loaded.
  std::optional<std::string> site;
};

// What happened to the file's records. records == rows + all dropped.
struct LoadReport {
  int64_t records = 0;                   // data records in the file (header excluded)
  int64_t rows = 0;                      // rows kept
  int64_t dropped_missing_label = 0;     // label missing and [label] drop_missing
  int64_t dropped_other_site = 0;        // site column != LoadOptions::site
  int64_t dropped_unassigned_split = 0;  // split value neither train nor test, unassigned = "drop"
};

struct Dataset {
  int64_t rows = 0;
  int64_t dim = 0;              // features per row == feature_names.size()
  std::vector<float> features;  // rows * dim, row-major
  std::vector<int32_t> labels;  // class index per row, 0 .. class_names.size()-1
  std::vector<std::string> feature_names;
  std::vector<std::string> class_names;  // Level::Name() of each class
  // Row indices (ascending) of the training and test rows; together they
  // hold every row exactly once. Without a split every row is training.
  std::vector<int64_t> train_rows;
  std::vector<int64_t> test_rows;
  std::vector<std::string> sites;  // per row when the schema has a site column, else empty
  std::vector<int64_t> lines;      // 1-based CSV line on which each row starts
  LoadReport report;

  float at(int64_t row, int64_t feature) const {
    return features[static_cast<size_t>(row * dim + feature)];
  }
};

// Parses CSV bytes (the whole file) through `schema`. `source_name` names the
// file in error messages.
Result<Dataset> ParseDataset(const Schema& schema, std::string_view csv_bytes,
                             std::string_view source_name, const LoadOptions& options = {});

// Reads `csv_path` (refusing files over options.csv.max_file_bytes) and parses it.
Result<Dataset> LoadDataset(const Schema& schema, const std::string& csv_path,
                            const LoadOptions& options = {});

// The rows `rows` of `data` (in that order) as a data set of their own, e.g.
// Subset(d, d.test_rows). Its train_rows are all its rows and test_rows is
// empty; its report is copied from `data`. Precondition: indices in range.
Dataset Subset(const Dataset& data, const std::vector<int64_t>& rows);

// The seeded split (SplitKind::kSeeded) on its own: returns the ascending
// indices of the test rows among labels.size() rows. Deterministic on every
// platform: SplitMix64 and a rejection-sampled Fisher-Yates, no std::
// distributions (whose output differs between standard libraries).
std::vector<int64_t> SeededTestRows(const std::vector<int32_t>& labels, int32_t num_classes,
                                    double test_fraction, uint64_t seed, bool stratify);

}  // namespace dpnode::learn

#endif  // DPNODE_NODE_LEARN_DATA_DATASET_H_
