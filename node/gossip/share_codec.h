// Between the policies' flat parameter vectors and the wire's named tensors,
// and the checks an incoming share must pass before it touches the model.
//
// A model is a Layout: named tensors in a fixed order; the flat vector is
// their row-major values concatenated in that order. Every site of a
// consortium trains the same model (Hello's fingerprint says so), so a share
// must name the same tensors, in the same order, with the same shapes, as
// ours; anything else is a bad share.
#ifndef DPNODE_NODE_GOSSIP_SHARE_CODEC_H_
#define DPNODE_NODE_GOSSIP_SHARE_CODEC_H_

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "node/gossip/averaging.h"
#include "protocol/messages.h"

namespace dpnode::gossip {

struct TensorSpec {
  std::string name;             // as in protocol::Tensor::name
  std::vector<uint64_t> shape;  // row-major; {} is a scalar
};
using Layout = std::vector<TensorSpec>;

// Total element count of `layout` (the flat vector's length).
size_t LayoutSize(const Layout& layout);

// What an incoming share must satisfy beyond protocol::Validate.
struct ShareChecks {
  protocol::DType dtype = protocol::DType::kFloat32;  // the wire dtype we use
  // ‖share‖₂ ≤ max(max_norm_ratio · ‖ours‖₂, norm_floor). A peer's model
  // may legitimately differ from ours, but not by orders of magnitude; the
  // floor lets a share through while our own model is still near zero.
  double max_norm_ratio = 10.0;
  double norm_floor = 100.0;
  uint64_t max_round = uint64_t{1} << 48;  // a round beyond this is nonsense
  double max_weight = 1e6;                 // push-sum weights stay O(sites)
};

// Builds the wire share. Precondition: share.values has LayoutSize(layout)
// elements. Values are written in `dtype` (float32 rounds them; the policies
// have already rounded what they send, see averaging.h).
protocol::GossipShare ToWire(const Layout& layout, const Share& share, protocol::DType dtype,
                             uint64_t local_steps, double epsilon_spent);

// Checks `wire` against our layout and `checks` and converts it. `ours` is
// our current estimate (for the norm bound). InvalidArgument naming what is
// wrong ("tensor 1 \"fc.bias\": shape [3] differs from ours [4]") otherwise;
// nothing of a refused share is returned.
Result<Share> FromWire(const Layout& layout, const protocol::GossipShare& wire,
                       const ShareChecks& checks, const std::vector<double>& ours);

double L2Norm(const std::vector<double>& v);

}  // namespace dpnode::gossip

#endif  // DPNODE_NODE_GOSSIP_SHARE_CODEC_H_
