// The data schema every site of a consortium shares: which CSV columns are
// inputs, how each becomes features, which column is the label, which rows to
// keep and how to split train from test.
//
// Preprocessing is a function of the schema alone, never of statistics of the
// data (means, ranges, level counts): such statistics would describe the
// private records and leak outside the privacy accountant. So numeric ranges,
// fill values and categorical levels are all declared here, by people, from
// clinical knowledge.
//
// The TOML format is documented in docs/data.md. Its fingerprint (BLAKE2b-256
// of a canonical serialisation of the parsed schema) must be equal at every
// site and is part of the model fingerprint: formatting and comments do not
// change it, any change of meaning does.
#ifndef DPNODE_NODE_LEARN_DATA_SCHEMA_H_
#define DPNODE_NODE_LEARN_DATA_SCHEMA_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace dpnode::learn {

// A categorical level or a class of the label, as written in the schema.
// A numeric level (TOML integer or float) matches any cell whose text parses
// as a finite number equal to it ("1", "1.0", "1e0"); a text level matches
// the cell's text exactly after surrounding spaces and tabs are trimmed.
struct Level {
  bool numeric = false;
  double number = 0;  // when numeric
  std::string text;   // when not numeric

  // The level as it appears in feature names: shortest round-trip decimal
  // for numbers ("1", "0.5"), the text otherwise.
  std::string Name() const;
};

enum class ColumnType { kNumeric, kCategorical };

// What a categorical cell that is neither a level nor missing does.
enum class UnknownLevel {
  kError,  // the file is refused, naming line and column
  kOther,  // counted in one extra "<name>=other" indicator feature
};

// One input column and the features it becomes, in this order:
//   numeric:      "<name>" = (clip(x, min, max) - min) / (max - min) ∈ [0, 1]
//   categorical:  "<name>=<level>" one-hot, one per level except `reference`,
//                 then "<name>=other" when unknown == kOther
//   both:         "<name>_missing" (1 if the cell was missing, else 0) when
//                 the column declares missing values and `indicator` is set.
struct ColumnSpec {
  std::string name;
  ColumnType type = ColumnType::kNumeric;

  // Cell texts (after trimming spaces and tabs) that mean "missing", sorted
  // and without duplicates, e.g. {"", "?", "NA"}.
  std::vector<std::string> missing;
  // Numbers that mean "missing" (e.g. cholesterol 0), sorted, no duplicates.
  // Numeric columns and categorical columns with numeric levels only.
  std::vector<double> missing_values;
  // Whether a "<name>_missing" feature is emitted. Only true when the column
  // can be missing at all (see CanBeMissing).
  bool indicator = false;

  // kNumeric: the clinical range in the column's own units; min < max, both
  // finite. `fill` (in the same units, inside the range) replaces a missing
  // value; it is required when the column can be missing.
  double min = 0;
  double max = 0;
  std::optional<double> fill;

  // kCategorical: the levels, in feature order; all numeric or all text.
  std::vector<Level> levels;
  UnknownLevel unknown = UnknownLevel::kError;
  // Index into `levels` of a level that gets no feature of its own (dummy
  // coding: a binary 0/1 column with reference 0 becomes one feature).
  std::optional<size_t> reference;
  // Index into `levels` of the level a missing cell is encoded as; without
  // it a missing cell has all one-hot features 0 (the indicator tells).
  std::optional<size_t> fill_level;

  bool CanBeMissing() const { return !missing.empty() || !missing_values.empty(); }
};

// The label: one class index per row, 0 .. classes.size()-1.
struct LabelSpec {
  std::string column;
  // Class i is classes[i]. A binary label written as `negative`/`positive`
  // is stored as {negative, positive}: class 1 is the positive class.
  std::vector<Level> classes;
  // Cell texts meaning "no label" (sorted, unique). A row with a missing
  // label is refused unless drop_missing, when it is dropped and counted.
  std::vector<std::string> missing;
  bool drop_missing = false;
};

enum class SplitKind {
  kNone,    // every row is a training row
  kColumn,  // a column says train or test per row
  kSeeded,  // a deterministic shuffle with a declared seed and test fraction
};

// What a row whose split column holds neither a train nor a test value does.
enum class Unassigned { kError, kDrop, kTrain, kTest };

struct SplitSpec {
  SplitKind kind = SplitKind::kNone;
  // kColumn: cell texts (trimmed, sorted, unique) for each side.
  std::string column;
  std::vector<std::string> train_values;
  std::vector<std::string> test_values;
  Unassigned unassigned = Unassigned::kError;
  // kSeeded: round(test_fraction * n) rows go to test, chosen by a
  // Fisher-Yates shuffle driven by SplitMix64(seed); with `stratify` this is
  // done per class, so each class keeps its share.
  double test_fraction = 0;  // in (0, 1)
  uint64_t seed = 0;
  bool stratify = true;
};

struct Schema {
  int version = 1;
  std::vector<ColumnSpec> columns;  // input columns, in feature order
  LabelSpec label;
  // Optional column naming the site of each row (a pooled file with several
  // sites, or a check that a file holds what it claims). Never an input.
  std::string site_column;  // empty when absent
  // Columns present in the file that are deliberately not used (sorted,
  // unique). Any other column not named by the schema is an error unless
  // ignore_unknown_columns, so a misspelt input cannot silently vanish.
  std::vector<std::string> ignore_columns;
  bool ignore_unknown_columns = false;
  SplitSpec split;
};

// Parses and validates a schema. Every error is kInvalidArgument and names
// `source_name`, the 1-based line and the offending key, e.g.
//   "schema.toml:12: column 'chol': min (300) must be below max (100)".
Result<Schema> ParseSchema(std::string_view toml_text, std::string_view source_name);
// Reads `path` (at most 1 MiB) and parses it; kNotFound if it does not exist.
Result<Schema> LoadSchemaFile(const std::string& path);

// The feature names of a schema, in feature order ("age", "cp=2",
// "chol_missing", ...); their count is the feature dimension.
std::vector<std::string> FeatureNames(const Schema& schema);

// The canonical serialisation the fingerprint is computed over: a versioned
// text with every field in a fixed order, strings length-prefixed, numbers as
// exact hexadecimal floating point, and sets (missing texts and values,
// ignored columns, split values) sorted.
std::string CanonicalSchema(const Schema& schema);

using SchemaFingerprint = std::array<uint8_t, 32>;
// BLAKE2b-256 of CanonicalSchema(schema).
SchemaFingerprint Fingerprint(const Schema& schema);
std::string FingerprintHex(const SchemaFingerprint& fingerprint);

// Whether a trimmed cell matches a level (see Level). Shared by the loader.
bool LevelMatches(const Level& level, std::string_view trimmed_cell);
// Parses a whole trimmed cell as a finite decimal number (no "inf", "nan",
// hex or trailing bytes); nullopt otherwise.
std::optional<double> ParseFiniteNumber(std::string_view trimmed_cell);
// Removes leading and trailing spaces and tabs.
std::string_view TrimCell(std::string_view cell);

}  // namespace dpnode::learn

#endif  // DPNODE_NODE_LEARN_DATA_SCHEMA_H_
