// peers.txt: the consortium's pinned identities. One site per line:
//
//   # name      public key (from `dpnode keygen`)   address
//   st-olav     ed25519:<44 base64 characters>      10.0.0.5:7400
//   karolinska  ed25519:<44 base64 characters>      [2001:db8::7]:7400
//   aarhus      ed25519:<44 base64 characters>      -
//
// Fields are separated by spaces or tabs; '#' starts a comment (whole line
// or after the fields); blank lines are ignored. The address is host:port
// (a DNS name, an IPv4 address, or an IPv6 address in brackets; port
// 1-65535) or '-' when it is to be learned from other peers. The full format
// is in docs/peers.md. Every error names the line: "peers.txt:7: reason".
// Duplicate names and duplicate keys are refused, so a key maps to one site.
// Pure: parsing works on text; ReadPeersFile is the only I/O.
#ifndef DPNODE_CRYPTO_PEERS_H_
#define DPNODE_CRYPTO_PEERS_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "crypto/identity.h"

namespace dpnode::crypto {

struct HostPort {
  std::string host;   // a DNS name, dotted IPv4, or IPv6 without the brackets
  uint16_t port = 0;  // 1-65535
  bool is_ipv6 = false;

  // "host:port", with brackets around IPv6 hosts.
  std::string ToString() const;
  bool operator==(const HostPort& o) const { return host == o.host && port == o.port; }
};

// "example.org:7400", "10.0.0.5:7400", "[2001:db8::1]:7400". kInvalidArgument
// with a reason for anything else (missing or out-of-range port, a bare IPv6
// address, characters a host name cannot contain, labels over 63 characters).
Result<HostPort> ParseHostPort(std::string_view text);

struct PeerEntry {
  std::string name;  // 1-64 of [A-Za-z0-9._-], starting with a letter or digit
  Ed25519PublicKey key{};
  std::optional<HostPort> address;  // nullopt for '-'
  int line = 0;                     // 1-based line in the source, for messages
};

struct PeersLimits {
  size_t max_line_bytes = 1024;  // longer lines are refused, comments included
  size_t max_sites = 1000;       // a consortium of hospitals, with room to spare
};

class PeerList {
 public:
  const std::vector<PeerEntry>& entries() const { return entries_; }
  size_t size() const { return entries_.size(); }
  // nullptr when absent. Pointers stay valid while the list is not modified.
  const PeerEntry* FindByKey(const Ed25519PublicKey& key) const;
  const PeerEntry* FindByName(std::string_view name) const;
  bool IsPinned(const Ed25519PublicKey& key) const { return FindByKey(key) != nullptr; }

 private:
  friend Result<PeerList> ParsePeers(std::string_view, std::string_view, const PeersLimits&);
  std::vector<PeerEntry> entries_;
};

// Parses peers.txt contents. `source_name` prefixes every error
// ("peers.txt:7: duplicate key, already used by 'aarhus' on line 3").
// kInvalidArgument for any malformed or duplicate line, or more than
// limits.max_sites sites. An empty list (only comments) is valid.
Result<PeerList> ParsePeers(std::string_view text, std::string_view source_name,
                            const PeersLimits& limits = {});

// Reads and parses the file at `path` (at most max_sites * max_line_bytes
// bytes; larger files are refused before they are read). kNotFound /
// kIoError when it cannot be read.
Result<PeerList> ReadPeersFile(const std::string& path, const PeersLimits& limits = {});

// The line keygen prints for other sites' peers.txt: "name key address",
// with '-' when there is no address.
std::string FormatPeerLine(std::string_view name, const Ed25519PublicKey& key,
                           const std::optional<HostPort>& address);

// True when `name` is a valid site name (see PeerEntry::name).
bool IsValidSiteName(std::string_view name);

}  // namespace dpnode::crypto

#endif  // DPNODE_CRYPTO_PEERS_H_
