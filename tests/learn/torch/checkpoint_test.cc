// The checkpoint file: bit-exact round trip, every corruption refused, a
// checkpoint of another model refused, a torn temporary file ignored.
#include "node/learn/checkpoint.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>
#include "tests/learn/torch/test_dirs.h"

namespace dpnode::learn {
namespace {

namespace fs = std::filesystem;

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

Checkpoint Sample() {
  Checkpoint c;
  for (size_t i = 0; i < c.fingerprint.size(); ++i)
    c.fingerprint[i] = static_cast<uint8_t>(i * 7 + 1);
  c.steps = 1234;
  for (int i = 0; i < 50; ++i) c.parameters.push_back(std::sin(static_cast<float>(i)) * 3.0f);
  c.parameters.push_back(-0.0f);
  c.parameters.push_back(std::numeric_limits<float>::denorm_min());
  c.optimizer.steps = 1234;
  for (size_t i = 0; i < c.parameters.size(); ++i) {
    c.optimizer.m.push_back(static_cast<float>(i) * 1e-3f);
    c.optimizer.v.push_back(static_cast<float>(i) * 1e-7f);
  }
  c.extras["push_sum_weight"] = 0.1 + 0.2;
  c.extras["round"] = 77;
  c.extras["weird"] = std::numeric_limits<double>::quiet_NaN();
  return c;
}

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST_CASE("a checkpoint round-trips bit-exactly") {
  const std::string path = FreshDir("ckpt_roundtrip") + "/node.ckpt";
  const Checkpoint c = Sample();
  REQUIRE(WriteCheckpoint(path, c).ok());
  CHECK(!fs::exists(path + ".tmp"));
  Result<Checkpoint> r = ReadCheckpoint(path, c.fingerprint);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  CHECK(r->fingerprint == c.fingerprint);
  CHECK(r->steps == c.steps);
  CHECK(SameBits(r->parameters, c.parameters));
  CHECK(std::signbit(r->parameters[50]));
  CHECK(r->optimizer.steps == c.optimizer.steps);
  CHECK(SameBits(r->optimizer.m, c.optimizer.m));
  CHECK(SameBits(r->optimizer.v, c.optimizer.v));
  REQUIRE(r->extras.size() == 3);
  CHECK(r->extras.at("push_sum_weight") == c.extras.at("push_sum_weight"));
  CHECK(r->extras.at("round") == 77);
  CHECK(std::isnan(r->extras.at("weird")));

  // An SGD state (no second moment) and no extras round-trip too; a second
  // write replaces the first.
  Checkpoint sgd = Sample();
  sgd.optimizer.v.clear();
  sgd.extras.clear();
  sgd.steps = 1235;
  REQUIRE(WriteCheckpoint(path, sgd).ok());
  Result<Checkpoint> r2 = ReadCheckpoint(path, sgd.fingerprint);
  REQUIRE(r2.ok());
  CHECK(r2->steps == 1235);
  CHECK(r2->optimizer.v.empty());
  CHECK(r2->extras.empty());
}

TEST_CASE("every flipped byte and every truncation is refused as corruption") {
  const std::string path = FreshDir("ckpt_corrupt") + "/node.ckpt";
  const Checkpoint c = Sample();
  REQUIRE(WriteCheckpoint(path, c).ok());
  const std::string good = ReadBytes(path);
  REQUIRE(good.size() > 100);
  const std::string bad_path = path + ".bad";
  for (size_t pos = 0; pos < good.size(); pos += 13) {
    std::string bytes = good;
    bytes[pos] = static_cast<char>(bytes[pos] ^ 0x20);
    WriteBytes(bad_path, bytes);
    Result<Checkpoint> r = ReadCheckpoint(bad_path, c.fingerprint);
    CHECK_MESSAGE(r.status().code() == StatusCode::kCorruption, "flipped byte " << pos);
  }
  for (size_t len : {size_t{0}, size_t{7}, size_t{40}, good.size() / 2, good.size() - 1}) {
    WriteBytes(bad_path, good.substr(0, len));
    CHECK_MESSAGE(
        ReadCheckpoint(bad_path, c.fingerprint).status().code() == StatusCode::kCorruption,
        "truncated to " << len);
  }
  WriteBytes(bad_path, good + "x");
  CHECK(ReadCheckpoint(bad_path, c.fingerprint).status().code() == StatusCode::kCorruption);
  // The intact file still reads.
  CHECK(ReadCheckpoint(path, c.fingerprint).ok());
}

TEST_CASE("a checkpoint of another model is refused") {
  const std::string path = FreshDir("ckpt_fingerprint") + "/node.ckpt";
  const Checkpoint c = Sample();
  REQUIRE(WriteCheckpoint(path, c).ok());
  ModelFingerprint other = c.fingerprint;
  other[31] ^= 1;
  Result<Checkpoint> r = ReadCheckpoint(path, other);
  CHECK(r.status().code() == StatusCode::kFailedPrecondition);
  CHECK(r.status().message().find(ModelFingerprintHex(other)) != std::string::npos);
}

TEST_CASE("a torn temporary file is ignored and replaced") {
  const std::string dir = FreshDir("ckpt_torn");
  const std::string path = dir + "/node.ckpt";
  const Checkpoint c = Sample();
  // Crash before the first rename: only PATH.tmp exists; there is no checkpoint.
  WriteBytes(path + ".tmp", "DPNCKPT1 half-written");
  CHECK(ReadCheckpoint(path, c.fingerprint).status().code() == StatusCode::kNotFound);
  REQUIRE(WriteCheckpoint(path, c).ok());
  // Crash during a later write: the torn temporary does not affect PATH.
  const std::string good = ReadBytes(path);
  WriteBytes(path + ".tmp", good.substr(0, good.size() / 3));
  Result<Checkpoint> r = ReadCheckpoint(path, c.fingerprint);
  REQUIRE(r.ok());
  CHECK(r->steps == c.steps);
  Checkpoint next = c;
  next.steps += 1;
  REQUIRE(WriteCheckpoint(path, next).ok());
  CHECK(ReadCheckpoint(path, c.fingerprint)->steps == next.steps);
  CHECK(!fs::exists(path + ".tmp"));
}

TEST_CASE("WriteCheckpoint refuses bad extras and reports unwritable paths") {
  const std::string dir = FreshDir("ckpt_bad");
  Checkpoint c = Sample();
  c.extras[""] = 1;
  CHECK(WriteCheckpoint(dir + "/a.ckpt", c).code() == StatusCode::kInvalidArgument);
  c = Sample();
  c.extras[std::string(kMaxCheckpointKeyBytes + 1, 'k')] = 1;
  CHECK(WriteCheckpoint(dir + "/a.ckpt", c).code() == StatusCode::kInvalidArgument);
  CHECK(WriteCheckpoint(dir + "/no/such/dir/a.ckpt", Sample()).code() == StatusCode::kIoError);
}

}  // namespace
}  // namespace dpnode::learn
