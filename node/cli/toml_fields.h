// Helpers shared by the configuration readers (site_config.cc, daemon.cc):
// where a TOML value sits, and refusing keys a table does not know.
#ifndef DPNODE_NODE_CLI_TOML_FIELDS_H_
#define DPNODE_NODE_CLI_TOML_FIELDS_H_

#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <toml++/toml.h>

#include "base/status.h"

namespace dpnode::cli {

// Parses `file`. InvalidArgument "file:line: what" for a syntax error,
// "file: why" when it cannot be read.
Result<toml::table> ParseTomlFile(const std::string& file);

// "file:line" of `node`, for error messages.
std::string Where(const std::string& file, const toml::node& node);

// InvalidArgument naming the first key of `t` not in `allowed`, as
// "file:line: unknown key 'table.key'" ('key' alone when table_name is empty).
Status OnlyKeys(const std::string& file, const std::string& table_name, const toml::table& t,
                const std::set<std::string>& allowed);

// Typed getters. A missing key leaves `out` unchanged and returns OK (call
// RequireKey first for a required one). A present key of the wrong type, or
// outside [lo, hi], is InvalidArgument naming "file:line" and "table.key".
// GetDouble accepts integers, and refuses NaN and infinities.
Status RequireKey(const std::string& file, const toml::table& t, const std::string& table,
                  const std::string& key);
Status GetString(const std::string& file, const toml::table& t, const std::string& table,
                 const std::string& key, std::string& out);
Status GetBool(const std::string& file, const toml::table& t, const std::string& table,
               const std::string& key, bool& out);
Status GetInt(const std::string& file, const toml::table& t, const std::string& table,
              const std::string& key, int64_t lo, int64_t hi, int64_t& out);
Status GetDouble(const std::string& file, const toml::table& t, const std::string& table,
                 const std::string& key, double lo, double hi, double& out);
// GetDouble over every finite value.
Status GetFinite(const std::string& file, const toml::table& t, const std::string& table,
                 const std::string& key, double& out);

}  // namespace dpnode::cli

#endif  // DPNODE_NODE_CLI_TOML_FIELDS_H_
