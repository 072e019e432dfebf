// edgeloop quantize: post-training static int8 quantization of an fp32 ONNX model, calibrated
// on a dataset, written as standard ONNX: QOperator form (QLinearConv, QuantizeLinear,
// DequantizeLinear) or, with --format qdq, QDQ form (float layers between DequantizeLinear
// and QuantizeLinear, as ONNX Runtime's quantizer writes them).
// With --eval it also scores the fp32 and int8 models on a dataset, side by side.
#include <algorithm>
#include <cstdio>
#include <memory>

#include "cli/command.hpp"
#include "common/worker_protocol.hpp"
#include "data/dataset.hpp"
#include "edge/runtime_classifier.hpp"
#include "runtime/model.hpp"
#include "runtime/quantizer.hpp"

namespace edgeloop::cli {
namespace {

struct QuantizeArgs {
  std::string model, calib, out, eval, format = "qoperator";
  int samples = 500;
  uint64_t seed = 0;
  RequestOption request;
};

// --request, when given: a pipeline's step, the request's settings in place of the flags.
int FromRequest(QuantizeArgs& a) {
  if (int rc = a.request.Check(); rc != 0 || !a.request.given()) return rc;
  auto r = worker::ReadRequest(a.request.path, worker::ParseQuantizeRequest);
  if (!r.ok()) return RequestError("quantize", r.error());
  a.model = r->model;
  a.calib = r->calib;
  a.out = r->out;
  a.samples = static_cast<int>(r->samples);
  a.seed = r->seed;
  return 0;
}

Result<double> Accuracy(const std::string& path, const data::Dataset& d) {
  EDGELOOP_ASSIGN_OR_RETURN(runtime::Model m, runtime::Model::Load(path));
  size_t correct = 0;
  const int64_t batch = 100;
  for (size_t i = 0; i < d.size(); i += batch) {
    int64_t b = static_cast<int64_t>(std::min<size_t>(batch, d.size() - i));
    runtime::Shape shape{b};
    shape.insert(shape.end(), d.sample_shape.begin(), d.sample_shape.end());
    EDGELOOP_ASSIGN_OR_RETURN(
        auto out,
        m.Run({runtime::Tensor{runtime::DType::kFloat32, shape, const_cast<float*>(d.sample(i))}}));
    const auto& s = out.back();
    const int64_t k = s.shape[1];
    for (int64_t j = 0; j < b; ++j) {
      const float* row = s.as<float>() + j * k;
      correct += (std::max_element(row, row + k) - row) == d.y[i + static_cast<size_t>(j)];
    }
  }
  return d.size() ? static_cast<double>(correct) / static_cast<double>(d.size()) : 0.0;
}

int Run(QuantizeArgs& a) {
  if (int rc = FromRequest(a); rc != 0) return rc;
  // Calibration images reach the model as they would on a device: converted to its input
  // spec (its ONNX metadata, or its declared input size).
  auto fp32 = runtime::Model::Load(a.model);
  if (!fp32.ok()) return ReportError("quantize", fp32.error());
  auto spec = edge::ModelInputSpec(*fp32, a.model);
  if (!spec.ok()) return ReportError("quantize", spec.error());
  auto calib = data::LoadDataset(a.calib, *spec ? &**spec : nullptr);
  if (!calib.ok()) return ReportError("quantize", calib.error());
  const size_t classes = std::max<size_t>(1, calib->class_names.size());
  auto subset = data::SamplePerClass(
      *calib, static_cast<int>((static_cast<size_t>(a.samples) + classes - 1) / classes), a.seed);
  std::vector<runtime::OwnedTensor> batches;
  const size_t numel = subset.sample_numel();
  for (size_t i = 0; i < subset.size(); i += 100) {
    size_t b = std::min<size_t>(100, subset.size() - i);
    runtime::OwnedTensor t;
    t.dtype = runtime::DType::kFloat32;
    t.shape = {static_cast<int64_t>(b)};
    t.shape.insert(t.shape.end(), subset.sample_shape.begin(), subset.sample_shape.end());
    const auto* src = reinterpret_cast<const unsigned char*>(subset.sample(i));
    t.bytes.assign(src, src + b * numel * sizeof(float));
    batches.push_back(std::move(t));
  }
  auto report = runtime::QuantizeModel(
      a.model, batches, a.out,
      a.format == "qdq" ? runtime::QuantFormat::kQdq : runtime::QuantFormat::kQOperator);
  if (!report.ok()) return ReportError("quantize", report.error());
  std::printf(
      "wrote %s: %zu layers in int8, calibrated on %zu samples of %s; %zu -> %zu bytes (%.2fx "
      "smaller)\n",
      a.out.c_str(), report->quantized_layers, report->calibration_samples, a.calib.c_str(),
      report->fp32_bytes, report->int8_bytes,
      static_cast<double>(report->fp32_bytes) /
          static_cast<double>(std::max<size_t>(1, report->int8_bytes)));
  if (!report->float_ops.empty()) {
    std::printf("ops left in fp32:");
    for (const auto& op : report->float_ops) std::printf(" %s", op.c_str());
    std::printf("\n");
  }
  if (!a.eval.empty()) {
    auto eval = data::LoadDataset(a.eval, *spec ? &**spec : nullptr);
    if (!eval.ok()) return ReportError("quantize", eval.error());
    auto fp32_acc = Accuracy(a.model, *eval);
    auto int8 = Accuracy(a.out, *eval);
    if (!fp32_acc.ok()) return ReportError("quantize", fp32_acc.error());
    if (!int8.ok()) return ReportError("quantize", int8.error());
    std::printf("accuracy on %s (%zu samples): fp32 %.4f, int8 %.4f (%+.2f points)\n",
                a.eval.c_str(), eval->size(), *fp32_acc, *int8, (*int8 - *fp32_acc) * 100);
  }
  return kExitOk;
}

}  // namespace

void RegisterQuantize(CLI::App& root) {
  auto a = std::make_shared<QuantizeArgs>();
  auto* sub = root.add_subcommand("quantize",
                                  "Quantize an fp32 ONNX model to int8, calibrated on a dataset");
  sub->add_option("--model", a->model, "fp32 ONNX model")->required();
  sub->add_option("--calib", a->calib, "calibration data (any dataset spec)")->required();
  sub->add_option("--out", a->out, "int8 ONNX model to write")->required();
  sub->add_option("--samples", a->samples, "calibration samples (stratified)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  sub->add_option("--seed", a->seed)->capture_default_str();
  sub->add_option("--format", a->format,
                  "qoperator (QLinearConv nodes) or qdq (QuantizeLinear/DequantizeLinear around "
                  "float layers)")
      ->capture_default_str()
      ->check(CLI::IsMember({"qoperator", "qdq"}));
  sub->add_option("--eval", a->eval, "also compare fp32 and int8 accuracy on this dataset");
  a->request.AddTo(sub);
  SetAction(sub, [a] { return Run(*a); });
}

}  // namespace edgeloop::cli
