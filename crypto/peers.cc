// peers.txt parser: pinned site keys and addresses, every error with its line.
#include "crypto/peers.h"

#include <arpa/inet.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace dpnode::crypto {
namespace {

constexpr size_t kMaxNameLen = 64;
constexpr size_t kMaxHostLen = 253;  // DNS limit
constexpr size_t kMaxLabelLen = 63;

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// Letters, digits, '-' inside labels, labels of 1-63 separated by single dots.
// Covers dotted IPv4 too; an all-digit form is then checked with inet_pton.
Status CheckHostName(std::string_view host) {
  if (host.empty()) return Status::InvalidArgument("empty host");
  if (host.size() > kMaxHostLen)
    return Status::InvalidArgument("host name longer than 253 characters");
  size_t label_start = 0;
  bool all_digits_and_dots = true;
  for (size_t i = 0; i <= host.size(); ++i) {
    if (i == host.size() || host[i] == '.') {
      const size_t len = i - label_start;
      if (len == 0)
        return Status::InvalidArgument("empty label in host name '" + std::string(host) + "'");
      if (len > kMaxLabelLen)
        return Status::InvalidArgument("host name label longer than 63 characters");
      if (host[label_start] == '-' || host[i - 1] == '-') {
        return Status::InvalidArgument("host name label starts or ends with '-'");
      }
      label_start = i + 1;
      continue;
    }
    const char c = host[i];
    if (c == ':') {
      return Status::InvalidArgument("IPv6 addresses must be written in brackets: [" +
                                     std::string(host) + "]:port");
    }
    if (!IsAlnum(c) && c != '-') {
      return Status::InvalidArgument(std::string("character '") + c +
                                     "' cannot appear in a host name");
    }
    if (!(c >= '0' && c <= '9')) all_digits_and_dots = false;
  }
  if (all_digits_and_dots) {
    in_addr addr{};
    if (::inet_pton(AF_INET, std::string(host).c_str(), &addr) != 1) {
      return Status::InvalidArgument("'" + std::string(host) + "' is not a valid IPv4 address");
    }
  }
  return Status::Ok();
}

Result<uint16_t> ParsePort(std::string_view text) {
  if (text.empty()) return Status::InvalidArgument("missing port after ':'");
  if (text.size() > 5)
    return Status::InvalidArgument("port must be 1-65535, got '" + std::string(text) + "'");
  uint32_t port = 0;
  for (char c : text) {
    if (c < '0' || c > '9')
      return Status::InvalidArgument("port must be a number, got '" + std::string(text) + "'");
    port = port * 10 + static_cast<uint32_t>(c - '0');
  }
  if (port == 0 || port > 65535) {
    return Status::InvalidArgument("port must be 1-65535, got '" + std::string(text) + "'");
  }
  return static_cast<uint16_t>(port);
}

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

}  // namespace

std::string HostPort::ToString() const {
  return (is_ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Result<HostPort> ParseHostPort(std::string_view text) {
  HostPort hp;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos)
      return Status::InvalidArgument("'[' without ']' in address");
    hp.host = std::string(text.substr(1, close - 1));
    in6_addr addr{};
    if (hp.host.empty() || ::inet_pton(AF_INET6, hp.host.c_str(), &addr) != 1) {
      return Status::InvalidArgument("'" + hp.host + "' is not a valid IPv6 address");
    }
    hp.is_ipv6 = true;
    const std::string_view rest = text.substr(close + 1);
    if (rest.empty() || rest.front() != ':') {
      return Status::InvalidArgument("expected ':port' after ']' in '" + std::string(text) + "'");
    }
    port_text = rest.substr(1);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return Status::InvalidArgument("address '" + std::string(text) +
                                     "' has no port (expected host:port, or '-')");
    }
    const std::string_view host = text.substr(0, colon);
    DPNODE_RETURN_IF_ERROR(CheckHostName(host));
    hp.host = std::string(host);
    port_text = text.substr(colon + 1);
  }
  Result<uint16_t> port = ParsePort(port_text);
  if (!port.ok()) return port.status();
  hp.port = *port;
  return hp;
}

