#include "data/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace edgeloop::data {

ClassificationMetrics ComputeMetrics(const std::vector<int32_t>& labels,
                                     const std::vector<float>& probs, int k, int bins) {
  ClassificationMetrics m;
  m.confusion.assign(static_cast<size_t>(k), std::vector<int64_t>(static_cast<size_t>(k), 0));
  m.per_class.assign(static_cast<size_t>(k), {});
  std::vector<double> bin_conf(static_cast<size_t>(bins), 0), bin_acc(static_cast<size_t>(bins), 0);
  std::vector<int64_t> bin_n(static_cast<size_t>(bins), 0);
  int64_t correct = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    int32_t t = labels[i];
    if (t < 0 || t >= k) continue;
    const float* p = probs.data() + i * static_cast<size_t>(k);
    int pred = static_cast<int>(std::max_element(p, p + k) - p);
    double conf = p[pred];
    ++m.confusion[static_cast<size_t>(t)][static_cast<size_t>(pred)];
    ++m.samples;
    bool ok = pred == t;
    correct += ok;
    int b = std::min(bins - 1, static_cast<int>(conf * bins));
    b = std::max(b, 0);
    bin_conf[static_cast<size_t>(b)] += conf;
    bin_acc[static_cast<size_t>(b)] += ok;
    ++bin_n[static_cast<size_t>(b)];
  }
  if (m.samples == 0) return m;
  m.accuracy = static_cast<double>(correct) / static_cast<double>(m.samples);
  int present = 0;
  for (int c = 0; c < k; ++c) {
    int64_t tp = m.confusion[static_cast<size_t>(c)][static_cast<size_t>(c)], fp = 0, fn = 0;
    for (int o = 0; o < k; ++o) {
      if (o == c) continue;
      fp += m.confusion[static_cast<size_t>(o)][static_cast<size_t>(c)];
      fn += m.confusion[static_cast<size_t>(c)][static_cast<size_t>(o)];
    }
    auto& cm = m.per_class[static_cast<size_t>(c)];
    cm.support = tp + fn;
    cm.precision = tp + fp > 0 ? static_cast<double>(tp) / static_cast<double>(tp + fp) : 0;
    cm.recall = tp + fn > 0 ? static_cast<double>(tp) / static_cast<double>(tp + fn) : 0;
    cm.f1 = cm.precision + cm.recall > 0 ? 2 * cm.precision * cm.recall / (cm.precision + cm.recall)
                                         : 0;
    // Macro averages run over the classes present in the labels, as scikit-learn's do
    // when given labels=present classes.
    if (cm.support > 0) {
      ++present;
      m.macro_precision += cm.precision;
      m.macro_recall += cm.recall;
      m.macro_f1 += cm.f1;
    }
  }
  if (present > 0) {
    m.macro_precision /= present;
    m.macro_recall /= present;
    m.macro_f1 /= present;
  }
  for (int b = 0; b < bins; ++b) {
    if (bin_n[static_cast<size_t>(b)] == 0) continue;
    double n = static_cast<double>(bin_n[static_cast<size_t>(b)]);
    m.ece += n / static_cast<double>(m.samples) *
             std::fabs(bin_acc[static_cast<size_t>(b)] / n - bin_conf[static_cast<size_t>(b)] / n);
  }
  return m;
}

nlohmann::json ClassificationMetrics::ToJson(const std::vector<std::string>& names) const {
  nlohmann::json pc = nlohmann::json::array();
  for (size_t c = 0; c < per_class.size(); ++c)
    pc.push_back({{"class", c < names.size() ? names[c] : std::to_string(c)},
                  {"precision", per_class[c].precision},
                  {"recall", per_class[c].recall},
                  {"f1", per_class[c].f1},
                  {"support", per_class[c].support}});
  return {{"samples", samples},
          {"accuracy", accuracy},
          {"macro_precision", macro_precision},
          {"macro_recall", macro_recall},
          {"macro_f1", macro_f1},
          {"ece", ece},
          {"per_class", pc},
          {"confusion_matrix", confusion}};
}

std::string FormatMetricsTable(const ClassificationMetrics& m,
                               const std::vector<std::string>& names) {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line,
                "samples %lld  accuracy %.4f  macro P %.4f  R %.4f  F1 %.4f  ECE %.4f\n\n",
                static_cast<long long>(m.samples), m.accuracy, m.macro_precision, m.macro_recall,
                m.macro_f1, m.ece);
  out += line;
  std::snprintf(line, sizeof line, "%-14s %9s %9s %9s %8s\n", "class", "precision", "recall", "f1",
                "support");
  out += line;
  for (size_t c = 0; c < m.per_class.size(); ++c) {
    std::string name = c < names.size() ? names[c] : std::to_string(c);
    std::snprintf(line, sizeof line, "%-14.14s %9.4f %9.4f %9.4f %8lld\n", name.c_str(),
                  m.per_class[c].precision, m.per_class[c].recall, m.per_class[c].f1,
                  static_cast<long long>(m.per_class[c].support));
    out += line;
  }
  out += "\nconfusion matrix (rows: true class, columns: predicted)\n";
  for (size_t r = 0; r < m.confusion.size(); ++r) {
    std::snprintf(line, sizeof line, "%-14.14s", r < names.size() ? names[r].c_str() : "?");
    out += line;
    for (int64_t v : m.confusion[r]) {
      std::snprintf(line, sizeof line, " %5lld", static_cast<long long>(v));
      out += line;
    }
    out += "\n";
  }
  return out;
}

}  // namespace edgeloop::data
