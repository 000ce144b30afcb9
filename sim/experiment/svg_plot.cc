// SVG rendering of line plots: axes with five ticks each, one colour per
// series, a legend on the right.
#include "sim/experiment/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace dpnode::sim {
namespace {

constexpr double kWidth = 760, kHeight = 440;
constexpr double kLeft = 70, kRight = 200, kTop = 40, kBottom = 60;
const char* const kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                               "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}
std::string Tick(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}
std::string Escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '&') o += "&amp;";
    else if (c == '"') o += "&quot;";
    else o += c;
  }
  return o;
}

}  // namespace

std::string RenderSvg(const LinePlot& plot) {
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const auto& s : plot.series) {
    for (auto [x, y] : s.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      x0 = std::min(x0, x);
      x1 = std::max(x1, x);
      y0 = std::min(y0, y);
      y1 = std::max(y1, y);
    }
  }
  if (!std::isfinite(x0)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  if (x1 <= x0) x1 = x0 + 1;
  if (y1 <= y0) y1 = y0 + 1;
  const double pw = kWidth - kLeft - kRight, ph = kHeight - kTop - kBottom;
  auto px = [&](double x) { return kLeft + (x - x0) / (x1 - x0) * pw; };
  auto py = [&](double y) { return kTop + ph - (y - y0) / (y1 - y0) * ph; };

  std::string o = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + Num(kWidth) +
                  "\" height=\"" + Num(kHeight) + "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  o += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o += "<text x=\"" + Num(kWidth / 2) + "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" +
       Escape(plot.title) + "</text>\n";
  o += "<rect x=\"" + Num(kLeft) + "\" y=\"" + Num(kTop) + "\" width=\"" + Num(pw) + "\" height=\"" +
       Num(ph) + "\" fill=\"none\" stroke=\"black\"/>\n";
  for (int i = 0; i <= 4; ++i) {
    const double xv = x0 + (x1 - x0) * i / 4, yv = y0 + (y1 - y0) * i / 4;
    o += "<line x1=\"" + Num(px(xv)) + "\" y1=\"" + Num(kTop + ph) + "\" x2=\"" + Num(px(xv)) +
         "\" y2=\"" + Num(kTop + ph + 5) + "\" stroke=\"black\"/>\n";
    o += "<text x=\"" + Num(px(xv)) + "\" y=\"" + Num(kTop + ph + 18) +
         "\" text-anchor=\"middle\">" + Tick(xv) + "</text>\n";
    o += "<line x1=\"" + Num(kLeft - 5) + "\" y1=\"" + Num(py(yv)) + "\" x2=\"" + Num(kLeft + pw) +
         "\" y2=\"" + Num(py(yv)) + "\" stroke=\"#dddddd\"/>\n";
    o += "<text x=\"" + Num(kLeft - 8) + "\" y=\"" + Num(py(yv) + 4) + "\" text-anchor=\"end\">" +
         Tick(yv) + "</text>\n";
  }
  o += "<text x=\"" + Num(kLeft + pw / 2) + "\" y=\"" + Num(kHeight - 15) +
       "\" text-anchor=\"middle\">" + Escape(plot.x_label) + "</text>\n";
  o += "<text x=\"18\" y=\"" + Num(kTop + ph / 2) + "\" text-anchor=\"middle\" transform=\"rotate(-90 18 " +
       Num(kTop + ph / 2) + ")\">" + Escape(plot.y_label) + "</text>\n";
  for (size_t i = 0; i < plot.series.size(); ++i) {
    const auto& s = plot.series[i];
    const char* color = kColors[i % (sizeof kColors / sizeof kColors[0])];
    std::string pts;
    for (auto [x, y] : s.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      pts += Num(px(x)) + "," + Num(py(y)) + " ";
    }
    if (!pts.empty()) pts.pop_back();
    o += std::string("<polyline fill=\"none\" stroke=\"") + color + "\" stroke-width=\"1.8\" points=\"" +
         pts + "\"/>\n";
    const double ly = kTop + 10 + 18 * static_cast<double>(i);
    o += std::string("<line x1=\"") + Num(kLeft + pw + 12) + "\" y1=\"" + Num(ly) + "\" x2=\"" +
         Num(kLeft + pw + 32) + "\" y2=\"" + Num(ly) + "\" stroke=\"" + color + "\" stroke-width=\"2\"/>\n";
    o += "<text x=\"" + Num(kLeft + pw + 38) + "\" y=\"" + Num(ly + 4) + "\">" + Escape(s.label) +
         "</text>\n";
  }
  o += "</svg>\n";
  return o;
}

}  // namespace dpnode::sim
