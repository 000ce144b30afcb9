// The site's ledger as the commands that train see it (`dpnode train`, the
// daemon): created on first use, reopened afterwards, never re-budgeted.
#ifndef DPNODE_NODE_CLI_SITE_LEDGER_H_
#define DPNODE_NODE_CLI_SITE_LEDGER_H_

#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "node/privacy/ledger.h"

namespace dpnode::cli {

// The ledger's free-text label for these site names, joined by '+', with
// characters the ledger does not allow replaced by '_'.
std::string LedgerLabel(const std::vector<std::string>& sites);

// Opens the ledger in `dir`, creating the directory and the ledger with
// `budget` the first time. An existing ledger whose budget (ε, δ,
// accountant) differs is refused: a budget is never changed.
Result<std::unique_ptr<privacy::Ledger>> OpenOrCreateLedger(const std::string& dir,
                                                            const privacy::Budget& budget);

}  // namespace dpnode::cli

#endif  // DPNODE_NODE_CLI_SITE_LEDGER_H_
