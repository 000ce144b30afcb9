// PeerRecord signatures over a canonical encoding (contract in peer_record.h).
#include "protocol/peer_record.h"

#include <cstring>
#include <utility>

#include "base/check.h"

namespace dpnode::protocol {
namespace {

static_assert(kSiteKeySize == crypto::kEd25519PublicKeyLen);
static_assert(kSignatureSize == crypto::kEd25519SignatureLen);

constexpr char kDomain[] = "dpnode peer record v1";  // sizeof includes the NUL we sign

// Appends by index into a pre-sized buffer; vector::insert of short
// arrays trips GCC 12's -Warray-bounds false positive.
class Writer {
 public:
  explicit Writer(size_t size) : out_(size) {}
  void Put(const void* data, size_t n) {
    DPNODE_CHECK(n <= out_.size() - pos_, "peer record encoding overflow");
    if (n > 0) std::memcpy(out_.data() + pos_, data, n);
    pos_ += n;
  }
  void PutLe(uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) {
      const auto b = static_cast<uint8_t>(v >> (8 * i));
      Put(&b, 1);
    }
  }
  Bytes Finish() {
    DPNODE_CHECK(pos_ == out_.size(), "peer record encoding size mismatch");
    return std::move(out_);
  }

 private:
  Bytes out_;
  size_t pos_ = 0;
};

}  // namespace

Bytes PeerRecordSigningBytes(const PeerRecord& record) {
  size_t size = sizeof(kDomain) + record.site_key.size() + 8 + 4;
  for (const Address& a : record.addresses) size += 2 + a.host.size() + 2;
  Writer w(size);
  w.Put(kDomain, sizeof(kDomain));
  w.Put(record.site_key.data(), record.site_key.size());
  w.PutLe(record.sequence, 8);
  w.PutLe(record.addresses.size(), 4);
  for (const Address& a : record.addresses) {
    DPNODE_CHECK(a.host.size() <= UINT16_MAX, "host of %zu bytes", a.host.size());
    w.PutLe(a.host.size(), 2);
    w.Put(a.host.data(), a.host.size());
    w.PutLe(a.port, 2);
  }
  return w.Finish();
}

Status SignPeerRecord(const crypto::SiteIdentity& identity, PeerRecord* record) {
  DPNODE_RETURN_IF_ERROR(Validate(*record));
  record->site_key = identity.public_key();
  record->signature = identity.Sign(PeerRecordSigningBytes(*record));
  return Status::Ok();
}

Status VerifyPeerRecord(const PeerRecord& record) {
  Status valid = Validate(record);
  if (!valid.ok()) return Status::Corruption(valid.message());
  if (!crypto::VerifySignature(record.site_key, PeerRecordSigningBytes(record), record.signature)) {
    return Status::Corruption("peer_record.signature: does not verify");
  }
  return Status::Ok();
}

}  // namespace dpnode::protocol
