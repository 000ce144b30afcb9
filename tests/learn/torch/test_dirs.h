// Scratch directories for the learner's tests, under the build tree.
#ifndef DPNODE_TESTS_LEARN_TORCH_TEST_DIRS_H_
#define DPNODE_TESTS_LEARN_TORCH_TEST_DIRS_H_

#include <filesystem>
#include <string>

namespace dpnode::learn {

// An empty directory build/learn_torch_tmp/<name>, emptied if it existed.
inline std::string FreshDir(const std::string& name) {
  const std::filesystem::path dir =
      std::filesystem::path(DPNODE_BINARY_DIR) / "learn_torch_tmp" / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

}  // namespace dpnode::learn

#endif  // DPNODE_TESTS_LEARN_TORCH_TEST_DIRS_H_
