// A fresh directory under /tmp for one test, removed when the test ends.
#ifndef DPNODE_TESTS_TEMP_DIR_H_
#define DPNODE_TESTS_TEMP_DIR_H_

#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

namespace dpnode::testing {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/dpnode_test_XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path_ = tmpl;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace dpnode::testing

#endif  // DPNODE_TESTS_TEMP_DIR_H_
