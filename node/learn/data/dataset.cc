// Loading a CSV through a schema: header mapping, cell encoding, row drops, split.
#include "node/learn/data/dataset.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <map>
#include <utility>

#include "base/check.h"

namespace dpnode::learn {

namespace {

bool InSortedSet(const std::vector<std::string>& set, std::string_view s) {
  return std::binary_search(set.begin(), set.end(), s,
                            [](std::string_view a, std::string_view b) { return a < b; });
}

bool InSortedValues(const std::vector<double>& set, double v) {
  return std::binary_search(set.begin(), set.end(), v);
}

std::string ClassList(const std::vector<Level>& classes) {
  std::string out;
  for (const Level& c : classes) out += (out.empty() ? "" : ", ") + c.Name();
  return out;
}

class Loader {
 public:
  Loader(const Schema& schema, std::string_view bytes, std::string_view source,
         const LoadOptions& options)
      : schema_(schema), options_(options), reader_(bytes, std::string(source), options.csv) {}

  Result<Dataset> Run();

 private:
  Status CellError(int64_t line, size_t field, const std::string& problem) const {
    return Status::InvalidArgument(reader_.source_name() + ":" + std::to_string(line) + ": " +
                                   reader_.DescribeColumn(field) + ": " + problem);
  }
  Status MapHeader(const CsvRecord& header);
  // Appends the features of one cell to *row.
  Status EncodeCell(const ColumnSpec& col, std::string_view cell, int64_t line, size_t field,
                    std::vector<float>* row) const;

  const Schema& schema_;
  const LoadOptions& options_;
  CsvReader reader_;
  std::vector<size_t> column_field_;  // per schema column: its header field
  size_t label_field_ = 0;
  size_t site_field_ = 0;
  size_t split_field_ = 0;
};

Status Loader::MapHeader(const CsvRecord& header) {
  std::vector<std::string> names;
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < header.fields.size(); ++i) {
    std::string name(TrimCell(header.fields[i]));
    if (name.empty()) return CellError(header.line, i, "empty column name in the header");
    const auto [it, fresh] = index.emplace(name, i);
    if (!fresh) {
      return CellError(header.line, i,
                       "column '" + QuoteForMessage(name) +
                           "' appears twice in the header (fields " +
                           std::to_string(it->second + 1) + " and " + std::to_string(i + 1) + ")");
    }
    names.push_back(std::move(name));
  }
  reader_.SetColumns(names);

