// dpnode's entry point. Everything lives in node/cli/; main only hands over.
#include "node/cli/commands.h"

int main(int argc, char** argv) { return dpnode::cli::Main(argc, argv); }
