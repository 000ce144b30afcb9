// Small helpers shared by the subcommands: one-line errors and number text.
#ifndef DPNODE_NODE_CLI_OUTPUT_H_
#define DPNODE_NODE_CLI_OUTPUT_H_

#include <string>

#include "base/status.h"

namespace dpnode::cli {

// Exit codes: 0 success, 1 the request cannot be met (bad input, unreachable
// target, corrupt ledger), 2 an environment failure (I/O, lock held).
inline constexpr int kExitOk = 0;
inline constexpr int kExitRefused = 1;
inline constexpr int kExitEnvironment = 2;

// Prints "dpnode: <command>: <reason>" on one line to stderr and returns the
// exit code that fits the status.
int ReportError(const std::string& command, const Status& status);

// Shortest text that reads back as the same double ("0.1", "1e-05").
std::string ShortNumber(double v);

}  // namespace dpnode::cli

#endif  // DPNODE_NODE_CLI_OUTPUT_H_
