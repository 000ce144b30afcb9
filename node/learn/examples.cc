// Gathering dataset rows into contiguous example tables.
#include "node/learn/examples.h"

#include <string>

namespace dpnode::learn {

Status AppendRows(const Dataset& data, const std::vector<int64_t>& rows, ExampleTable& out) {
  if (out.rows == 0 && out.features.empty()) out.dim = data.dim;
  if (data.dim != out.dim) {
    return Status::InvalidArgument("data sets have different feature counts (" +
                                   std::to_string(out.dim) + " vs " + std::to_string(data.dim) +
                                   ")");
  }
  const size_t dim = static_cast<size_t>(data.dim);
  for (int64_t r : rows) {
    if (r < 0 || r >= data.rows) return Status::InvalidArgument("row index out of range");
    const float* src = data.features.data() + static_cast<size_t>(r) * dim;
    out.features.insert(out.features.end(), src, src + dim);
    out.labels.push_back(data.labels[static_cast<size_t>(r)]);
    ++out.rows;
  }
  return Status::Ok();
}

}  // namespace dpnode::learn
