// Checkpoint encoding, atomic write and verified read.
//
// Layout (all integers little-endian; floats/doubles as their IEEE bits):
//   "DPNCKPT1"                      8 bytes
//   model fingerprint              32 bytes
//   steps                          int64
//   parameters: count P (uint64), P × float32
//   optimizer steps                int64
//   optimizer m: count (uint64), floats
//   optimizer v: count (uint64), floats
//   extras: count E (uint32), E × { key length (uint32), key bytes, float64 }
//   BLAKE2b-256 of all the bytes above   32 bytes
#include "node/learn/checkpoint.h"

#include <fcntl.h>
#include <sodium.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace dpnode::learn {
namespace {

constexpr char kMagic[8] = {'D', 'P', 'N', 'C', 'K', 'P', 'T', '1'};
constexpr size_t kHashBytes = 32;

void PutU64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutU32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutFloats(std::string& out, const std::vector<float>& values) {
  PutU64(out, values.size());
  for (float f : values) {
    uint32_t bits;
    std::memcpy(&bits, &f, sizeof(bits));
    PutU32(out, bits);
  }
}

// Bounds-checked little-endian reader; every getter returns false past the end.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  size_t left() const { return size_ - pos_; }
  bool Bytes(void* out, size_t n) {
    if (left() < n) return false;
    std::memcpy(out, data_ + pos_, n);
    pos_ += n;
    return true;
  }
  bool U64(uint64_t& v) {
    if (left() < 8) return false;
    v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(data_[pos_ + i]) << (8 * i);
    pos_ += 8;
    return true;
  }
  bool U32(uint32_t& v) {
    if (left() < 4) return false;
    v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(data_[pos_ + i]) << (8 * i);
    pos_ += 4;
    return true;
  }
  bool Floats(std::vector<float>& out) {
    uint64_t n;
    if (!U64(n)) return false;
    // Check against what is actually there before allocating.
    if (n > static_cast<uint64_t>(kMaxCheckpointFloats) || n > left() / 4) return false;
    out.resize(static_cast<size_t>(n));
    for (float& f : out) {
      uint32_t bits = 0;
      U32(bits);
      std::memcpy(&f, &bits, sizeof(f));
    }
    return true;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

Status Encode(const Checkpoint& c, std::string& out) {
  const auto too_big = [](const std::vector<float>& v) {
    return static_cast<uint64_t>(v.size()) > static_cast<uint64_t>(kMaxCheckpointFloats);
  };
  if (too_big(c.parameters) || too_big(c.optimizer.m) || too_big(c.optimizer.v)) {
    return Status::InvalidArgument("checkpoint vector over the size limit");
  }
  if (c.extras.size() > kMaxCheckpointExtras) {
    return Status::InvalidArgument("checkpoint has more than " +
                                   std::to_string(kMaxCheckpointExtras) + " extra values");
  }
  out.clear();
  out.append(kMagic, sizeof(kMagic));
  out.append(reinterpret_cast<const char*>(c.fingerprint.data()), c.fingerprint.size());
  PutU64(out, static_cast<uint64_t>(c.steps));
  PutFloats(out, c.parameters);
  PutU64(out, static_cast<uint64_t>(c.optimizer.steps));
  PutFloats(out, c.optimizer.m);
  PutFloats(out, c.optimizer.v);
  PutU32(out, static_cast<uint32_t>(c.extras.size()));
  for (const auto& [key, value] : c.extras) {
    if (key.empty() || key.size() > kMaxCheckpointKeyBytes) {
      return Status::InvalidArgument("checkpoint extra key must be 1.." +
                                     std::to_string(kMaxCheckpointKeyBytes) + " bytes");
    }
    PutU32(out, static_cast<uint32_t>(key.size()));
    out.append(key);
    uint64_t bits;
    std::memcpy(&bits, &value, sizeof(bits));
    PutU64(out, bits);
  }
  uint8_t hash[kHashBytes];
  crypto_generichash(hash, sizeof(hash), reinterpret_cast<const unsigned char*>(out.data()),
                     out.size(), nullptr, 0);
  out.append(reinterpret_cast<const char*>(hash), sizeof(hash));
  return Status::Ok();
}

std::string ErrnoText(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

Status WriteAllAndSync(const std::string& path, const std::string& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IoError(ErrnoText("cannot create", path));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      Status s = Status::IoError(ErrnoText("cannot write", path));
      ::close(fd);
      return s;
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    Status s = Status::IoError(ErrnoText("cannot fsync", path));
    ::close(fd);
    return s;
  }
  if (::close(fd) != 0) return Status::IoError(ErrnoText("cannot close", path));
  return Status::Ok();
}

Status SyncDirectory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::IoError(ErrnoText("cannot open directory", dir));
  const int r = ::fsync(fd);
  Status s = r == 0 ? Status::Ok() : Status::IoError(ErrnoText("cannot fsync directory", dir));
  ::close(fd);
  return s;
}

}  // namespace

