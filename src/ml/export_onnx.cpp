#include "ml/export_onnx.hpp"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include "common/file.hpp"
#include "ml/block.hpp"
#include "ml/zoo_layers.hpp"

namespace edgeloop::ml {
namespace {

namespace nn = torch::nn;

using GraphBuilder = OnnxGraphWriter;

void SetValueInfo(onnx::ValueInfoProto* v, const std::string& name, std::vector<int64_t> dims) {
  v->set_name(name);
  auto* tt = v->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx::TensorProto::FLOAT);
  auto* shape = tt->mutable_shape();
  shape->add_dim()->set_dim_param("batch");
  for (int64_t d : dims) shape->add_dim()->set_dim_value(d);
}

}  // namespace

Result<std::string> ExportOnnx(LoadedModel& lm) {
  torch::NoGradGuard no_grad;
  lm.model->eval();
  const ModelSpec& spec = lm.info.spec;
  onnx::ModelProto model;
  model.set_ir_version(7);
  model.set_producer_name("edgeloop");
  model.set_producer_version(CodeVersion());
  model.set_domain("ai.edgeloop");
  try {
    model.set_model_version(std::stoll(lm.info.version));
  } catch (...) {
    model.set_model_version(0);
  }
  model.set_doc_string(lm.info.name + " " + lm.info.version + " (" + spec.arch + ")");
  auto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOnnxOpset);
  auto* g = model.mutable_graph();
  g->set_name(lm.info.name);
  GraphBuilder b(g);

  SetValueInfo(g->add_input(), "input", spec.input_shape);
  std::vector<int64_t> norm_shape = spec.input_shape.size() == 3
                                        ? std::vector<int64_t>{1, spec.input_shape[0], 1, 1}
                                        : std::vector<int64_t>{1, spec.input_shape[0]};
  auto mean = torch::tensor(spec.input_mean).view(norm_shape);
  auto stdv = torch::tensor(spec.input_std).view(norm_shape);
  std::string x = b.Fresh("centered");
  b.Node("Sub", {"input", b.Initializer("input_mean", mean)}, x);
  std::string y = b.Fresh("normalized");
  b.Node("Div", {x, b.Initializer("input_std", stdv)}, y);
  x = y;

  auto& backbone = lm.model->backbone();
  for (size_t i = 0; i < backbone->size(); ++i) {
    std::string p = "block" + std::to_string(i);
    if (!backbone[i]->as<nn::SequentialImpl>()) {
      auto custom = std::dynamic_pointer_cast<BlockImpl>(backbone->ptr(i));
      if (!custom) return Error(Errc::kUnsupported, "export: block " + p + " has no ONNX form");
      EDGELOOP_ASSIGN_OR_RETURN(x, custom->ExportOnnx(b, x, p));
      continue;
    }
    auto& block = *backbone[i]->as<nn::SequentialImpl>();
    if (auto* conv = block[0]->as<nn::Conv2dImpl>()) {
      auto* bn = block[1]->as<nn::BatchNorm2dImpl>();
      if (!bn) return Error(Errc::kUnsupported, "export: conv block without batch norm");
      std::string r =
          WriteActivation(b, WriteFoldedConv(b, x, *conv, *bn, p + ".conv"), Activation::kRelu, p);
      std::string mp = b.Fresh(p + "_pool");
      auto* pn = b.Node("MaxPool", {r}, mp);
      GraphBuilder::IntsAttr(pn, "kernel_shape", {2, 2});
      GraphBuilder::IntsAttr(pn, "strides", {2, 2});
      x = mp;
      continue;
    }
    size_t li = 0;
    if (block[0]->as<nn::FlattenImpl>()) {
      std::string f = b.Fresh(p + "_flatten");
      GraphBuilder::IntAttr(b.Node("Flatten", {x}, f), "axis", 1);
      x = f;
      li = 1;
    }
    auto* lin = block[li]->as<nn::LinearImpl>();
    if (!lin)
      return Error(Errc::kUnsupported, "export: unexpected layer in block " + std::to_string(i));
    std::string out = b.Fresh(p + "_gemm");
    GraphBuilder::IntAttr(b.Node("Gemm",
                                 {x, b.Initializer(p + ".fc.weight", lin->weight),
                                  b.Initializer(p + ".fc.bias", lin->bias)},
                                 out),
                          "transB", 1);
    std::string r = b.Fresh(p + "_relu");
    b.Node("Relu", {out}, r);
    x = r;  // dropout is the identity at inference and is not exported
  }
  auto& head = lm.model->head();
  GraphBuilder::IntAttr(b.Node("Gemm",
                               {x, b.Initializer("head.weight", head->weight),
                                b.Initializer("head.bias", head->bias)},
                               "logits"),
                        "transB", 1);
  GraphBuilder::IntAttr(b.Node("Softmax", {"logits"}, "probabilities"), "axis", 1);
  SetValueInfo(g->add_output(), "logits", {spec.num_classes});
  SetValueInfo(g->add_output(), "probabilities", {spec.num_classes});

  auto meta = [&](const std::string& k, const std::string& v) {
    auto* p = model.add_metadata_props();
    p->set_key(k);
    p->set_value(v);
  };
  nlohmann::json info = lm.info.ToJson();
  meta("edgeloop.name", lm.info.name);
  meta("edgeloop.version", lm.info.version);
  meta("edgeloop.class_names", nlohmann::json(lm.info.class_names).dump());
  meta("edgeloop.preprocessing", info["preprocessing"].dump());
  meta("edgeloop.model_hash", lm.info.ModelHash());
  meta("edgeloop.lineage", info["lineage"].dump());

  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    return Error(Errc::kInternal,
                 std::string("export: onnx checker rejected the graph: ") + e.what());
  }
  std::string bytes;
  if (!model.SerializeToString(&bytes)) return Error(Errc::kInternal, "export: cannot serialize");
  return bytes;
}

Status ExportOnnxFile(LoadedModel& model, const std::string& path) {
  EDGELOOP_ASSIGN_OR_RETURN(std::string bytes, ExportOnnx(model));
  return WriteFileAtomic(path, bytes);
}

}  // namespace edgeloop::ml
