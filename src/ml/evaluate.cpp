#include "ml/evaluate.hpp"

#include <cstdio>

#include "common/progress.hpp"
#include "ml/train.hpp"

namespace edgeloop::ml {
namespace {

Status CheckFits(const LoadedModel& model, const data::Dataset& d) {
  if (d.size() == 0) return Error(Errc::kInvalidArgument, d.source + ": dataset is empty");
  if (d.sample_shape != model.info.spec.input_shape)
    return Error(Errc::kMismatch, d.source + ": samples do not fit the model's input shape");
  for (int32_t y : d.y)
    if (y >= model.info.spec.num_classes)
      return Error(Errc::kMismatch,
                   d.source + ": label " + std::to_string(y) + " is outside the model's classes");
  return Status::Ok();
}

std::vector<float> ToVector(const torch::Tensor& t) {
  auto c = t.contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

}  // namespace

Result<data::ClassificationMetrics> EvaluateMetrics(LoadedModel& model, const data::Dataset& d) {
  EDGELOOP_RETURN_IF_ERROR(CheckFits(model, d));
  auto probs = PredictProbabilities(model.model, d);
  return data::ComputeMetrics(d.y, ToVector(probs), static_cast<int>(model.info.spec.num_classes));
}

Result<RobustnessResult> EvaluateRobustness(LoadedModel& model, const data::Dataset& d,
                                            const std::vector<data::Corruption>& corruptions,
                                            const std::vector<int>& severities, uint64_t seed) {
  EDGELOOP_RETURN_IF_ERROR(CheckFits(model, d));
  if (!d.is_image()) return Error(Errc::kUnsupported, "the robustness suite needs image data");
  RobustnessResult r;
  r.corruptions = corruptions;
  r.severities = severities;
  EDGELOOP_ASSIGN_OR_RETURN(auto clean, EvaluateMetrics(model, d));
  r.clean_accuracy = clean.accuracy;
  ProgressBar bar("robustness", static_cast<int64_t>(corruptions.size() * severities.size()));
  int64_t done = 0;
  double sum = 0;
  for (auto c : corruptions) {
    std::vector<double> row;
    for (int s : severities) {
      auto shifted = data::Corrupt(d, c, s, seed);
      auto probs = PredictProbabilities(model.model, shifted);
      auto acc =
          probs.argmax(1).eq(ToLabelTensor(shifted)).to(torch::kFloat64).mean().item<double>();
      row.push_back(acc);
      sum += acc;
      bar.Update(++done, data::CorruptionName(c));
    }
    r.accuracy.push_back(row);
  }
  bar.Finish();
  r.mean_corruption_accuracy = done > 0 ? sum / static_cast<double>(done) : 0;
  return r;
}

nlohmann::json RobustnessResult::ToJson() const {
  nlohmann::json per = nlohmann::json::object();
  for (size_t i = 0; i < corruptions.size(); ++i) {
    double mean = 0;
    for (double a : accuracy[i]) mean += a;
    per[data::CorruptionName(corruptions[i])] = {
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
    std::snprintf(buf, sizeof buf, "%-16s", data::CorruptionName(corruptions[i]).c_str());
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

}  // namespace edgeloop::ml