bool IsValidSiteName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLen || !IsAlnum(name.front())) return false;
  for (char c : name) {
    if (!IsAlnum(c) && c != '.' && c != '_' && c != '-') return false;
  }
  return true;
}

const PeerEntry* PeerList::FindByKey(const Ed25519PublicKey& key) const {
  for (const PeerEntry& e : entries_) {
    if (e.key == key) return &e;
  }
  return nullptr;
}

const PeerEntry* PeerList::FindByName(std::string_view name) const {
  for (const PeerEntry& e : entries_) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

Result<PeerList> ParsePeers(std::string_view text, std::string_view source_name,
                            const PeersLimits& limits) {
  PeerList list;
  int line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    auto fail = [&](const std::string& reason) {
      return Status::InvalidArgument(std::string(source_name) + ":" + std::to_string(line_no) +
                                     ": " + reason);
    };
    if (line.size() > limits.max_line_bytes) {
      return fail("line longer than " + std::to_string(limits.max_line_bytes) + " bytes");
    }
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const size_t hash = line.find('#');
    if (hash != std::string_view::npos) line = line.substr(0, hash);

    std::vector<std::string_view> fields;
    size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && IsBlank(line[i])) ++i;
      const size_t start = i;
      while (i < line.size() && !IsBlank(line[i])) ++i;
      if (i > start) fields.push_back(line.substr(start, i - start));
    }
    if (fields.empty()) continue;
    for (std::string_view f : fields) {
      for (char c : f) {
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
          return fail("non-printable or non-ASCII character");
        }
      }
    }
    if (fields.size() != 3) {
      return fail("expected 3 fields (name, public key, host:port or '-'), found " +
                  std::to_string(fields.size()));
    }
    PeerEntry entry;
    entry.line = line_no;
    if (!IsValidSiteName(fields[0])) {
      return fail("invalid site name '" + std::string(fields[0]) +
                  "' (1-64 of letters, digits, '.', '_', '-', starting with a letter or digit)");
    }
    entry.name = std::string(fields[0]);
    Result<Ed25519PublicKey> key = PublicKeyFromText(fields[1]);
    if (!key.ok()) return fail(key.status().message());
    entry.key = *key;
    if (fields[2] != "-") {
      Result<HostPort> hp = ParseHostPort(fields[2]);
      if (!hp.ok()) return fail(hp.status().message());
      entry.address = std::move(*hp);
    }
    if (const PeerEntry* other = list.FindByName(entry.name)) {
      return fail("duplicate site name '" + entry.name + "', already on line " +
                  std::to_string(other->line));
    }
    if (const PeerEntry* other = list.FindByKey(entry.key)) {
      return fail("duplicate public key, already used by '" + other->name + "' on line " +
                  std::to_string(other->line));
    }
    if (list.entries_.size() >= limits.max_sites) {
      return fail("more than " + std::to_string(limits.max_sites) + " sites");
    }
    list.entries_.push_back(std::move(entry));
  }
  return list;
}

Result<PeerList> ReadPeersFile(const std::string& path, const PeersLimits& limits) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const std::string why = std::strerror(errno);
    if (errno == ENOENT) return Status::NotFound("peers file " + path + " does not exist");
    return Status::IoError("reading " + path + ": " + why);
  }
  // Comment lines count too, so bound by lines of the maximum length plus
  // slack for a generous header comment.
  const uint64_t max_bytes =
      static_cast<uint64_t>(limits.max_sites + 100) * (limits.max_line_bytes + 1);
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    return Status::InvalidArgument(path + ": file is larger than " + std::to_string(max_bytes) +
                                   " bytes; not a peers file?");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError("reading " + path + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Status::IoError("reading " + path);
  const std::string text = ss.str();
  if (text.size() > max_bytes) return Status::InvalidArgument(path + ": file grew while reading");
  return ParsePeers(text, path, limits);
}

std::string FormatPeerLine(std::string_view name, const Ed25519PublicKey& key,
                           const std::optional<HostPort>& address) {
  return std::string(name) + " " + PublicKeyToText(key) + " " +
         (address ? address->ToString() : std::string("-"));
}

}  // namespace dpnode::crypto
