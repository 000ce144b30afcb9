// Logging for the command line, through spdlog. main() owns the one logger
// of a CLI process (stderr, level from --log-level); node code never logs
// through it: each Node gets its own logger from whoever builds it.
#ifndef DPNODE_NODE_CLI_LOGGING_H_
#define DPNODE_NODE_CLI_LOGGING_H_

#include <string>

#include "base/status.h"

namespace dpnode {
namespace learn {
struct Dataset;
}
namespace privacy {
class Ledger;
}
}  // namespace dpnode

namespace dpnode::cli {

// Installs the process's stderr logger at `level` (trace, debug, info, warn,
// error, off). InvalidArgument for an unknown level.
Status SetUpLogging(const std::string& level);

// Says how many rows a site's file held and what the schema dropped, so no
// row is ever dropped silently.
void LogLoadReport(const std::string& csv, const learn::Dataset& data);

// Warns when opening the ledger cut a torn tail (a crash during an append).
void LogLedgerRecovery(const privacy::Ledger& ledger);

}  // namespace dpnode::cli

#endif  // DPNODE_NODE_CLI_LOGGING_H_
