#include "node/cli/output.h"

#include <cstdio>
#include <cstdlib>

namespace dpnode::cli {

int ReportError(const std::string& command, const Status& status) {
  std::string msg = status.message();
  for (char& c : msg) {
    if (c == '\n') c = ' ';  // the promise is one line
  }
  std::fprintf(stderr, "dpnode: %s: %s\n", command.c_str(), msg.c_str());
  switch (status.code()) {
    case StatusCode::kIoError:
    case StatusCode::kUnavailable:
      return kExitEnvironment;
    default:
      return kExitRefused;
  }
}

std::string ShortNumber(double v) {
  char buf[64];
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

}  // namespace dpnode::cli
