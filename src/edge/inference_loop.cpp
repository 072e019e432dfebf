#include "edge/inference_loop.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "common/sample_record.hpp"
#include "edgeloop_wire.pb.h"

namespace edgeloop::edge {

std::vector<float> Softmax(const std::vector<float>& logits) {
  if (logits.empty()) return {};
  float m = *std::max_element(logits.begin(), logits.end());
  std::vector<float> p(logits.size());
  double sum = 0;
  for (size_t i = 0; i < logits.size(); ++i) sum += p[i] = std::exp(logits[i] - m);
  for (float& v : p) v = static_cast<float>(v / sum);
  return p;
}

InputStats ComputeInputStats(const std::vector<float>& data) {
  InputStats s;
  if (data.empty()) return s;
  double sum = 0, sq = 0;
  for (float v : data) {
    sum += v;
    sq += static_cast<double>(v) * v;
  }
  double n = static_cast<double>(data.size());
  s.mean = sum / n;
  s.std = std::sqrt(std::max(0.0, sq / n - s.mean * s.mean));
  return s;
}

Result<ReferenceProfile> BuildReferenceProfile(Classifier& model,
                                               const std::vector<Sample>& samples, int bins) {
  if (samples.empty()) return Error(Errc::kInvalidArgument, "reference profile: no samples");
  std::vector<double> means, stds, conf;
  for (const auto& s : samples) {
    EDGELOOP_ASSIGN_OR_RETURN(std::vector<float> probs, model.Classify(s));
    InputStats st = ComputeInputStats(s.data);
    means.push_back(st.mean);
    stds.push_back(st.std);
    conf.push_back(probs.empty() ? 0.0 : *std::max_element(probs.begin(), probs.end()));
  }
  ReferenceProfile p;
  p.features["input_mean"] = BuildFeatureProfile(std::move(means), bins);
  p.features["input_std"] = BuildFeatureProfile(std::move(stds), bins);
  p.features["confidence"] = BuildFeatureProfile(std::move(conf), bins);
  return p;
}

std::string EncodeUploadRecord(const Sample& s, const SampleOutcome& o,
                               const std::string& model_version) {
  wire::Sample w;
  w.set_timestamp_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count());
  for (int64_t d : s.shape) w.mutable_tensor()->add_shape(d);
  // Image samples travel as bytes, a quarter of their float size.
  SetTensorValues(w.mutable_tensor(), s.data.data(), s.data.size());
  if (s.label) {
    w.set_has_label(true);
    w.set_label(*s.label);
    w.set_label_source(wire::LABEL_SOURCE_DEVICE);
  }
  w.set_prediction(o.prediction);
  w.set_confidence(o.confidence);
  w.set_model_version(model_version);
  (*w.mutable_metadata())["id"] = s.id;
  if (!o.reason.empty()) (*w.mutable_metadata())["reason"] = o.reason;
  return w.SerializeAsString();
}

InferenceLoop::InferenceLoop(InferenceLoopParts parts) : p_(parts) {}

Result<SampleOutcome> InferenceLoop::Process(const Sample& sample, double now_s) {
  if (!p_.model || !p_.spool || !p_.sampler)
    return Error(Errc::kInvalidArgument, "inference loop: model, spool and sampler are required");
  auto start = std::chrono::steady_clock::now();
  auto probs = p_.model->Classify(sample);
  double latency_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  if (!probs.ok()) {
    if (p_.updater) (void)p_.updater->RecordInference(true, latency_ms);
    if (p_.telemetry) p_.telemetry->RecordError();
    return probs.error().WithContext("inference on " + sample.id);
  }
  SampleOutcome o;
  o.latency_ms = latency_ms;
  if (!probs->empty()) {
    auto top = std::max_element(probs->begin(), probs->end());
    o.prediction = static_cast<int32_t>(top - probs->begin());
    o.confidence = *top;
  }
  InputStats st = ComputeInputStats(sample.data);
  std::optional<bool> correct;
  if (sample.label) correct = *sample.label == o.prediction;
  if (p_.telemetry)
    p_.telemetry->RecordInference(latency_ms, o.confidence, st.mean, st.std, correct);
  if (p_.drift) {
    p_.drift->Add("input_mean", st.mean);
    p_.drift->Add("input_std", st.std);
    p_.drift->Add("confidence", o.confidence);
  }
  if (p_.updater) EDGELOOP_RETURN_IF_ERROR(p_.updater->RecordInference(false, latency_ms));

  // The sampler budgets the bytes that will travel; the record is encoded only when needed,
  // with an estimate of its size first (4 bytes per float value plus the small fields).
  size_t estimate = sample.data.size() * 4 + 128;
  SampleDecision d = p_.sampler->Decide(*probs, sample.label.has_value(), estimate, now_s,
                                        p_.drift != nullptr && p_.drift->AnyAlarm());
  o.reason = d.reason;
  if (d.upload) {
    auto seq =
        p_.spool->Append(EncodeUploadRecord(sample, o, p_.model_version), sample.label.has_value());
    if (!seq.ok()) return seq.error().WithContext("spooling " + sample.id);
    o.uploaded = true;
    o.spool_seq = *seq;
  }
  return o;
}

}  // namespace edgeloop::edge
