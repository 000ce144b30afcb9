#include "node/cli/toml_fields.h"

namespace dpnode::cli {

std::string Where(const std::string& file, const toml::node& node) {
  return file + ":" + std::to_string(node.source().begin.line);
}

Status OnlyKeys(const std::string& file, const std::string& table_name, const toml::table& t,
                const std::set<std::string>& allowed) {
  for (const auto& [key, node] : t) {
    if (!allowed.count(std::string(key.str()))) {
      return Status::InvalidArgument(Where(file, node) + ": unknown key '" +
                                     (table_name.empty() ? "" : table_name + ".") +
                                     std::string(key.str()) + "'");
    }
  }
  return Status::Ok();
}

}  // namespace dpnode::cli
