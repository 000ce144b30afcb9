// peers.txt: accepted forms, and every refusal naming its file and line.
#include "crypto/peers.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace dpnode::crypto {
namespace {

std::string NewKeyText() {
  Result<SiteIdentity> id = SiteIdentity::Generate();
  REQUIRE(id.ok());
  return PublicKeyToText(id->public_key());
}

// Parses `text` and requires a refusal that starts "peers.txt:<line>: " and
// mentions `reason`.
void ExpectRefused(const std::string& text, int line, const std::string& reason) {
  Result<PeerList> r = ParsePeers(text, "peers.txt");
  REQUIRE_FALSE_MESSAGE(r.ok(), text);
  CHECK(r.status().code() == StatusCode::kInvalidArgument);
  const std::string prefix = "peers.txt:" + std::to_string(line) + ": ";
  CHECK_MESSAGE(r.status().message().rfind(prefix, 0) == 0, r.status().message());
  CHECK_MESSAGE(r.status().message().find(reason) != std::string::npos, r.status().message());
}

TEST_CASE("peers: comments, blank lines, addresses of every kind") {
  const std::string k1 = NewKeyText(), k2 = NewKeyText(), k3 = NewKeyText(), k4 = NewKeyText();
  const std::string text =
      "# consortium peers\n"
      "\n"
      "st-olav " +
      k1 +
      " 10.0.0.5:7400\n"
      "   \t  \n"
      "karolinska\t" +
      k2 +
      "\t[2001:db8::7]:7400   # via VPN\n"
      "aarhus " +
      k3 +
      " -\r\n"
      "node.example_1 " +
      k4 + " dp-node.example.org:65535";  // no final newline
  Result<PeerList> r = ParsePeers(text, "peers.txt");
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  REQUIRE(r->size() == 4);
  const auto& e = r->entries();
  CHECK(e[0].name == "st-olav");
  CHECK(PublicKeyToText(e[0].key) == k1);
  REQUIRE(e[0].address.has_value());
  CHECK(e[0].address->host == "10.0.0.5");
  CHECK(e[0].address->port == 7400);
  CHECK(e[0].line == 3);
  CHECK(e[1].address->host == "2001:db8::7");
  CHECK(e[1].address->is_ipv6);
  CHECK(e[1].address->ToString() == "[2001:db8::7]:7400");
  CHECK(e[1].line == 5);
  CHECK_FALSE(e[2].address.has_value());
  CHECK(e[3].address->ToString() == "dp-node.example.org:65535");
  CHECK(e[3].line == 7);

  Result<Ed25519PublicKey> key2 = PublicKeyFromText(k2);
  REQUIRE(key2.ok());
  REQUIRE(r->FindByKey(*key2) != nullptr);
  CHECK(r->FindByKey(*key2)->name == "karolinska");
  CHECK(r->IsPinned(*key2));
  Result<Ed25519PublicKey> stranger = PublicKeyFromText(NewKeyText());
  REQUIRE(stranger.ok());
  CHECK_FALSE(r->IsPinned(*stranger));
  CHECK(r->FindByName("aarhus") == &e[2]);
  CHECK(r->FindByName("nobody") == nullptr);

  Result<PeerList> empty = ParsePeers("# nobody yet\n\n", "peers.txt");
  REQUIRE(empty.ok());
  CHECK(empty->size() == 0);
}

TEST_CASE("peers: the keygen line parses back") {
  Result<SiteIdentity> id = SiteIdentity::Generate();
  REQUIRE(id.ok());
  Result<HostPort> hp = ParseHostPort("[::1]:9000");
  REQUIRE(hp.ok());
  for (const std::optional<HostPort>& address :
       {std::optional<HostPort>(), std::optional<HostPort>(*hp)}) {
    const std::string line = FormatPeerLine("site-a", id->public_key(), address);
    Result<PeerList> r = ParsePeers(line + "\n", "x");
    REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    CHECK(r->entries()[0].key == id->public_key());
    CHECK(r->entries()[0].address == address);
  }
}

TEST_CASE("peers: every malformed line is refused with its line number") {
  const std::string k = NewKeyText();
  const std::string good = "first " + NewKeyText() + " -\n";
  // Each bad line is placed on line 3, after a comment and a good line.
  struct Case {
    std::string line;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {"lonely", "expected 3 fields"},
      {"a " + k, "expected 3 fields"},
      {"a " + k + " host:1 extra", "expected 3 fields"},
      {"-bad " + k + " -", "invalid site name"},
      {"bad/name " + k + " -", "invalid site name"},
      {std::string(65, 'n') + " " + k + " -", "invalid site name"},
      {"a " + k.substr(8) + " -", "must start with \"ed25519:\""},
      {"a ed25519:short -", "44 base64 characters"},
      {"a ed25519:" + std::string(44, '!') + " -", "not valid base64"},
      {"a " + k + " host", "has no port"},
      {"a " + k + " host:", "missing port"},
      {"a " + k + " host:0", "port must be 1-65535"},
      {"a " + k + " host:65536", "port must be 1-65535"},
      {"a " + k + " host:123456", "port must be 1-65535"},
      {"a " + k + " host:http", "port must be a number"},
      {"a " + k + " 2001:db8::1:7400", "must be written in brackets"},
      {"a " + k + " [2001:db8::zz]:7400", "not a valid IPv6 address"},
      {"a " + k + " []:7400", "not a valid IPv6 address"},
      {"a " + k + " [::1:7400", "without ']'"},
      {"a " + k + " [::1]7400", "expected ':port'"},
      {"a " + k + " 256.1.1.1:7400", "not a valid IPv4 address"},
      {"a " + k + " ho_st:7400", "cannot appear in a host name"},
      {"a " + k + " a..b:7400", "empty label"},
      {"a " + k + " -a.b:7400", "starts or ends with '-'"},
      {"a " + k + " " + std::string(64, 'x') + ".org:7400", "label longer than 63"},
      {"a " + k + " :7400", "empty host"},
      {"caf\xc3\xa9 " + k + " -", "non-ASCII"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.line);
    ExpectRefused("# header\n" + good + c.line + "\n" + "last " + NewKeyText() + " -\n", 3,
                  c.reason);
  }
}

TEST_CASE("peers: duplicates are refused, naming both lines") {
  const std::string k1 = NewKeyText(), k2 = NewKeyText();
  ExpectRefused("a " + k1 + " -\n# c\nb " + k2 + " -\na " + NewKeyText() + " -\n", 4,
                "duplicate site name 'a', already on line 1");
  ExpectRefused("a " + k1 + " -\nb " + k1 + " h:1\n", 2,
                "duplicate public key, already used by 'a' on line 1");
}

TEST_CASE("peers: bounds on line length and number of sites") {
  PeersLimits limits;
  limits.max_line_bytes = 100;
  limits.max_sites = 2;
  const std::string long_comment = "#" + std::string(100, 'c') + "\n";  // 101 bytes
  Result<PeerList> r = ParsePeers("\n" + long_comment, "p", limits);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message().rfind("p:2: line longer than 100 bytes", 0) == 0);

