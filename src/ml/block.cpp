#include "ml/block.hpp"

#include <onnx/onnx_pb.h>

namespace edgeloop::ml {

std::string OnnxGraphWriter::Initializer(const std::string& name, const torch::Tensor& t) {
  auto c = t.detach().to(torch::kCPU).to(torch::kFloat32).contiguous();
  auto* init = g_->add_initializer();
  init->set_name(name);
  init->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : c.sizes()) init->add_dims(d);
  init->set_raw_data(std::string(reinterpret_cast<const char*>(c.data_ptr<float>()),
                                 static_cast<size_t>(c.numel()) * sizeof(float)));
  return name;
}

std::string OnnxGraphWriter::IntInitializer(const std::string& name,
                                            const std::vector<int64_t>& values) {
  auto* init = g_->add_initializer();
  init->set_name(name);
  init->set_data_type(onnx::TensorProto::INT64);
  init->add_dims(static_cast<int64_t>(values.size()));
  for (int64_t v : values) init->add_int64_data(v);
  return name;
}

onnx::NodeProto* OnnxGraphWriter::Node(const std::string& op,
                                       const std::vector<std::string>& inputs,
                                       const std::string& output) {
  auto* n = g_->add_node();
  n->set_op_type(op);
  n->set_name(op + "_" + std::to_string(counter_++));
  for (const auto& i : inputs) n->add_input(i);
  n->add_output(output);
  return n;
}

std::string OnnxGraphWriter::Fresh(const std::string& base) {
  return base + "_" + std::to_string(counter_++);
}

void OnnxGraphWriter::IntsAttr(onnx::NodeProto* n, const std::string& name,
                               std::vector<int64_t> v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (auto x : v) a->add_ints(x);
}

void OnnxGraphWriter::IntAttr(onnx::NodeProto* n, const std::string& name, int64_t v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}

void OnnxGraphWriter::FloatAttr(onnx::NodeProto* n, const std::string& name, float v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(v);
}

torch::Tensor ForwardBlock(const std::shared_ptr<torch::nn::Module>& block, torch::Tensor x) {
  if (auto* seq = block->as<torch::nn::SequentialImpl>()) return seq->forward(x);
  return std::dynamic_pointer_cast<BlockImpl>(block)->forward(x);
}

}  // namespace edgeloop::ml
