// The normal (g++) build's driver for a fuzz target: runs each input of the
// given files and directories once through LLVMFuzzerTestOneInput, so the
// committed corpus is a regression test under ctest. libFuzzer builds link
// the same target with -fsanitize=fuzzer instead of this file.
//
//   <target>_replay PATH...          replay files, and every regular file in
//                                    each directory (sorted); fails if there
//                                    were no inputs at all
//   <target>_replay --write-seeds DIR
//                                    write the target's generated seed inputs
//                                    (SeedInputs()) into DIR, then replay them
//
// A violated property aborts the process, which is how ctest sees a failure;
// the name of the input is printed before it runs so the culprit is known.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

namespace fs = std::filesystem;

bool ReadFile(const fs::path& path, std::vector<uint8_t>* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  out->assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  return !f.bad();
}

bool WriteSeeds(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    std::fprintf(stderr, "cannot create %s: %s\n", dir.c_str(), ec.message().c_str());
    return false;
  }
  for (const dpnode::fuzz::Seed& seed : dpnode::fuzz::SeedInputs()) {
    const fs::path path = dir / ("seed_" + seed.name);
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(seed.data.data()),
            static_cast<std::streamsize>(seed.data.size()));
    if (!f) {
      std::fprintf(stderr, "cannot write %s\n", path.c_str());
      return false;
    }
    std::printf("wrote %s (%zu bytes)\n", path.c_str(), seed.data.size());
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 2 && args[0] == "--write-seeds") {
    if (!WriteSeeds(args[1])) return 1;
    args.erase(args.begin());
  }
  if (args.empty()) {
    std::fprintf(stderr, "usage: %s PATH... | --write-seeds DIR\n", argv[0]);
    return 2;
  }
  std::vector<fs::path> inputs;
  for (const std::string& arg : args) {
    std::error_code ec;
    if (fs::is_directory(arg, ec)) {
      std::vector<fs::path> files;
      for (const fs::directory_entry& e : fs::directory_iterator(arg)) {
        if (e.is_regular_file()) files.push_back(e.path());
      }
      std::sort(files.begin(), files.end());
      inputs.insert(inputs.end(), files.begin(), files.end());
    } else if (fs::is_regular_file(arg, ec)) {
      inputs.emplace_back(arg);
    } else {
      std::fprintf(stderr, "no such file or directory: %s\n", arg.c_str());
      return 2;
    }
  }
  if (inputs.empty()) {
    std::fprintf(stderr, "no inputs to replay (an empty corpus tests nothing)\n");
    return 1;
  }
  std::vector<uint8_t> data;
  for (const fs::path& path : inputs) {
    if (!ReadFile(path, &data)) {
      std::fprintf(stderr, "cannot read %s\n", path.c_str());
      return 2;
    }
    std::fprintf(stderr, "running %s (%zu bytes)\n", path.c_str(), data.size());
    LLVMFuzzerTestOneInput(data.data(), data.size());
  }
  std::printf("%zu inputs replayed, no property violated\n", inputs.size());
  return 0;
}
