#include "edge/runtime_classifier.hpp"

#include <cmath>
#include <nlohmann/json.hpp>

#include "runtime/model.hpp"

namespace edgeloop::edge {

namespace {
constexpr size_t kMaxPreprocessingJsonBytes = 64 << 10;
}  // namespace

Result<std::optional<data::InputSpec>> ModelInputSpec(const runtime::Model& model,
                                                      const std::string& origin) {
  const auto& meta = model.graph().metadata;
  auto it = meta.find("edgeloop.preprocessing");
  if (it != meta.end()) {
    if (it->second.size() > kMaxPreprocessingJsonBytes)
      return Error(Errc::kFormat, origin + ": metadata edgeloop.preprocessing is too large");
    auto j = nlohmann::json::parse(it->second, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object())
      return Error(Errc::kFormat,
                   origin + ": metadata edgeloop.preprocessing is not a JSON object");
    if (j.contains("input_spec") && !j["input_spec"].is_null()) {
      auto spec = data::InputSpec::FromJson(j["input_spec"]);
      if (!spec.ok()) return spec.error().WithContext(origin + ": edgeloop.preprocessing");
      return std::optional<data::InputSpec>(*spec);
    }
  }
  // Older exports and models from elsewhere: the declared input shape, when it is an image's.
  if (model.inputs().empty()) return std::optional<data::InputSpec>();
  const auto& in = model.inputs()[0];
  if (!in.has_shape || in.dims.size() != 4) return std::optional<data::InputSpec>();
  std::vector<int64_t> chw;
  for (size_t k = 1; k < 4; ++k) {
    if (!in.dims[k]) return std::optional<data::InputSpec>();
    chw.push_back(*in.dims[k]);
  }
  auto spec = data::InputSpec::ForShape(chw);
  if (!spec.ok()) return std::optional<data::InputSpec>();
  return std::optional<data::InputSpec>(*spec);
}

struct RuntimeClassifier::Impl {
  runtime::Model model;
  std::optional<data::InputSpec> input_spec;
};

RuntimeClassifier::RuntimeClassifier(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RuntimeClassifier::~RuntimeClassifier() = default;

Result<std::unique_ptr<RuntimeClassifier>> RuntimeClassifier::Load(
    const std::string& path, const runtime::ModelOptions& options) {
  EDGELOOP_ASSIGN_OR_RETURN(runtime::Model model, runtime::Model::Load(path, options));
  if (model.inputs().empty() || model.outputs().empty())
    return Error(Errc::kUnsupported, path + ": a classifier needs an input and an output");
  EDGELOOP_ASSIGN_OR_RETURN(auto spec, ModelInputSpec(model, path));
  return std::unique_ptr<RuntimeClassifier>(
      new RuntimeClassifier(std::make_unique<Impl>(Impl{std::move(model), std::move(spec)})));
}

const std::optional<data::InputSpec>& RuntimeClassifier::input_spec() const {
  return impl_->input_spec;
}

Result<std::vector<float>> RuntimeClassifier::RunRaw(const std::vector<int64_t>& shape,
                                                     const std::vector<float>& values) {
  runtime::Shape in_shape = shape;
  if (in_shape.empty()) {
    const auto& decl = impl_->model.inputs()[0];
    int64_t n = 1;
    for (const auto& d : decl.dims) {
      in_shape.push_back(d.value_or(1));
      n *= in_shape.back();
    }
    if (!decl.has_shape || n != static_cast<int64_t>(values.size()))
      in_shape = {1, static_cast<int64_t>(values.size())};
  }
  runtime::Tensor in{runtime::DType::kFloat32, in_shape, const_cast<float*>(values.data())};
  if (in.size() != static_cast<int64_t>(values.size()))
    return Error(Errc::kMismatch, "input of " + std::to_string(values.size()) +
                                      " values does not fit the shape given");
  EDGELOOP_ASSIGN_OR_RETURN(auto outs, impl_->model.Run({in}));
  const runtime::OwnedTensor& out = outs.at(0);
  if (out.dtype != runtime::DType::kFloat32)
    return Error(Errc::kUnsupported, "the model's first output is not float32");
  const float* p = out.as<float>();
  return std::vector<float>(p, p + out.view().size());
}

Result<std::vector<float>> RuntimeClassifier::Classify(const Sample& sample) {
  std::vector<int64_t> shape;
  if (!sample.shape.empty()) {
    // {1, sample shape} unless the model declares a shape with the same element count.
    const auto& decl = impl_->model.inputs()[0];
    int64_t n = 1;
    for (const auto& d : decl.dims) n *= d.value_or(1);
    if (!decl.has_shape || n != static_cast<int64_t>(sample.data.size())) {
      shape.push_back(1);
      shape.insert(shape.end(), sample.shape.begin(), sample.shape.end());
    }
  }
  EDGELOOP_ASSIGN_OR_RETURN(std::vector<float> out, RunRaw(shape, sample.data));
  double sum = 0;
  bool distribution = true;
  for (float v : out) {
    if (!(v >= 0 && v <= 1)) distribution = false;
    sum += v;
  }
  if (distribution && std::abs(sum - 1.0) < 1e-3) return out;
  return Softmax(out);
}

Status CheckModelHealth(const std::string& path, const UpdateMetadata& metadata,
                        const runtime::ModelOptions& options) {
  EDGELOOP_ASSIGN_OR_RETURN(auto model, RuntimeClassifier::Load(path, options));
  for (size_t i = 0; i < metadata.golden.size(); ++i) {
    const GoldenCase& g = metadata.golden[i];
    auto out = model->RunRaw(g.shape, g.input);
    if (!out.ok()) return out.error().WithContext("golden case " + std::to_string(i));
    if (out->size() != g.output.size())
      return Error(Errc::kMismatch, "golden case " + std::to_string(i) + ": " +
                                        std::to_string(out->size()) + " outputs, expected " +
                                        std::to_string(g.output.size()));
    for (size_t k = 0; k < out->size(); ++k)
      if (!(std::abs((*out)[k] - g.output[k]) <= g.tolerance))
        return Error(Errc::kMismatch, "golden case " + std::to_string(i) + ": output " +
                                          std::to_string(k) + " is " + std::to_string((*out)[k]) +
                                          ", expected " + std::to_string(g.output[k]));
  }
  return Status::Ok();
}

}  // namespace edgeloop::edge
