// Contiguous training or test examples (features and labels), gathered from
// one or several loaded Datasets: the input of the trainer and the evaluator.
#ifndef DPNODE_NODE_LEARN_EXAMPLES_H_
#define DPNODE_NODE_LEARN_EXAMPLES_H_

#include <cstdint>
#include <vector>

#include "base/status.h"
#include "node/learn/data/dataset.h"

namespace dpnode::learn {

// A non-owning view: rows × dim features (row-major), one label per row.
// The pointed-to memory must outlive every call given the view.
struct Examples {
  const float* features = nullptr;
  const int32_t* labels = nullptr;
  int64_t rows = 0;
  int64_t dim = 0;
};

// Owned examples.
struct ExampleTable {
  int64_t rows = 0;
  int64_t dim = 0;
  std::vector<float> features;
  std::vector<int32_t> labels;

  Examples view() const { return {features.data(), labels.data(), rows, dim}; }
};

// Appends the rows `rows` of `data` (e.g. data.train_rows). The first append
// fixes dim; later ones must match it (InvalidArgument otherwise).
Status AppendRows(const Dataset& data, const std::vector<int64_t>& rows, ExampleTable& out);

}  // namespace dpnode::learn

#endif  // DPNODE_NODE_LEARN_EXAMPLES_H_
