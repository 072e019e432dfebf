#include "ml/evaluate.hpp"

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
  return data::RunRobustnessSuite(d, corruptions, severities, seed,
                                  [&](const data::Dataset& shifted) -> Result<std::vector<float>> {
                                    return ToVector(PredictProbabilities(model.model, shifted));
                                  });
}

}  // namespace edgeloop::ml
