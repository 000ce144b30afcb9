// A small SVG line-plot writer for experiment outputs (no plotting library).
//
// Output is a pure function of the input (fixed number formatting), so plots
// of identical runs are byte-identical. Non-finite points are skipped.
#ifndef DPNODE_SIM_EXPERIMENT_SVG_PLOT_H_
#define DPNODE_SIM_EXPERIMENT_SVG_PLOT_H_

#include <string>
#include <utility>
#include <vector>

namespace dpnode::sim {

struct PlotSeries {
  std::string label;
  std::vector<std::pair<double, double>> points;  // (x, y), drawn in order
};

struct LinePlot {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::vector<PlotSeries> series;
};

// The whole SVG document.
std::string RenderSvg(const LinePlot& plot);

}  // namespace dpnode::sim

#endif  // DPNODE_SIM_EXPERIMENT_SVG_PLOT_H_
