#include "node/cli/site_data.h"

#include "node/cli/logging.h"

#include "node/learn/data/dataset.h"
#include "node/learn/data/schema.h"

namespace dpnode::cli {

Result<int64_t> CountTrainingRecords(const std::string& csv, const std::string& schema) {
  Result<learn::Schema> s = learn::LoadSchemaFile(schema);
  if (!s.ok()) return s.status();
  Result<learn::Dataset> d = learn::LoadDataset(*s, csv);
  if (!d.ok()) return d.status();
  LogLoadReport(csv, *d);
  return static_cast<int64_t>(d->train_rows.size());
}

}  // namespace dpnode::cli
