#include "node/cli/toml_fields.h"

#include <cmath>
#include <cstdio>

namespace dpnode::cli {
namespace {

std::string Number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

Result<toml::table> ParseTomlFile(const std::string& file) {
  try {
    return toml::parse_file(file);
  } catch (const toml::parse_error& e) {
    return Status::InvalidArgument(file + ":" + std::to_string(e.source().begin.line) + ": " +
                                   std::string(e.description()));
  } catch (const std::exception& e) {
    return Status::InvalidArgument(file + ": " + e.what());
  }
}

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

Status RequireKey(const std::string& file, const toml::table& t, const std::string& table,
                  const std::string& key) {
  if (t.get(key)) return Status::Ok();
  return Status::InvalidArgument(file + ": missing key '" + table + "." + key + "'");
}

Status GetString(const std::string& file, const toml::table& t, const std::string& table,
                 const std::string& key, std::string& out) {
  const toml::node* n = t.get(key);
  if (!n) return Status::Ok();
  if (!n->is_string()) {
    return Status::InvalidArgument(Where(file, *n) + ": " + table + "." + key +
                                   " must be a string");
  }
  out = n->as_string()->get();
  return Status::Ok();
}

Status GetInt(const std::string& file, const toml::table& t, const std::string& table,
              const std::string& key, int64_t lo, int64_t hi, int64_t& out) {
  const toml::node* n = t.get(key);
  if (!n) return Status::Ok();
  if (!n->is_integer()) {
    return Status::InvalidArgument(Where(file, *n) + ": " + table + "." + key +
                                   " must be an integer");
  }
  const int64_t v = n->as_integer()->get();
  if (v < lo || v > hi) {
    return Status::InvalidArgument(Where(file, *n) + ": " + table + "." + key + " = " +
                                   std::to_string(v) + " is outside [" + std::to_string(lo) +
                                   ", " + std::to_string(hi) + "]");
  }
  out = v;
  return Status::Ok();
}

Status GetDouble(const std::string& file, const toml::table& t, const std::string& table,
                 const std::string& key, double lo, double hi, double& out) {
  const toml::node* n = t.get(key);
  if (!n) return Status::Ok();
  double v = 0;
  if (n->is_integer()) {
    v = static_cast<double>(n->as_integer()->get());
  } else if (n->is_floating_point()) {
    v = n->as_floating_point()->get();
  } else {
    return Status::InvalidArgument(Where(file, *n) + ": " + table + "." + key +
                                   " must be a number");
  }
  if (!std::isfinite(v)) {
    return Status::InvalidArgument(Where(file, *n) + ": " + table + "." + key +
                                   " must be a finite number");
  }
  if (v < lo || v > hi) {
    return Status::InvalidArgument(Where(file, *n) + ": " + table + "." + key + " = " +
                                   Number(v) + " is outside [" + Number(lo) + ", " + Number(hi) +
                                   "]");
  }
  out = v;
  return Status::Ok();
}

Status GetBool(const std::string& file, const toml::table& t, const std::string& table,
               const std::string& key, bool& out) {
  const toml::node* n = t.get(key);
  if (!n) return Status::Ok();
  if (!n->is_boolean()) {
    return Status::InvalidArgument(Where(file, *n) + ": " + table + "." + key +
                                   " must be true or false");
  }
  out = n->as_boolean()->get();
  return Status::Ok();
}

Status GetFinite(const std::string& file, const toml::table& t, const std::string& table,
                 const std::string& key, double& out) {
  return GetDouble(file, t, table, key, std::numeric_limits<double>::lowest(),
                   std::numeric_limits<double>::max(), out);
}

}  // namespace dpnode::cli