  std::vector<bool> claimed(names.size(), false);
  auto find = [&](const std::string& name, const std::string& role) -> Result<size_t> {
    const auto it = index.find(name);
    if (it == index.end()) {
      return Status::InvalidArgument(reader_.source_name() + ":" + std::to_string(header.line) +
                                     ": column '" + QuoteForMessage(name) +
                                     "': missing from the header (the schema names it as " + role +
                                     ")");
    }
    claimed[it->second] = true;
    return it->second;
  };
  for (size_t c = 0; c < schema_.columns.size(); ++c) {
    auto f = find(schema_.columns[c].name, "an input");
    if (!f.ok()) return f.status();
    column_field_.push_back(*f);
  }
  {
    auto f = find(schema_.label.column, "the label");
    if (!f.ok()) return f.status();
    label_field_ = *f;
  }
  if (!schema_.site_column.empty()) {
    auto f = find(schema_.site_column, "the site column");
    if (!f.ok()) return f.status();
    site_field_ = *f;
  }
  if (schema_.split.kind == SplitKind::kColumn) {
    auto f = find(schema_.split.column, "the split column");
    if (!f.ok()) return f.status();
    split_field_ = *f;
  }
  // Ignored columns may be absent: ignoring is a promise not to read them.
  for (size_t i = 0; i < names.size(); ++i) {
    if (claimed[i] || InSortedSet(schema_.ignore_columns, names[i])) continue;
    if (!schema_.ignore_unknown_columns) {
      return CellError(header.line, i,
                       "not in the schema (list it in ignore_columns, or set unknown_columns = "
                       "\"ignore\")");
    }
  }
  return Status::Ok();
}

Status Loader::EncodeCell(const ColumnSpec& col, std::string_view raw, int64_t line, size_t field,
                          std::vector<float>* row) const {
  const std::string_view cell = TrimCell(raw);
  bool missing = InSortedSet(col.missing, cell);
  if (col.type == ColumnType::kNumeric) {
    double x = 0;
    if (!missing) {
      const auto v = ParseFiniteNumber(cell);
      if (!v) {
        return CellError(line, field,
                         "'" + QuoteForMessage(cell) + "' is not a finite number" +
                             (col.missing.empty() ? " (and the column declares no missing texts)"
                                                  : " nor one of the column's missing texts"));
      }
      missing = InSortedValues(col.missing_values, *v);
      x = *v;
    }
    if (missing) x = *col.fill;  // ParseSchema guarantees a fill when missing is possible
    const double clipped = std::min(std::max(x, col.min), col.max);
    row->push_back(static_cast<float>((clipped - col.min) / (col.max - col.min)));
  } else {
    std::optional<size_t> level;
    bool other = false;
    if (!missing) {
      if (!col.missing_values.empty()) {
        const auto v = ParseFiniteNumber(cell);
        missing = v.has_value() && InSortedValues(col.missing_values, *v);
      }
    }
    if (!missing) {
      for (size_t i = 0; i < col.levels.size(); ++i) {
        if (LevelMatches(col.levels[i], cell)) {
          level = i;
          break;
        }
      }
      if (!level) {
        if (col.unknown == UnknownLevel::kError) {
          std::string levels;
          for (const Level& l : col.levels) levels += (levels.empty() ? "" : ", ") + l.Name();
          return CellError(line, field,
                           "'" + QuoteForMessage(cell) + "' is not a declared level (" + levels +
                               ")" + (col.CanBeMissing() ? " nor a missing value" : ""));
        }
        other = true;
      }
    } else {
      level = col.fill_level;
    }
    for (size_t i = 0; i < col.levels.size(); ++i) {
      if (col.reference && *col.reference == i) continue;
      row->push_back(level && *level == i ? 1.0f : 0.0f);
    }
    if (col.unknown == UnknownLevel::kOther) row->push_back(other ? 1.0f : 0.0f);
  }
  if (col.indicator) row->push_back(missing ? 1.0f : 0.0f);
  return Status::Ok();
}

Result<Dataset> Loader::Run() {
  if (options_.site && schema_.site_column.empty()) {
    return Status::InvalidArgument(reader_.source_name() +
                                   ": a site was selected but the schema names no site_column");
  }
  CsvRecord record;
  auto got = reader_.Next(&record);
  if (!got.ok()) return got.status();
  if (!*got) return Status::InvalidArgument(reader_.source_name() + ": empty file (no header)");
  DPNODE_RETURN_IF_ERROR(MapHeader(record));

  Dataset data;
  data.feature_names = FeatureNames(schema_);
  data.dim = static_cast<int64_t>(data.feature_names.size());
  for (const Level& c : schema_.label.classes) data.class_names.push_back(c.Name());
  const SplitSpec& split = schema_.split;
  std::vector<bool> is_test;  // per kept row, for a column split

  std::vector<float> row;
  row.reserve(static_cast<size_t>(data.dim));
  while (true) {
    got = reader_.Next(&record);
    if (!got.ok()) return got.status();
    if (!*got) break;
    ++data.report.records;
    const int64_t line = record.line;

    // Every cell is checked, even in rows that will be dropped: a file is
    // either well-formed or refused.
    row.clear();
    for (size_t c = 0; c < schema_.columns.size(); ++c) {
      const size_t f = column_field_[c];
      DPNODE_RETURN_IF_ERROR(EncodeCell(schema_.columns[c], record.fields[f], line, f, &row));
    }
    DPNODE_CHECK(static_cast<int64_t>(row.size()) == data.dim, "encoder and FeatureNames disagree");

    const std::string_view label_cell = TrimCell(record.fields[label_field_]);
    std::optional<int32_t> label;
    const bool label_missing = InSortedSet(schema_.label.missing, label_cell);
    if (label_missing) {
      if (!schema_.label.drop_missing) {
        return CellError(line, label_field_,
                         "the label is missing ('" + QuoteForMessage(label_cell) +
                             "'); set drop_missing = true in [label] to drop such rows");
      }
    } else {
      for (size_t i = 0; i < schema_.label.classes.size(); ++i) {
        if (LevelMatches(schema_.label.classes[i], label_cell)) {
          label = static_cast<int32_t>(i);
          break;
        }
      }
      if (!label) {
        return CellError(line, label_field_,
                         "'" + QuoteForMessage(label_cell) + "' is not a declared class (" +
                             ClassList(schema_.label.classes) + ")" +
                             (schema_.label.missing.empty() ? "" : " nor a missing label"));
      }
    }

    std::string site;
    if (!schema_.site_column.empty()) site = std::string(TrimCell(record.fields[site_field_]));

    bool test = false;
    bool unassigned = false;
    if (split.kind == SplitKind::kColumn) {
      const std::string_view s = TrimCell(record.fields[split_field_]);
      if (InSortedSet(split.test_values, s)) {
        test = true;
      } else if (!InSortedSet(split.train_values, s)) {
        switch (split.unassigned) {
          case Unassigned::kError:
            return CellError(line, split_field_,
                             "'" + QuoteForMessage(s) +
                                 "' is neither a train nor a test value (see [split] unassigned)");
          case Unassigned::kDrop:
            unassigned = true;
            break;
          case Unassigned::kTrain:
            break;
          case Unassigned::kTest:
            test = true;
            break;
        }
      }
    }

    // One reason per dropped row, in this order.
    if (options_.site && site != *options_.site) {
      ++data.report.dropped_other_site;
      continue;
    }
    if (label_missing) {
      ++data.report.dropped_missing_label;
      continue;
    }
    if (unassigned) {
      ++data.report.dropped_unassigned_split;
      continue;
    }
    data.features.insert(data.features.end(), row.begin(), row.end());
    data.labels.push_back(*label);
    data.lines.push_back(line);
    if (!schema_.site_column.empty()) data.sites.push_back(std::move(site));
    is_test.push_back(test);
  }
  if (data.report.records == 0) {
    return Status::InvalidArgument(reader_.source_name() + ": no data records after the header");
  }
  data.rows = static_cast<int64_t>(data.labels.size());
  data.report.rows = data.rows;

  std::vector<bool> test_mask(static_cast<size_t>(data.rows), false);
  if (split.kind == SplitKind::kColumn) {
    test_mask = is_test;
  } else if (split.kind == SplitKind::kSeeded) {
    for (int64_t r : SeededTestRows(data.labels, static_cast<int32_t>(data.class_names.size()),
                                    split.test_fraction, split.seed, split.stratify)) {
      test_mask[static_cast<size_t>(r)] = true;
    }
  }
  for (int64_t r = 0; r < data.rows; ++r) {
    (test_mask[static_cast<size_t>(r)] ? data.test_rows : data.train_rows).push_back(r);
  }
  return data;
}

// SplitMix64 (Steele, Lea, Flood 2014): a tiny, fully specified generator, so
// a seed means the same split on every platform and standard library.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, bound), bound > 0, by rejection (no modulo bias).
  uint64_t Below(uint64_t bound) {
    const uint64_t threshold = (0 - bound) % bound;
    while (true) {
      const uint64_t r = Next();
      if (r >= threshold) return r % bound;
    }
  }

