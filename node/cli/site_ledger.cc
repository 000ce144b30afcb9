// Opening a site's ledger for the commands that train (site_ledger.h).
#include "node/cli/site_ledger.h"

#include <cctype>
#include <filesystem>

#include "node/cli/logging.h"
#include "node/cli/output.h"

namespace dpnode::cli {

namespace fs = std::filesystem;

std::string LedgerLabel(const std::vector<std::string>& sites) {
  std::string s;
  for (const std::string& site : sites) {
    if (!s.empty()) s += "+";
    for (char ch : site) {
      const bool ok = std::isalnum(static_cast<unsigned char>(ch)) ||
                      std::string("._:@/+-").find(ch) != std::string::npos;
      s += ok ? ch : '_';
    }
  }
  return s.substr(0, privacy::kMaxLabelBytes);
}

Result<std::unique_ptr<privacy::Ledger>> OpenOrCreateLedger(const std::string& dir,
                                                            const privacy::Budget& budget) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::IoError(dir + ": " + ec.message());
  if (!fs::exists(fs::path(dir) / privacy::Ledger::kFileName)) {
    return privacy::Ledger::Create(dir, budget);
  }
  Result<std::unique_ptr<privacy::Ledger>> l = privacy::Ledger::Open(dir);
  if (!l.ok()) return l.status();
  LogLedgerRecovery(**l);
  const privacy::Budget& have = (*l)->budget();
  if (have.epsilon != budget.epsilon || have.delta != budget.delta ||
      have.accountant != budget.accountant) {
    return Status::FailedPrecondition(
        (*l)->path() + " holds a budget of epsilon " + ShortNumber(have.epsilon) + " at delta " +
        ShortNumber(have.delta) + " (" + privacy::AccountantName(have.accountant) +
        "); the configuration asks for epsilon " + ShortNumber(budget.epsilon) + " at delta " +
        ShortNumber(budget.delta) + " (" + privacy::AccountantName(budget.accountant) +
        "). A budget is never changed: use another state_dir for another budget");
  }
  return l;
}

}  // namespace dpnode::cli
