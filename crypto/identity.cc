// Site identity: Ed25519 keys, their text form, and owner-only storage.
#include "crypto/identity.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "crypto/noise_primitives.h"

namespace dpnode::crypto {
namespace {

constexpr std::string_view kKeyPrefix = "ed25519:";
constexpr std::string_view kSeedPrefix = "dpnode-ed25519-secret-seed:";
constexpr size_t kMaxSecretFileBytes = 4096;  // a valid file is ~92 bytes

std::string Errno(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

std::string JoinPath(const std::string& dir, const char* name) {
  if (dir.empty() || dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

// Writes all of `data` to `fd`, retrying short writes and EINTR.
bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Temp file in the same directory (so rename is atomic), `mode` set with
// fchmod so the umask cannot loosen or tighten it, fsync, rename over
// `path`, fsync of the directory so the rename itself is durable.
Status WriteFileAtomically(const std::string& dir, const std::string& path, std::string_view data,
                           mode_t mode) {
  std::string tmp = path + ".tmp.XXXXXX";
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) return Status::IoError(Errno("creating a temporary file for", path));
  bool ok = ::fchmod(fd, mode) == 0 && WriteAll(fd, data) && ::fsync(fd) == 0;
  const std::string error = ok ? "" : Errno("writing", tmp);
  ok = (::close(fd) == 0) && ok;
  if (ok && ::rename(tmp.c_str(), path.c_str()) != 0) {
    const Status s = Status::IoError(Errno("renaming into", path));
    ::unlink(tmp.c_str());
    return s;
  }
  if (!ok) {
    ::unlink(tmp.c_str());
    return Status::IoError(error.empty() ? Errno("closing", tmp) : error);
  }
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return Status::IoError(Errno("opening directory", dir));
  const bool synced = ::fsync(dir_fd) == 0;
  ::close(dir_fd);
  if (!synced) return Status::IoError(Errno("syncing directory", dir));
  return Status::Ok();
}

}  // namespace

Result<SiteIdentity> SiteIdentity::Generate() {
  DPNODE_RETURN_IF_ERROR(noise::EnsureSodiumInitialized());
  Ed25519Seed seed;
  randombytes_buf(seed.data(), seed.size());
  return FromSeed(seed);
}

SiteIdentity SiteIdentity::FromSeed(const Ed25519Seed& seed) {
  SiteIdentity id;
  id.seed_ = seed;
  crypto_sign_seed_keypair(id.public_key_.data(), id.secret_key_.data(), seed.data());
  return id;
}

Ed25519Signature SiteIdentity::Sign(ByteView message) const {
  Ed25519Signature sig{};
  crypto_sign_detached(sig.data(), nullptr, message.data(), message.size(), secret_key_.data());
  return sig;
}

bool VerifySignature(const Ed25519PublicKey& key, ByteView message,
                     const Ed25519Signature& signature) {
  return crypto_sign_verify_detached(signature.data(), message.data(), message.size(),
                                     key.data()) == 0;
}

std::string PublicKeyToText(const Ed25519PublicKey& key) {
  const size_t len = sodium_base64_ENCODED_LEN(key.size(), sodium_base64_VARIANT_ORIGINAL);
  std::string b64(len, '\0');
  sodium_bin2base64(b64.data(), len, key.data(), key.size(), sodium_base64_VARIANT_ORIGINAL);
  b64.resize(std::strlen(b64.c_str()));
  return std::string(kKeyPrefix) + b64;
}

Result<Ed25519PublicKey> PublicKeyFromText(std::string_view text) {
  if (text.substr(0, kKeyPrefix.size()) != kKeyPrefix) {
    return Status::InvalidArgument("public key must start with \"ed25519:\"");
  }
  const std::string_view b64 = text.substr(kKeyPrefix.size());
  if (b64.size() != 44) {
    return Status::InvalidArgument(
        "public key must be 44 base64 characters after \"ed25519:\", got " +
        std::to_string(b64.size()));
  }
  Ed25519PublicKey key{};
  size_t decoded = 0;
  const char* end = nullptr;
  if (sodium_base642bin(key.data(), key.size(), b64.data(), b64.size(), nullptr, &decoded, &end,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != b64.data() + b64.size() || decoded != key.size()) {
    return Status::InvalidArgument("public key is not valid base64 of 32 bytes");
  }
  // Non-canonical base64 (stray low bits in the last character) would let one
  // key be written two ways and slip past the duplicate check.
  if (PublicKeyToText(key) != text) {
    return Status::InvalidArgument("public key base64 is not in canonical form");
  }
  return key;
}

std::string Fingerprint(const Ed25519PublicKey& key) {
  uint8_t digest[16];
  crypto_generichash(digest, sizeof digest, key.data(), key.size(), nullptr, 0);
  const std::string hex = HexEncode(ByteView(digest, sizeof digest));
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 4) {
    if (i > 0) out += ':';
    out += hex.substr(i, 4);
  }
  return out;
}

Status WriteIdentity(const std::string& dir, const SiteIdentity& identity) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT) return Status::IoError(Errno("checking", dir));
    if (::mkdir(dir.c_str(), 0700) != 0) return Status::IoError(Errno("creating directory", dir));
    // mkdir's mode is filtered by the umask; set it exactly.
    if (::chmod(dir.c_str(), 0700) != 0) return Status::IoError(Errno("chmod 700", dir));
  } else if (!S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument(dir + " exists and is not a directory");
  }
  const std::string secret_path = JoinPath(dir, kIdentitySecretFile);
  if (::lstat(secret_path.c_str(), &st) == 0) {
    return Status::FailedPrecondition(secret_path +
                                      " already exists; refusing to replace a site identity "
                                      "(move it away first if that is really intended)");
  }
  std::string secret = std::string(kSeedPrefix) + HexEncode(identity.seed().view()) + "\n";
  Status s = WriteFileAtomically(dir, secret_path, secret, 0600);
  sodium_memzero(secret.data(), secret.size());
  DPNODE_RETURN_IF_ERROR(s);
  return WriteFileAtomically(dir, JoinPath(dir, kIdentityPublicFile),
                             PublicKeyToText(identity.public_key()) + "\n", 0644);
}