 private:
  uint64_t state_;
};

}  // namespace

std::vector<int64_t> SeededTestRows(const std::vector<int32_t>& labels, int32_t num_classes,
                                    double test_fraction, uint64_t seed, bool stratify) {
  std::vector<std::vector<int64_t>> groups(stratify ? static_cast<size_t>(num_classes) : 1);
  for (size_t r = 0; r < labels.size(); ++r) {
    const size_t g = stratify ? static_cast<size_t>(labels[r]) : 0;
    DPNODE_CHECK(g < groups.size(), "label %d out of range", labels[r]);
    groups[g].push_back(static_cast<int64_t>(r));
  }
  SplitMix64 rng(seed);
  std::vector<int64_t> test;
  for (std::vector<int64_t>& g : groups) {
    for (size_t i = g.size(); i > 1; --i) {
      std::swap(g[i - 1], g[static_cast<size_t>(rng.Below(i))]);
    }
    const auto k =
        static_cast<size_t>(std::floor(test_fraction * static_cast<double>(g.size()) + 0.5));
    test.insert(test.end(), g.begin(),
                g.begin() + static_cast<std::ptrdiff_t>(std::min(k, g.size())));
  }
  std::sort(test.begin(), test.end());
  return test;
}

Result<Dataset> ParseDataset(const Schema& schema, std::string_view csv_bytes,
                             std::string_view source_name, const LoadOptions& options) {
  Loader loader(schema, csv_bytes, source_name, options);
  return loader.Run();
}

Result<Dataset> LoadDataset(const Schema& schema, const std::string& csv_path,
                            const LoadOptions& options) {
  auto bytes = ReadFileCapped(csv_path, options.csv.max_file_bytes);
  if (!bytes.ok()) return bytes.status();
  return ParseDataset(schema, *bytes, csv_path, options);
}

Dataset Subset(const Dataset& data, const std::vector<int64_t>& rows) {
  Dataset out;
  out.dim = data.dim;
  out.feature_names = data.feature_names;
  out.class_names = data.class_names;
  out.report = data.report;
  out.rows = static_cast<int64_t>(rows.size());
  out.features.reserve(rows.size() * static_cast<size_t>(data.dim));
  for (int64_t r : rows) {
    DPNODE_CHECK(r >= 0 && r < data.rows, "row %lld out of range", static_cast<long long>(r));
    const auto begin = data.features.begin() + static_cast<std::ptrdiff_t>(r * data.dim);
    out.features.insert(out.features.end(), begin, begin + static_cast<std::ptrdiff_t>(data.dim));
    out.labels.push_back(data.labels[static_cast<size_t>(r)]);
    out.lines.push_back(data.lines[static_cast<size_t>(r)]);
    if (!data.sites.empty()) out.sites.push_back(data.sites[static_cast<size_t>(r)]);
    out.train_rows.push_back(static_cast<int64_t>(out.train_rows.size()));
  }
  return out;
}

}  // namespace dpnode::learn
