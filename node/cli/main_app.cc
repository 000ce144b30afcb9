#include <CLI/CLI.hpp>

#include "node/cli/commands.h"
#include "node/cli/logging.h"

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
  app.add_option_function<std::string>(
         "--log-level",
         [](const std::string& level) {
           Status s = SetUpLogging(level);
           if (!s.ok()) throw CLI::ValidationError("--log-level", s.message());
         },
         "log detail on stderr: trace, debug, info (default), warn, error, off")
      ->type_name("LEVEL");
  RegisterPrivacyCommands(app, exit_code);
  RegisterKeygenCommand(app, exit_code);
  RegisterTrainCommand(app, exit_code);
  RegisterSimCommand(app, exit_code);
  RegisterRunCommand(app, exit_code);
}

int Main(int argc, char** argv) {
  CLI::App app{"dpnode", "dpnode"};
  int exit_code = 0;
  (void)SetUpLogging("info");
  BuildApp(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}

}  // namespace dpnode::cli
