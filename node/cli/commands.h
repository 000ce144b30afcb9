// The `dpnode` command line: one Register* function per subcommand family.
// Each adds its subcommands to the CLI11 app and a callback that sets the exit
// code; main() only parses and returns it. Commands print results to stdout
// and one-line reasons for failure to stderr.
#ifndef DPNODE_NODE_CLI_COMMANDS_H_
#define DPNODE_NODE_CLI_COMMANDS_H_

namespace CLI {
class App;
}

namespace dpnode::cli {

// Builds the full `dpnode` app. `exit_code` receives the result of whichever
// subcommand ran; it must outlive the app.
void BuildApp(CLI::App& app, int& exit_code);

// `dpnode privacy ...`: epsilon, noise, steps, plan, ledger.
void RegisterPrivacyCommands(CLI::App& app, int& exit_code);

// `dpnode keygen`: a site identity and its peers.txt line.
void RegisterKeygenCommand(CLI::App& app, int& exit_code);

// `dpnode train`: local-only or pooled training, evaluation, model file.
void RegisterTrainCommand(CLI::App& app, int& exit_code);

// `dpnode sim`: a simulated experiment (docs/experiments.md).
void RegisterSimCommand(CLI::App& app, int& exit_code);

// `dpnode run` and the bare `dpnode --peers FILE`: the site daemon.
void RegisterRunCommand(CLI::App& app, int& exit_code);

// Parses argv and runs; the process exit code.
int Main(int argc, char** argv);

}  // namespace dpnode::cli

#endif  // DPNODE_NODE_CLI_COMMANDS_H_
