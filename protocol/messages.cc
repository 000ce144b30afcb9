// Validation rules for the wire messages (the contract is in messages.h).
#include "protocol/messages.h"

#include <cmath>
#include <cstring>
#include <set>
#include <string_view>
#include <type_traits>

#include "base/check.h"

namespace dpnode::protocol {
namespace {

Status Invalid(const std::string& field, const std::string& why) {
  return Status::InvalidArgument(field + ": " + why);
}

Status CheckToken(const std::string& field, const std::string& value, size_t max_bytes) {
  if (value.empty()) return Invalid(field, "is empty");
  if (value.size() > max_bytes) {
    return Invalid(field, std::to_string(value.size()) + " bytes, at most " +
                              std::to_string(max_bytes) + " allowed");
  }
  if (!IsPrintableAsciiToken(value)) {
    return Invalid(field, "must be printable ASCII without spaces");
  }
  return Status::Ok();
}

Status CheckText(const std::string& field, const std::string& value, size_t min_bytes,
                 size_t max_bytes) {
  if (value.size() < min_bytes) return Invalid(field, "is empty");
  if (value.size() > max_bytes) {
    return Invalid(field, std::to_string(value.size()) + " bytes, at most " +
                              std::to_string(max_bytes) + " allowed");
  }
  if (!IsCleanUtf8(value)) {
    return Invalid(field, "must be valid UTF-8 without control characters");
  }
  return Status::Ok();
}

// Every element of a little-endian float tensor is finite. Reads through
// memcpy because the data has no alignment guarantee.
template <typename Float>
bool AllFinite(const Bytes& data) {
  const size_t n = data.size() / sizeof(Float);
  const uint8_t* p = data.data();
  for (size_t i = 0; i < n; ++i) {
    Float v;
    std::memcpy(&v, p + i * sizeof(Float), sizeof(Float));
    if (!std::isfinite(v)) return false;
  }
  return true;
}

Status ValidateTensor(const std::string& field, const Tensor& tensor) {
  DPNODE_RETURN_IF_ERROR(CheckToken(field + ".name", tensor.name, kMaxTensorNameBytes));
  if (tensor.dtype != DType::kFloat32 && tensor.dtype != DType::kFloat64) {
    return Invalid(field + ".dtype",
                   "unknown dtype " + std::to_string(static_cast<int>(tensor.dtype)));
  }
  if (tensor.shape.size() > kMaxTensorRank) {
    return Invalid(field + ".shape", "rank " + std::to_string(tensor.shape.size()) + ", at most " +
                                         std::to_string(kMaxTensorRank));
  }
  for (size_t i = 0; i < tensor.shape.size(); ++i) {
    if (tensor.shape[i] == 0) {
      return Invalid(field + ".shape[" + std::to_string(i) + "]", "dimension is 0");
    }
  }
  Result<uint64_t> elements = ShapeElements(tensor.shape);
  if (!elements.ok()) return Invalid(field + ".shape", elements.status().message());
  const uint64_t element_size = DTypeSize(tensor.dtype);
  if (*elements > UINT64_MAX / element_size) {
    return Invalid(field + ".shape", "byte size overflows 64 bits");
  }
  const uint64_t expected = *elements * element_size;
  if (expected != tensor.data.size()) {
    return Invalid(field + ".data", std::to_string(tensor.data.size()) + " bytes, shape and " +
                                        DTypeName(tensor.dtype) + " need " +
                                        std::to_string(expected));
  }
  const bool finite = tensor.dtype == DType::kFloat32 ? AllFinite<float>(tensor.data)
                                                      : AllFinite<double>(tensor.data);
  if (!finite) return Invalid(field + ".data", "contains NaN or infinity");
  return Status::Ok();
}

}  // namespace

const char* DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return "float32";
    case DType::kFloat64:
      return "float64";
  }
  return "unknown";
}

size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return 4;
    case DType::kFloat64:
      return 8;
  }
  DPNODE_CHECK(false, "DTypeSize of unknown dtype %d", static_cast<int>(dtype));
  return 0;
}

const char* GoodbyeReasonName(GoodbyeReason reason) {
  switch (reason) {
    case GoodbyeReason::kUnspecified:
      return "unspecified";
    case GoodbyeReason::kShutdown:
      return "shutdown";
    case GoodbyeReason::kVersionMismatch:
      return "version mismatch";
    case GoodbyeReason::kConsortiumMismatch:
      return "consortium mismatch";
    case GoodbyeReason::kModelMismatch:
      return "model mismatch";
    case GoodbyeReason::kProtocolViolation:
      return "protocol violation";
    case GoodbyeReason::kTrainingDone:
      return "training done";
  }
  return "unknown";
}

MessageType TypeOf(const Message& message) { return static_cast<MessageType>(message.index()); }

const char* MessageTypeName(MessageType type) {
  switch (type) {
    case MessageType::kHello:
      return "hello";
    case MessageType::kPeerRecord:
      return "peer_record";
    case MessageType::kGossipShare:
      return "gossip_share";
    case MessageType::kProbe:
      return "probe";
    case MessageType::kProbeAck:
      return "probe_ack";
    case MessageType::kGoodbye:
      return "goodbye";
  }
  return "unknown";
}

