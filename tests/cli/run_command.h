// Runs the built `dpnode` binary as a user would and captures what it says.
#ifndef DPNODE_TESTS_CLI_RUN_COMMAND_H_
#define DPNODE_TESTS_CLI_RUN_COMMAND_H_

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>

namespace dpnode::testing {

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs `build/dpnode <args>` through the shell (args are passed verbatim).
inline CommandResult RunDpnode(const std::string& args) {
  char err_path[] = "/tmp/dpnode_cli_err_XXXXXX";
  const int fd = mkstemp(err_path);
  if (fd >= 0) close(fd);
  const std::string cmd =
      std::string(DPNODE_BINARY_DIR) + "/dpnode " + args + " 2>" + err_path + " </dev/null";
  CommandResult r;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::ifstream err(err_path);
  std::stringstream ss;
  ss << err.rdbuf();
  r.err = ss.str();
  std::remove(err_path);
  return r;
}

inline int CountLines(const std::string& s) {
  int lines = 0;
  for (char c : s) lines += c == '\n';
  return lines;
}

}  // namespace dpnode::testing

#endif  // DPNODE_TESTS_CLI_RUN_COMMAND_H_