  const std::string three =
      "a " + NewKeyText() + " -\nb " + NewKeyText() + " -\nc " + NewKeyText() + " -\n";
  Result<PeerList> many = ParsePeers(three, "p", limits);
  REQUIRE_FALSE(many.ok());
  CHECK(many.status().message().rfind("p:3: more than 2 sites", 0) == 0);
  limits.max_sites = 3;
  CHECK(ParsePeers(three, "p", limits).ok());
}

TEST_CASE("peers: reading the file") {
  char path[] = "/tmp/dpnode_peers_XXXXXX";
  const int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  ::close(fd);
  {
    std::ofstream f(path);
    f << "# test\nsite-a " << NewKeyText() << " localhost:7400\n";
  }
  Result<PeerList> r = ReadPeersFile(path);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  CHECK(r->size() == 1);
  {
    std::ofstream f(path);
    f << "# test\nsite-a nokey localhost:7400\n";
  }
  Result<PeerList> bad = ReadPeersFile(path);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().rfind(std::string(path) + ":2: ", 0) == 0);

  PeersLimits tiny;
  tiny.max_line_bytes = 10;
  tiny.max_sites = 1;  // at most (1 + 100) * 11 bytes
  {
    std::ofstream f(path);
    f << std::string(2000, '#') << "\n";
  }
  Result<PeerList> big = ReadPeersFile(path, tiny);
  REQUIRE_FALSE(big.ok());
  CHECK(big.status().message().find("larger than") != std::string::npos);
  std::remove(path);
  CHECK(ReadPeersFile(path).status().code() == StatusCode::kNotFound);
}

}  // namespace
}  // namespace dpnode::crypto
