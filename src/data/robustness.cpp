#include "data/robustness.hpp"

#include <algorithm>
#include <cstdio>

#include "common/progress.hpp"

namespace edgeloop::data {
namespace {

// The share of labelled samples whose highest score is their label.
Result<double> Accuracy(const Dataset& d, const std::vector<float>& scores) {
  if (d.size() == 0 || scores.size() % d.size() != 0)
    return Error(Errc::kMismatch, "predictions do not match the dataset's size");
  const size_t k = scores.size() / d.size();
  size_t labelled = 0, correct = 0;
  for (size_t i = 0; i < d.size(); ++i) {
    if (d.y[i] < 0) continue;
    const float* row = scores.data() + i * k;
    ++labelled;
    correct +=
        static_cast<size_t>(std::max_element(row, row + k) - row) == static_cast<size_t>(d.y[i]);
  }
  if (labelled == 0) return Error(Errc::kInvalidArgument, d.source + ": no labelled samples");
  return static_cast<double>(correct) / static_cast<double>(labelled);
}

}  // namespace

Result<RobustnessResult> RunRobustnessSuite(const Dataset& d,
                                            const std::vector<Corruption>& corruptions,
                                            const std::vector<int>& severities, uint64_t seed,
                                            const PredictFn& predict) {
  if (d.size() == 0) return Error(Errc::kInvalidArgument, d.source + ": dataset is empty");
  if (!d.is_image()) return Error(Errc::kUnsupported, "the robustness suite needs image data");
  if (corruptions.empty() || severities.empty())
    return Error(Errc::kInvalidArgument, "the robustness suite needs corruptions and severities");
  RobustnessResult r;
  r.corruptions = corruptions;
  r.severities = severities;
  EDGELOOP_ASSIGN_OR_RETURN(auto clean, predict(d));
  EDGELOOP_ASSIGN_OR_RETURN(r.clean_accuracy, Accuracy(d, clean));
  ProgressBar bar("robustness", static_cast<int64_t>(corruptions.size() * severities.size()));
  int64_t done = 0;
  double sum = 0;
  for (auto c : corruptions) {
    std::vector<double> row;
    for (int s : severities) {
      Dataset shifted = Corrupt(d, c, s, seed);
      EDGELOOP_ASSIGN_OR_RETURN(auto scores, predict(shifted));
      EDGELOOP_ASSIGN_OR_RETURN(double acc, Accuracy(shifted, scores));
      row.push_back(acc);
      sum += acc;
      bar.Update(++done, CorruptionName(c));
    }
    r.accuracy.push_back(row);
  }
  bar.Finish();
  r.mean_corruption_accuracy = sum / static_cast<double>(done);
  return r;
}

nlohmann::json RobustnessResult::ToJson() const {
  nlohmann::json per = nlohmann::json::object();
  for (size_t i = 0; i < corruptions.size(); ++i) {
    double mean = 0;
    for (double a : accuracy[i]) mean += a;
    per[CorruptionName(corruptions[i])] = {
        {"accuracy_by_severity", accuracy[i]},
        {"mean_accuracy",
         accuracy[i].empty() ? 0 : mean / static_cast<double>(accuracy[i].size())}};
  }
  return {{"clean_accuracy", clean_accuracy},
          {"severities", severities},
          {"corruptions", per},
          {"mean_corruption_accuracy", mean_corruption_accuracy}};
}

std::string RobustnessResult::Table() const {
  std::string out;
  char buf[128];
  std::snprintf(buf, sizeof buf, "%-16s", "corruption");
  out += buf;
  for (int s : severities) {
    std::snprintf(buf, sizeof buf, "   sev%d", s);
    out += buf;
  }
  out += "    mean\n";
  for (size_t i = 0; i < corruptions.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%-16s", CorruptionName(corruptions[i]).c_str());
    out += buf;
    double mean = 0;
    for (double a : accuracy[i]) {
      std::snprintf(buf, sizeof buf, " %6.4f", a);
      out += buf;
      mean += a;
    }
    std::snprintf(buf, sizeof buf, "  %6.4f\n",
                  accuracy[i].empty() ? 0 : mean / static_cast<double>(accuracy[i].size()));
    out += buf;
  }
  std::snprintf(buf, sizeof buf, "clean accuracy %.4f, mean corruption accuracy %.4f\n",
                clean_accuracy, mean_corruption_accuracy);
  out += buf;
  return out;
}

}  // namespace edgeloop::data