Result<SiteIdentity> ReadIdentity(const std::string& dir) {
  const std::string path = JoinPath(dir, kIdentitySecretFile);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound("no site identity: " + path + " does not exist");
    return Status::IoError(Errno("opening", path));
  }
  // fstat on the open file: the file checked is the file read (a symlink,
  // e.g. to a mounted secret, is checked at its target).
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const Status s = Status::IoError(Errno("checking", path));
    ::close(fd);
    return s;
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::FailedPrecondition(path + " is not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Status::FailedPrecondition("secret key file " + path + " has mode " + mode +
                                      " and can be read by other users; refusing to use it. "
                                      "Fix it with: chmod 600 " +
                                      path);
  }
  std::string text(kMaxSecretFileBytes + 1, '\0');
  size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = ::read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const Status s = Status::IoError(Errno("reading", path));
      ::close(fd);
      sodium_memzero(text.data(), text.size());
      return s;
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  text.resize(got);
  std::string_view line(text);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  Result<Bytes> seed_bytes = Status::Corruption("unset");
  if (got <= kMaxSecretFileBytes && line.substr(0, kSeedPrefix.size()) == kSeedPrefix &&
      line.size() == kSeedPrefix.size() + 2 * kEd25519SeedLen) {
    seed_bytes = HexDecode(line.substr(kSeedPrefix.size()));
  }
  sodium_memzero(text.data(), text.size());
  if (!seed_bytes.ok()) {
    return Status::Corruption(path + ": not a dpnode secret key file (expected one line \"" +
                              std::string(kSeedPrefix) + "<64 hex digits>\")");
  }
  const Ed25519Seed seed{ByteView(*seed_bytes)};
  sodium_memzero(seed_bytes->data(), seed_bytes->size());
  SiteIdentity id = SiteIdentity::FromSeed(seed);

  // site.pub is optional (it is a convenience copy), but if present it must
  // match: a mismatch means the files were mixed up between sites.
  const std::string pub_path = JoinPath(dir, kIdentityPublicFile);
  if (FILE* f = std::fopen(pub_path.c_str(), "re")) {
    char buf[128] = {};
    const size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    std::string_view pub(buf, n);
    while (!pub.empty() && (pub.back() == '\n' || pub.back() == '\r')) pub.remove_suffix(1);
    if (pub != PublicKeyToText(id.public_key())) {
      return Status::Corruption(pub_path + " does not match the public key of " + path);
    }
  }
  return id;
}

}  // namespace dpnode::crypto
