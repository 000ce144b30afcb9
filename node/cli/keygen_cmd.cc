// `dpnode keygen`: creates a site identity (Ed25519) in an owner-only
// directory and prints the line other sites put in their peers.txt.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "crypto/identity.h"
#include "crypto/peers.h"
#include "node/cli/commands.h"
#include "node/cli/output.h"

namespace dpnode::cli {
namespace {

struct KeygenFlags {
  std::string out;
  std::string name;
  std::string address = "-";
};

int RunKeygen(const KeygenFlags& f) {
  const std::string cmd = "keygen";
  if (!crypto::IsValidSiteName(f.name)) {
    return ReportError(cmd, Status::InvalidArgument(
                                "--name '" + f.name +
                                "' is not a valid site name (1-64 of letters, digits, '.', '_', "
                                "'-', starting with a letter or digit)"));
  }
  std::optional<crypto::HostPort> address;
  if (f.address != "-") {
    Result<crypto::HostPort> hp = crypto::ParseHostPort(f.address);
    if (!hp.ok()) return ReportError(cmd, hp.status().WithContext("--address"));
    address = *hp;
  }
  Result<crypto::SiteIdentity> id = crypto::SiteIdentity::Generate();
  if (!id.ok()) return ReportError(cmd, id.status());
  const Status written = crypto::WriteIdentity(f.out, *id);
  if (!written.ok()) return ReportError(cmd, written);
  // stdout carries only the peers.txt line, so `>> peers.txt` works.
  std::printf("%s\n", crypto::FormatPeerLine(f.name, id->public_key(), address).c_str());
  std::fprintf(stderr,
               "dpnode: keygen: wrote %s/%s (secret: keep it private) and %s; fingerprint %s\n",
               f.out.c_str(), crypto::kIdentitySecretFile, crypto::kIdentityPublicFile,
               crypto::Fingerprint(id->public_key()).c_str());
  return kExitOk;
}

}  // namespace

void RegisterKeygenCommand(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<KeygenFlags>();
  CLI::App* cmd = app.add_subcommand(
      "keygen",
      "Create this site's identity (Ed25519) and print its line for other sites' peers.txt");
  cmd->add_option("--out", flags->out,
                  "directory for site.key (secret, mode 0600) and site.pub; created 0700")
      ->required();
  cmd->add_option("--name", flags->name, "this site's name in peers.txt")->required();
  cmd->add_option("--address", flags->address,
                  "host:port other sites dial ([v6]:port for IPv6), or '-' to learn it from peers")
      ->capture_default_str();
  cmd->callback([flags, &exit_code] { exit_code = RunKeygen(*flags); });
}

}  // namespace dpnode::cli
