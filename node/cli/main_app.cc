#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "node/cli/commands.h"

namespace dpnode::cli {

void BuildApp(CLI::App& app, int& exit_code) {
  app.description(
      "dpnode: train one clinical model across hospitals with differential privacy,\n"
      "without a central server and without moving patient records.");
  app.set_version_flag("--version", std::string("dpnode ") + DPNODE_VERSION);
  app.require_subcommand(1);
  app.fallthrough(false);
  // Usage errors, like every other refusal, fit on one line.
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return std::string("dpnode: ") + e.what() + " (see --help)\n";
  });
  RegisterPrivacyCommands(app, exit_code);
  RegisterKeygenCommand(app, exit_code);
  RegisterTrainCommand(app, exit_code);
}

int Main(int argc, char** argv) {
  CLI::App app{"dpnode", "dpnode"};
  int exit_code = 0;
  BuildApp(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}

}  // namespace dpnode::cli
