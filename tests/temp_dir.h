// A fresh directory for one test, removed with everything in it when the
// test ends.
#ifndef DPNODE_TESTS_TEMP_DIR_H_
#define DPNODE_TESTS_TEMP_DIR_H_

#include <doctest/doctest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

namespace dpnode::testing {

enum class TempRoot {
  kTmp,          // /tmp (a real disk on most machines: fsync costs what it costs)
  kPreferTmpfs,  // /dev/shm when writable: for tests that reopen and fsync hundreds of times
};

class TempDir {
 public:
  explicit TempDir(TempRoot root = TempRoot::kTmp) {
    std::string base = "/tmp";
    struct stat st;
    if (root == TempRoot::kPreferTmpfs && ::stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) &&
        ::access("/dev/shm", W_OK) == 0) {
      base = "/dev/shm";
    }
    std::string tmpl = base + "/dpnode_test_XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    REQUIRE(::mkdtemp(buf.data()) != nullptr);
    path_ = buf.data();
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;  // a destructor must not throw
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  // path()/name.
  std::string operator/(const std::string& name) const {
    return (std::filesystem::path(path_) / name).string();
  }

 private:
  std::string path_;
};

}  // namespace dpnode::testing

#endif  // DPNODE_TESTS_TEMP_DIR_H_
