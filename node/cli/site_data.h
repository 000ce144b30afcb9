// The bridge from the CLI to a site's local table, for commands that need
// facts about it (the number of training records) without training.
#ifndef DPNODE_NODE_CLI_SITE_DATA_H_
#define DPNODE_NODE_CLI_SITE_DATA_H_

#include <cstdint>
#include <string>

#include "base/status.h"

namespace dpnode::cli {

// Loads `csv` through `schema` exactly as training would and returns the
// number of records in the training split (N, the denominator of q).
Result<int64_t> CountTrainingRecords(const std::string& csv, const std::string& schema);

}  // namespace dpnode::cli

#endif  // DPNODE_NODE_CLI_SITE_DATA_H_
