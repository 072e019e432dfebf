#include "ml/model.hpp"

namespace edgeloop::ml {

nlohmann::json ModelSpec::ToJson() const {
  return {{"arch", arch},
          {"input_shape", input_shape},
          {"num_classes", num_classes},
          {"widths", widths},
          {"embed", embed},
          {"dropout", dropout},
          {"input_mean", input_mean},
          {"input_std", input_std}};
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
    s.input_mean = j.at("input_mean").get<std::vector<float>>();
    s.input_std = j.at("input_std").get<std::vector<float>>();
  } catch (const std::exception& e) {
    return Error(Errc::kFormat, std::string("model spec: ") + e.what());
  }
  EDGELOOP_RETURN_IF_ERROR(s.Validate());
  return s;
}

Status ModelSpec::Validate() const {
  if (arch != "cnn" && arch != "mlp")
    return Error(Errc::kInvalidArgument, "unknown architecture '" + arch + "' (cnn or mlp)");
  if (num_classes < 2 || num_classes > 100000)
    return Error(Errc::kInvalidArgument, "number of classes must be in [2, 100000]");
  if (arch == "cnn") {
    if (input_shape.size() != 3)
      return Error(Errc::kMismatch, "the cnn takes images [c,h,w]; the input has " +
                                        std::to_string(input_shape.size()) + " dimensions");
    int64_t h = input_shape[1], w = input_shape[2];
    for (size_t i = 0; i < widths.size(); ++i) {
      h /= 2;
      w /= 2;
    }
    if (h < 1 || w < 1)
      return Error(Errc::kMismatch, "image " + std::to_string(input_shape[1]) + "x" +
                                        std::to_string(input_shape[2]) + " is too small for " +
                                        std::to_string(widths.size()) + " pooling blocks");
    if (static_cast<int64_t>(input_mean.size()) != input_shape[0] ||
        static_cast<int64_t>(input_std.size()) != input_shape[0])
      return Error(Errc::kMismatch, "normalization needs one mean and std per channel");
  } else {
    if (input_shape.size() != 1)
      return Error(Errc::kMismatch, "the mlp takes feature vectors [f]; the input has " +
                                        std::to_string(input_shape.size()) + " dimensions");
    if (static_cast<int64_t>(input_mean.size()) != input_shape[0] ||
        static_cast<int64_t>(input_std.size()) != input_shape[0])
      return Error(Errc::kMismatch, "normalization needs one mean and std per feature");
  }
  for (int64_t w : widths)
    if (w < 1 || w > 4096)
      return Error(Errc::kInvalidArgument, "layer widths must be in [1, 4096]");
  for (float s : input_std)
    if (!(s > 0)) return Error(Errc::kInvalidArgument, "normalization std must be positive");
  return Status::Ok();
}

ClassifierImpl::ClassifierImpl(const ModelSpec& spec) : spec_(spec) {
  namespace nn = torch::nn;
  backbone_ = register_module("backbone", nn::ModuleList());
  if (spec.arch == "cnn") {
    int64_t c = spec.input_shape[0], h = spec.input_shape[1], w = spec.input_shape[2];
    mean_ = register_buffer("input_mean", torch::tensor(spec.input_mean).view({1, c, 1, 1}));
    std_ = register_buffer("input_std", torch::tensor(spec.input_std).view({1, c, 1, 1}));
    for (int64_t width : spec.widths) {
      backbone_->push_back(nn::Sequential(nn::Conv2d(nn::Conv2dOptions(c, width, 3).padding(1)),
                                          nn::BatchNorm2d(width), nn::ReLU(),
                                          nn::MaxPool2d(nn::MaxPool2dOptions(2))));
      c = width;
      h /= 2;
      w /= 2;
    }
    backbone_->push_back(nn::Sequential(nn::Flatten(), nn::Linear(c * h * w, spec.embed),
                                        nn::ReLU(), nn::Dropout(spec.dropout)));
    embed_dim_ = spec.embed;
  } else {
    int64_t f = spec.input_shape[0];
    mean_ = register_buffer("input_mean", torch::tensor(spec.input_mean).view({1, f}));
    std_ = register_buffer("input_std", torch::tensor(spec.input_std).view({1, f}));
    for (int64_t width : spec.widths) {
      backbone_->push_back(
          nn::Sequential(nn::Linear(f, width), nn::ReLU(), nn::Dropout(spec.dropout)));
      f = width;
    }
    embed_dim_ = f;
  }
  head_ = register_module("head", nn::Linear(embed_dim_, spec.num_classes));
}

torch::Tensor ClassifierImpl::features(torch::Tensor x) {
  x = (x - mean_) / std_;
  for (const auto& block : *backbone_) x = block->as<torch::nn::SequentialImpl>()->forward(x);
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
