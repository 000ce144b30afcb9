// Flat vectors to named tensors and back, with the receiver's checks.
#include "node/gossip/share_codec.h"

#include <cmath>
#include <cstring>

#include "base/check.h"

namespace dpnode::gossip {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the wire is little-endian; add byte swapping for this target");

size_t Elements(const std::vector<uint64_t>& shape) {
  size_t n = 1;
  for (uint64_t d : shape) n *= static_cast<size_t>(d);
  return n;
}

std::string ShapeText(const std::vector<uint64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

}  // namespace

size_t LayoutSize(const Layout& layout) {
  size_t n = 0;
  for (const TensorSpec& t : layout) n += Elements(t.shape);
  return n;
}

double L2Norm(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x * x;
  return std::sqrt(s);
}

protocol::GossipShare ToWire(const Layout& layout, const Share& share, protocol::DType dtype,
                             uint64_t local_steps, double epsilon_spent) {
  DPNODE_CHECK(share.values.size() == LayoutSize(layout), "share %zu vs layout %zu",
               share.values.size(), LayoutSize(layout));
  protocol::GossipShare wire;
  wire.round = share.round;
  wire.weight = share.weight;
  wire.local_steps = local_steps;
  wire.epsilon_spent = epsilon_spent;
  wire.tensors.reserve(layout.size());
  size_t offset = 0;
  for (const TensorSpec& spec : layout) {
    protocol::Tensor t;
    t.name = spec.name;
    t.shape = spec.shape;
    t.dtype = dtype;
    const size_t n = Elements(spec.shape);
    t.data.resize(n * protocol::DTypeSize(dtype));
    for (size_t i = 0; i < n; ++i) {
      const double v = share.values[offset + i];
      if (dtype == protocol::DType::kFloat32) {
        const float f = static_cast<float>(v);
        std::memcpy(t.data.data() + i * sizeof f, &f, sizeof f);
      } else {
        std::memcpy(t.data.data() + i * sizeof v, &v, sizeof v);
      }
    }
    offset += n;
    wire.tensors.push_back(std::move(t));
  }
  return wire;
}

Result<Share> FromWire(const Layout& layout, const protocol::GossipShare& wire,
                       const ShareChecks& checks, const std::vector<double>& ours) {
  if (!(std::isfinite(wire.weight) && wire.weight > 0 && wire.weight <= checks.max_weight)) {
    return Status::InvalidArgument("weight " + std::to_string(wire.weight) +
                                   " is not finite, positive and at most " +
                                   std::to_string(checks.max_weight));
  }
  if (wire.round > checks.max_round) {
    return Status::InvalidArgument("round " + std::to_string(wire.round) + " is implausible");
  }
  if (wire.tensors.size() != layout.size()) {
    return Status::InvalidArgument("share has " + std::to_string(wire.tensors.size()) +
                                   " tensors, our model " + std::to_string(layout.size()));
  }
  Share share;
  share.round = wire.round;
  share.weight = wire.weight;
  share.values.reserve(LayoutSize(layout));
  for (size_t k = 0; k < layout.size(); ++k) {
    const protocol::Tensor& t = wire.tensors[k];
    const TensorSpec& spec = layout[k];
    const std::string where = "tensor " + std::to_string(k) + " \"" + spec.name + "\": ";
    if (t.name != spec.name) {
      return Status::InvalidArgument(where + "share names it \"" + t.name + "\"");
    }
    if (t.shape != spec.shape) {
      return Status::InvalidArgument(where + "shape " + ShapeText(t.shape) +
                                     " differs from ours " + ShapeText(spec.shape));
    }
    if (t.dtype != checks.dtype) {
      return Status::InvalidArgument(where + "dtype " + protocol::DTypeName(t.dtype) +
                                     ", we use " + protocol::DTypeName(checks.dtype));
    }
    const size_t n = Elements(spec.shape);
    if (t.data.size() != n * protocol::DTypeSize(t.dtype)) {
      return Status::InvalidArgument(where + "data size does not match the shape");
    }
    for (size_t i = 0; i < n; ++i) {
      double v;
      if (t.dtype == protocol::DType::kFloat32) {
        float f;
        std::memcpy(&f, t.data.data() + i * sizeof f, sizeof f);
        v = f;
      } else {
        std::memcpy(&v, t.data.data() + i * sizeof v, sizeof v);
      }
      if (!std::isfinite(v)) {
        return Status::InvalidArgument(where + "element " + std::to_string(i) + " is not finite");
      }
      share.values.push_back(v);
    }
  }
  const double norm = L2Norm(share.values);
  const double bound = std::max(checks.max_norm_ratio * L2Norm(ours), checks.norm_floor);
  if (!(norm <= bound)) {
    return Status::InvalidArgument("L2 norm " + std::to_string(norm) + " exceeds the bound " +
                                   std::to_string(bound));
  }
  return share;
}

}  // namespace dpnode::gossip
