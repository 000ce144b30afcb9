// Helpers shared by the configuration readers (site_config.cc, daemon.cc):
// where a TOML value sits, and refusing keys a table does not know.
#ifndef DPNODE_NODE_CLI_TOML_FIELDS_H_
#define DPNODE_NODE_CLI_TOML_FIELDS_H_

#include <set>
#include <string>
#include <toml++/toml.h>

#include "base/status.h"

namespace dpnode::cli {

// "file:line" of `node`, for error messages.
std::string Where(const std::string& file, const toml::node& node);

// InvalidArgument naming the first key of `t` not in `allowed`, as
// "file:line: unknown key 'table.key'" ('key' alone when table_name is empty).
Status OnlyKeys(const std::string& file, const std::string& table_name, const toml::table& t,
                const std::set<std::string>& allowed);

}  // namespace dpnode::cli

#endif  // DPNODE_NODE_CLI_TOML_FIELDS_H_
