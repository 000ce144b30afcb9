#include "node/cli/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "node/learn/data/dataset.h"
#include "node/privacy/ledger.h"

namespace dpnode::cli {

Status SetUpLogging(const std::string& level) {
  const spdlog::level::level_enum parsed = spdlog::level::from_str(level);
  // from_str maps anything unknown to "off"; only "off" itself may mean off.
  if (parsed == spdlog::level::off && level != "off") {
    return Status::InvalidArgument("unknown log level '" + level +
                                   "' (trace, debug, info, warn, error, off)");
  }
  spdlog::drop("dpnode");  // --log-level replaces the default set up in Main
  auto logger = spdlog::stderr_color_st("dpnode");
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  logger->set_level(parsed);
  spdlog::set_default_logger(logger);
  return Status::Ok();
}

void LogLoadReport(const std::string& csv, const learn::Dataset& data) {
  const learn::LoadReport& r = data.report;
  spdlog::info("{}: {} records, {} kept ({} train, {} test)", csv, r.records, r.rows,
               data.train_rows.size(), data.test_rows.size());
  if (r.dropped_missing_label > 0) {
    spdlog::info("{}: dropped {} rows without a label, as the schema asks", csv,
                 r.dropped_missing_label);
  }
  if (r.dropped_unassigned_split > 0) {
    spdlog::info("{}: dropped {} rows outside the train/test split, as the schema asks", csv,
                 r.dropped_unassigned_split);
  }
  if (r.dropped_other_site > 0) {
    spdlog::info("{}: skipped {} rows of other sites", csv, r.dropped_other_site);
  }
}

void LogLedgerRecovery(const privacy::Ledger& ledger) {
  const privacy::LedgerRecovery& r = ledger.recovery();
  if (r.recovered_tail_bytes > 0) {
    spdlog::warn("{}: cut a torn tail of {} bytes (an append interrupted by a crash; its steps "
                 "never ran)", ledger.path(), r.recovered_tail_bytes);
  }
  if (r.completed_last_record) {
    spdlog::warn("{}: the last record had lost its newline; kept it and completed it",
                 ledger.path());
  }
}

}  // namespace dpnode::cli