Status WriteCheckpoint(const std::string& path, const Checkpoint& checkpoint) {
  std::string bytes;
  DPNODE_RETURN_IF_ERROR(Encode(checkpoint, bytes));
  const std::string tmp = path + ".tmp";
  DPNODE_RETURN_IF_ERROR(WriteAllAndSync(tmp, bytes));
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return Status::IoError(ErrnoText("cannot rename " + tmp + " to", path));
  }
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  return SyncDirectory(dir.empty() ? "." : dir.string());
}

Result<Checkpoint> ReadCheckpoint(const std::string& path, const ModelFingerprint& expected) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return Status::NotFound("no checkpoint at " + path);
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError("cannot open checkpoint " + path);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return Status::IoError("cannot read checkpoint " + path);

  const auto corrupt = [&](const std::string& why) {
    return Status::Corruption("checkpoint " + path + " is corrupt: " + why);
  };
  if (bytes.size() < sizeof(kMagic) + kHashBytes ||
      std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    return corrupt("not a dpnode checkpoint (bad magic or too short)");
  }
  const size_t body = bytes.size() - kHashBytes;
  uint8_t hash[kHashBytes];
  crypto_generichash(hash, sizeof(hash), reinterpret_cast<const unsigned char*>(bytes.data()), body,
                     nullptr, 0);
  if (sodium_memcmp(hash, bytes.data() + body, kHashBytes) != 0) {
    return corrupt("checksum mismatch (torn or altered file)");
  }

  Reader r(reinterpret_cast<const uint8_t*>(bytes.data()) + sizeof(kMagic), body - sizeof(kMagic));
  Checkpoint c;
  uint64_t steps = 0;
  uint64_t opt_steps = 0;
  uint32_t extras = 0;
  if (!r.Bytes(c.fingerprint.data(), c.fingerprint.size()) || !r.U64(steps) ||
      !r.Floats(c.parameters) || !r.U64(opt_steps) || !r.Floats(c.optimizer.m) ||
      !r.Floats(c.optimizer.v) || !r.U32(extras)) {
    return corrupt("lengths do not fit the file");
  }
  c.steps = static_cast<int64_t>(steps);
  c.optimizer.steps = static_cast<int64_t>(opt_steps);
  if (c.steps < 0 || c.optimizer.steps < 0) return corrupt("negative step count");
  if (extras > kMaxCheckpointExtras) return corrupt("too many extra values");
  for (uint32_t i = 0; i < extras; ++i) {
    uint32_t key_len = 0;
    if (!r.U32(key_len) || key_len == 0 || key_len > kMaxCheckpointKeyBytes || r.left() < key_len) {
      return corrupt("bad extra key");
    }
    std::string key(key_len, '\0');
    r.Bytes(key.data(), key_len);
    uint64_t bits = 0;
    if (!r.U64(bits)) return corrupt("truncated extra value");
    double value;
    std::memcpy(&value, &bits, sizeof(value));
    if (!c.extras.emplace(std::move(key), value).second) return corrupt("duplicate extra key");
  }
  if (r.left() != 0) return corrupt("trailing bytes");
  if (c.fingerprint != expected) {
    return Status::FailedPrecondition("checkpoint " + path + " is for model " +
                                      ModelFingerprintHex(c.fingerprint) + ", not " +
                                      ModelFingerprintHex(expected));
  }
  return c;
}

}  // namespace dpnode::learn