Result<uint64_t> ShapeElements(const std::vector<uint64_t>& shape) {
  uint64_t product = 1;
  for (uint64_t dim : shape) {
    if (dim != 0 && product > UINT64_MAX / dim) {
      return Status::OutOfRange("element count overflows 64 bits");
    }
    product *= dim;
  }
  return product;
}

bool IsPrintableAsciiToken(std::string_view s) {
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x21 || u > 0x7e) return false;
  }
  return true;
}

bool IsCleanUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    uint32_t cp;
    size_t len;
    if (c < 0x80) {
      cp = c;
      len = 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
      cp = c & 0x1fu;
      len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      cp = c & 0x0fu;
      len = 3;
    } else if (c >= 0xf0 && c <= 0xf4) {
      cp = c & 0x07u;
      len = 4;
    } else {
      return false;  // continuation byte first, overlong lead (c0, c1) or > U+10FFFF lead
    }
    if (len > n - i) return false;
    for (size_t k = 1; k < len; ++k) {
      const unsigned char cc = p[i + k];
      if ((cc & 0xc0u) != 0x80u) return false;
      cp = (cp << 6) | (cc & 0x3fu);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff))) {
      return false;  // overlong or beyond Unicode
    }
    if (cp >= 0xd800 && cp <= 0xdfff) return false;  // surrogate halves
    if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f)) return false;
    i += len;
  }
  return true;
}

Status Validate(const Hello& hello) {
  if (hello.protocol_version == 0) return Invalid("hello.protocol_version", "is 0");
  DPNODE_RETURN_IF_ERROR(
      CheckToken("hello.consortium_id", hello.consortium_id, kMaxConsortiumIdBytes));
  if (hello.model_fingerprint.size() != kModelFingerprintSize) {
    return Invalid("hello.model_fingerprint", std::to_string(hello.model_fingerprint.size()) +
                                                  " bytes, expected " +
                                                  std::to_string(kModelFingerprintSize));
  }
  return CheckText("hello.site_name", hello.site_name, 1, kMaxSiteNameBytes);
}

Status Validate(const PeerRecord& record) {
  if (record.addresses.size() > kMaxAddresses) {
    return Invalid("peer_record.addresses", std::to_string(record.addresses.size()) +
                                                " addresses, at most " +
                                                std::to_string(kMaxAddresses));
  }
  for (size_t i = 0; i < record.addresses.size(); ++i) {
    const std::string field = "peer_record.addresses[" + std::to_string(i) + "]";
    DPNODE_RETURN_IF_ERROR(CheckToken(field + ".host", record.addresses[i].host, kMaxHostBytes));
    if (record.addresses[i].port == 0) return Invalid(field + ".port", "is 0");
  }
  return Status::Ok();
}

Status Validate(const GossipShare& share, const Limits& limits) {
  if (!std::isfinite(share.weight) || !(share.weight > 0)) {
    return Invalid("gossip_share.weight", "must be finite and > 0");
  }
  if (!std::isfinite(share.epsilon_spent) || share.epsilon_spent < 0) {
    return Invalid("gossip_share.epsilon_spent", "must be finite and >= 0");
  }
  if (share.tensors.empty()) return Invalid("gossip_share.tensors", "is empty");
  if (share.tensors.size() > limits.max_tensors) {
    return Invalid("gossip_share.tensors", std::to_string(share.tensors.size()) +
                                               " tensors, at most " +
                                               std::to_string(limits.max_tensors));
  }
  std::set<std::string_view> names;
  uint64_t total_bytes = 0;
  for (size_t i = 0; i < share.tensors.size(); ++i) {
    const std::string field = "gossip_share.tensors[" + std::to_string(i) + "]";
    const Tensor& tensor = share.tensors[i];
    DPNODE_RETURN_IF_ERROR(ValidateTensor(field, tensor));
    if (!names.insert(tensor.name).second) {
      return Invalid(field + ".name", "duplicate name '" + tensor.name + "'");
    }
    total_bytes += tensor.data.size();  // each is < the address space; cannot wrap
    if (total_bytes > limits.max_gossip_share_bytes) {
      return Invalid("gossip_share.tensors",
                     "data exceeds " + std::to_string(limits.max_gossip_share_bytes) + " bytes");
    }
  }
  return Status::Ok();
}

Status Validate(const Probe&) { return Status::Ok(); }
Status Validate(const ProbeAck&) { return Status::Ok(); }

Status Validate(const Goodbye& goodbye) {
  switch (goodbye.reason) {
    case GoodbyeReason::kUnspecified:
    case GoodbyeReason::kShutdown:
    case GoodbyeReason::kVersionMismatch:
    case GoodbyeReason::kConsortiumMismatch:
    case GoodbyeReason::kModelMismatch:
    case GoodbyeReason::kProtocolViolation:
    case GoodbyeReason::kTrainingDone:
      break;
    default:
      return Invalid("goodbye.reason",
                     "unknown reason " + std::to_string(static_cast<int>(goodbye.reason)));
  }
  return CheckText("goodbye.text", goodbye.text, 0, kMaxGoodbyeTextBytes);
}

Status Validate(const Message& message, const Limits& limits) {
  return std::visit(
      [&limits](const auto& m) -> Status {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, GossipShare>) {
          return Validate(m, limits);
        } else {
          return Validate(m);
        }
      },
      message);
}

}  // namespace dpnode::protocol
