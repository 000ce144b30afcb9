// Valid sample messages of every type for the protocol tests, and a helper
// that compares decoded messages field by field.
#ifndef DPNODE_TESTS_PROTOCOL_TEST_MESSAGES_H_
#define DPNODE_TESTS_PROTOCOL_TEST_MESSAGES_H_

#include <cstring>
#include <string>
#include <vector>

#include "protocol/messages.h"

namespace dpnode::protocol::testing {

inline Bytes Fingerprint(uint8_t fill) { return Bytes(kModelFingerprintSize, fill); }

inline Hello SampleHello() {
  Hello h;
  h.protocol_version = kProtocolVersion;
  h.consortium_id = "eicu-demo";
  h.model_fingerprint = Fingerprint(0xab);
  h.site_name = "St Mary's";
  h.capabilities = kCapabilityPushSum;
  return h;
}

inline PeerRecord SamplePeerRecord() {
  PeerRecord r;
  for (size_t i = 0; i < r.site_key.size(); ++i) r.site_key[i] = static_cast<uint8_t>(i + 1);
  r.addresses = {{"node1.example.org", 7400}, {"10.0.0.5", 7401}};
  r.sequence = 42;
  for (size_t i = 0; i < r.signature.size(); ++i) r.signature[i] = static_cast<uint8_t>(200 - i);
  return r;
}

inline Bytes Float32Data(const std::vector<float>& values) {
  Bytes out(values.size() * sizeof(float));
  if (!values.empty()) std::memcpy(out.data(), values.data(), out.size());
  return out;
}

inline Bytes Float64Data(const std::vector<double>& values) {
  Bytes out(values.size() * sizeof(double));
  if (!values.empty()) std::memcpy(out.data(), values.data(), out.size());
  return out;
}

inline GossipShare SampleShare() {
  GossipShare s;
  s.round = 7;
  s.weight = 0.5;
  s.local_steps = 120;
  s.epsilon_spent = 1.25;
  s.tensors.push_back(
      {"fc1.weight", {2, 3}, DType::kFloat32, Float32Data({1.f, -2.f, 3.5f, 0.f, -0.f, 1e-30f})});
  s.tensors.push_back({"fc1.bias", {3}, DType::kFloat64, Float64Data({0.25, -1e300, 4.0})});
  s.tensors.push_back({"scale", {}, DType::kFloat32, Float32Data({2.f})});
  return s;
}

inline Probe SampleProbe() { return Probe{0x0123456789abcdefULL, 9}; }
inline ProbeAck SampleProbeAck() { return ProbeAck{0x0123456789abcdefULL, 9}; }
inline Goodbye SampleGoodbye() { return Goodbye{GoodbyeReason::kShutdown, "maintenance window"}; }

inline std::vector<Message> SampleMessages() {
  return {SampleHello(), SamplePeerRecord(), SampleShare(),
          SampleProbe(), SampleProbeAck(),   SampleGoodbye()};
}

inline bool SameAddresses(const std::vector<Address>& a, const std::vector<Address>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].host != b[i].host || a[i].port != b[i].port) return false;
  }
  return true;
}

// Field-by-field equality (the structs have no operator==; the wire is the
// only place they need comparing). Doubles compare bitwise.
inline bool SameMessage(const Message& a, const Message& b) {
  if (a.index() != b.index()) return false;
  auto same_double = [](double x, double y) { return std::memcmp(&x, &y, sizeof x) == 0; };
  if (auto* x = std::get_if<Hello>(&a)) {
    const auto& y = std::get<Hello>(b);
    return x->protocol_version == y.protocol_version && x->consortium_id == y.consortium_id &&
           x->model_fingerprint == y.model_fingerprint && x->site_name == y.site_name &&
           x->capabilities == y.capabilities;
  }
  if (auto* x = std::get_if<PeerRecord>(&a)) {
    const auto& y = std::get<PeerRecord>(b);
    return x->site_key == y.site_key && SameAddresses(x->addresses, y.addresses) &&
           x->sequence == y.sequence && x->signature == y.signature;
  }
  if (auto* x = std::get_if<GossipShare>(&a)) {
    const auto& y = std::get<GossipShare>(b);
    if (x->round != y.round || !same_double(x->weight, y.weight) ||
        x->local_steps != y.local_steps || !same_double(x->epsilon_spent, y.epsilon_spent) ||
        x->tensors.size() != y.tensors.size()) {
      return false;
    }
    for (size_t i = 0; i < x->tensors.size(); ++i) {
      const Tensor& s = x->tensors[i];
      const Tensor& t = y.tensors[i];
      if (s.name != t.name || s.shape != t.shape || s.dtype != t.dtype || s.data != t.data) {
        return false;
      }
    }
    return true;
  }
  if (auto* x = std::get_if<Probe>(&a)) {
    const auto& y = std::get<Probe>(b);
    return x->nonce == y.nonce && x->sequence == y.sequence;
  }
  if (auto* x = std::get_if<ProbeAck>(&a)) {
    const auto& y = std::get<ProbeAck>(b);
    return x->nonce == y.nonce && x->sequence == y.sequence;
  }
  const auto& x = std::get<Goodbye>(a);
  const auto& y = std::get<Goodbye>(b);
  return x.reason == y.reason && x.text == y.text;
}

}  // namespace dpnode::protocol::testing

#endif  // DPNODE_TESTS_PROTOCOL_TEST_MESSAGES_H_
