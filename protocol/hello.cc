// Hello compatibility checks (contract in hello.h).
#include "protocol/hello.h"

#include <algorithm>

namespace dpnode::protocol {
namespace {

constexpr size_t kShortFingerprintBytes = 4;

std::string Quoted(const std::string& s) { return "\"" + s + "\""; }

Status Refuse(const std::string& ours, GoodbyeReason reason, const std::string& theirs,
              Goodbye* goodbye) {
  if (goodbye != nullptr) {
    goodbye->reason = reason;
    goodbye->text = theirs;
  }
  return Status::FailedPrecondition(ours);
}

}  // namespace

std::string ShortFingerprint(ByteView fingerprint) {
  const size_t n = std::min(fingerprint.size(), kShortFingerprintBytes);
  std::string hex = crypto::HexEncode(fingerprint.Sub(0, n));
  if (fingerprint.size() > n) hex += "\u2026";
  return hex;
}

Status CheckHello(const Hello& mine, const Hello& theirs, Goodbye* goodbye) {
  const std::string peer = "peer " + Quoted(theirs.site_name);
  if (theirs.protocol_version != mine.protocol_version) {
    const std::string we = std::to_string(mine.protocol_version);
    const std::string they = std::to_string(theirs.protocol_version);
    return Refuse(peer + " speaks protocol version " + they + ", we speak " + we,
                  GoodbyeReason::kVersionMismatch,
                  "we speak protocol version " + we + ", you speak " + they, goodbye);
  }
  if (theirs.consortium_id != mine.consortium_id) {
    return Refuse(peer + " is in consortium " + Quoted(theirs.consortium_id) + ", we are in " +
                      Quoted(mine.consortium_id),
                  GoodbyeReason::kConsortiumMismatch,
                  "we are in consortium " + Quoted(mine.consortium_id) + ", you are in " +
                      Quoted(theirs.consortium_id),
                  goodbye);
  }
  if (theirs.model_fingerprint != mine.model_fingerprint) {
    const std::string we = ShortFingerprint(mine.model_fingerprint);
    const std::string they = ShortFingerprint(theirs.model_fingerprint);
    return Refuse(peer + " trains model fingerprint " + they + ", we train " + we,
                  GoodbyeReason::kModelMismatch,
                  "we train model fingerprint " + we + ", you train " + they, goodbye);
  }
  return Status::Ok();
}

}  // namespace dpnode::protocol
