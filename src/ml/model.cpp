#include "ml/model.hpp"

#include "ml/block.hpp"
#include "ml/onnx_import.hpp"
#include "ml/zoo.hpp"

namespace edgeloop::ml {

namespace {

namespace nn = torch::nn;

bool UsesWidthMult(const std::string& arch) {
  return arch == "mobilenet_v2" || arch == "resnet";
}

Status ValidateCnn(const ModelSpec& s) {
  if (s.input_shape.size() != 3)
    return Error(Errc::kMismatch, "the cnn takes images [c,h,w]; the input has " +
                                      std::to_string(s.input_shape.size()) + " dimensions");
  int64_t h = s.input_shape[1], w = s.input_shape[2];
  for (size_t i = 0; i < s.widths.size(); ++i) {
    h /= 2;
    w /= 2;
  }
  if (h < 1 || w < 1)
    return Error(Errc::kMismatch, "image " + std::to_string(s.input_shape[1]) + "x" +
                                      std::to_string(s.input_shape[2]) + " is too small for " +
                                      std::to_string(s.widths.size()) + " pooling blocks");
  return Status::Ok();
}

Status ValidateMlp(const ModelSpec& s) {
  if (s.input_shape.size() != 1)
    return Error(Errc::kMismatch, "the mlp takes feature vectors [f]; the input has " +
                                      std::to_string(s.input_shape.size()) + " dimensions");
  return Status::Ok();
}

// Conv blocks (conv, batch norm, ReLU, 2x2 max pool), then a fully connected embedding block.
int64_t BuildCnn(const ModelSpec& spec, nn::ModuleList& backbone) {
  int64_t c = spec.input_shape[0], h = spec.input_shape[1], w = spec.input_shape[2];
  for (int64_t width : spec.widths) {
    backbone->push_back(nn::Sequential(nn::Conv2d(nn::Conv2dOptions(c, width, 3).padding(1)),
                                       nn::BatchNorm2d(width), nn::ReLU(),
                                       nn::MaxPool2d(nn::MaxPool2dOptions(2))));
    c = width;
    h /= 2;
    w /= 2;
  }
  backbone->push_back(nn::Sequential(nn::Flatten(), nn::Linear(c * h * w, spec.embed), nn::ReLU(),
                                     nn::Dropout(spec.dropout)));
  return spec.embed;
}

int64_t BuildMlp(const ModelSpec& spec, nn::ModuleList& backbone) {
  int64_t f = spec.input_shape[0];
  for (int64_t width : spec.widths) {
    backbone->push_back(
        nn::Sequential(nn::Linear(f, width), nn::ReLU(), nn::Dropout(spec.dropout)));
    f = width;
  }
  return f;
}

}  // namespace

nlohmann::json ModelSpec::ToJson() const {
  nlohmann::json j = {{"arch", arch},
                      {"input_shape", input_shape},
                      {"num_classes", num_classes},
                      {"widths", widths},
                      {"embed", embed},
                      {"dropout", dropout},
                      {"input_mean", input_mean},
                      {"input_std", input_std}};
  // Only where they mean something, so the spec (and model hash) of a cnn or mlp stays what it
  // was before these fields existed.
  if (UsesWidthMult(arch)) j["width_mult"] = width_mult;
  if (arch == "resnet") j["depth"] = depth;
  if (arch == "onnx") j["onnx"] = {{"head_node", onnx_head}, {"graph_sha256", onnx_graph_sha256}};
  return j;
}

Result<ModelSpec> ModelSpec::FromJson(const nlohmann::json& j) {
  ModelSpec s;
  try {
    s.arch = j.at("arch").get<std::string>();
    s.input_shape = j.at("input_shape").get<std::vector<int64_t>>();
    s.num_classes = j.at("num_classes").get<int64_t>();
    s.widths = j.at("widths").get<std::vector<int64_t>>();
    s.embed = j.value("embed", int64_t{128});
    s.dropout = j.value("dropout", 0.0);
    s.width_mult = j.value("width_mult", 1.0);
    s.depth = j.value("depth", int64_t{20});
    s.input_mean = j.at("input_mean").get<std::vector<float>>();
    s.input_std = j.at("input_std").get<std::vector<float>>();
    if (j.contains("onnx")) {
      s.onnx_head = j["onnx"].at("head_node").get<std::string>();
      s.onnx_graph_sha256 = j["onnx"].value("graph_sha256", "");
    }
  } catch (const std::exception& e) {
    return Error(Errc::kFormat, std::string("model spec: ") + e.what());
  }
  EDGELOOP_RETURN_IF_ERROR(s.Validate());
  return s;
}

Status ModelSpec::Validate() const {
  if (num_classes < 2 || num_classes > 100000)
    return Error(Errc::kInvalidArgument, "number of classes must be in [2, 100000]");
  if (arch == "cnn")
    EDGELOOP_RETURN_IF_ERROR(ValidateCnn(*this));
  else if (arch == "mlp")
    EDGELOOP_RETURN_IF_ERROR(ValidateMlp(*this));
  else if (arch == "mobilenet_v2")
    EDGELOOP_RETURN_IF_ERROR(ValidateMobileNetV2(*this));
  else if (arch == "resnet")
    EDGELOOP_RETURN_IF_ERROR(ValidateResNet(*this));
  else if (arch == "onnx")
    EDGELOOP_RETURN_IF_ERROR(ValidateOnnxSpec(*this));
  else
    return Error(Errc::kInvalidArgument,
                 "unknown architecture '" + arch + "' (cnn, mlp, mobilenet_v2, resnet or onnx)");
  // Every architecture normalizes per channel (images) or per feature (vectors).
  if (static_cast<int64_t>(input_mean.size()) != input_shape[0] ||
      static_cast<int64_t>(input_std.size()) != input_shape[0])
    return Error(Errc::kMismatch, input_shape.size() == 3
                                      ? "normalization needs one mean and std per channel"
                                      : "normalization needs one mean and std per feature");
  for (int64_t w : widths)
    if (w < 1 || w > 4096)
      return Error(Errc::kInvalidArgument, "layer widths must be in [1, 4096]");
  for (float s : input_std)
    if (!(s > 0)) return Error(Errc::kInvalidArgument, "normalization std must be positive");
  return Status::Ok();
}

ClassifierImpl::ClassifierImpl(const ModelSpec& spec) : spec_(spec) {
  backbone_ = register_module("backbone", nn::ModuleList());
  // Images normalize per channel, feature vectors per feature.
  std::vector<int64_t> norm_shape = {1, spec.input_shape[0]};
  if (spec.input_shape.size() == 3) norm_shape = {1, spec.input_shape[0], 1, 1};
  mean_ = register_buffer("input_mean", torch::tensor(spec.input_mean).view(norm_shape));
  std_ = register_buffer("input_std", torch::tensor(spec.input_std).view(norm_shape));
  if (spec.arch == "cnn")
    embed_dim_ = BuildCnn(spec, backbone_);
  else if (spec.arch == "mlp")
    embed_dim_ = BuildMlp(spec, backbone_);
  else if (spec.arch == "mobilenet_v2")
    embed_dim_ = BuildMobileNetV2(spec, backbone_);
  else if (spec.arch == "resnet")
    embed_dim_ = BuildResNet(spec, backbone_);
  else if (spec.arch == "onnx")
    embed_dim_ = BuildOnnxBackbone(spec, backbone_);
  head_ = register_module("head", nn::Linear(embed_dim_, spec.num_classes));
}

torch::Tensor ClassifierImpl::features(torch::Tensor x) {
  x = (x - mean_) / std_;
  for (const auto& block : *backbone_) x = ForwardBlock(block, x);
  return x;
}

torch::Tensor ClassifierImpl::forward(torch::Tensor x) {
  return head_->forward(features(x));
}

void ClassifierImpl::ResetHead(int64_t num_classes) {
  spec_.num_classes = num_classes;
  head_ = replace_module("head", torch::nn::Linear(embed_dim_, num_classes));
}

int64_t ParameterCount(Classifier& model) {
  int64_t n = 0;
  for (const auto& p : model->parameters()) n += p.numel();
  return n;
}

}  // namespace edgeloop::ml
