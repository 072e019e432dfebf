// ONNX models built in code for the runtime's tests: initializers and inputs, a small
// convolutional classifier, and a builder for graphs node by node.
#pragma once

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "common/file.hpp"
#include "runtime/model.hpp"

namespace edgeloop::runtime::test {

inline void AddInitializer(onnx::GraphProto* g, const std::string& name,
                           const std::vector<int64_t>& dims, const std::vector<float>& values) {
  auto* t = g->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t->add_dims(d);
  for (float v : values) t->add_float_data(v);
}

inline void AddValue(google::protobuf::RepeatedPtrField<onnx::ValueInfoProto>* list,
                     const std::string& name, const std::vector<int64_t>& dims) {
  auto* v = list->Add();
  v->set_name(name);
  auto* tt = v->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) {
    if (d < 0)
      tt->mutable_shape()->add_dim()->set_dim_param("batch");
    else
      tt->mutable_shape()->add_dim()->set_dim_value(d);
  }
}

inline std::vector<float> Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 0.5f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// x[?,3,12,12] -> Conv(8, 3x3, pad 1, stride s) -> Relu -> MaxPool 2 -> Flatten -> Gemm(10)
// -> Softmax.
inline std::string SmallConvNet(int stride = 1, int group = 1) {
  onnx::ModelProto m;
  m.set_ir_version(7);
  m.add_opset_import()->set_version(13);
  auto* g = m.mutable_graph();
  g->set_name("small");
  AddValue(g->mutable_input(), "x", {-1, 3, 12, 12});
  AddInitializer(g, "w", {6, 3 / group, 3, 3}, Random(static_cast<size_t>(6 * (3 / group) * 9), 1));
  AddInitializer(g, "b", {6}, Random(6, 2));
  const int64_t side = (12 + 2 - 3) / stride + 1, pooled = side / 2;
  const int64_t feat = 6 * pooled * pooled;
  AddInitializer(g, "fw", {10, feat}, Random(static_cast<size_t>(10 * feat), 3));
  AddInitializer(g, "fb", {10}, Random(10, 4));
  auto node = [&](const std::string& op, std::vector<std::string> in, std::string out) {
    auto* n = g->add_node();
    n->set_op_type(op);
    n->set_name(op + "_" + out);
    for (auto& i : in) n->add_input(i);
    n->add_output(out);
    return n;
  };
  auto* conv = node("Conv", {"x", "w", "b"}, "c");
  auto ints = [](onnx::NodeProto* n, const std::string& name, std::vector<int64_t> v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (auto x : v) a->add_ints(x);
  };
  ints(conv, "pads", {1, 1, 1, 1});
  ints(conv, "strides", {stride, stride});
  auto* ga = conv->add_attribute();
  ga->set_name("group");
  ga->set_type(onnx::AttributeProto::INT);
  ga->set_i(group);
  node("Relu", {"c"}, "r");
  auto* pool = node("MaxPool", {"r"}, "p");
  ints(pool, "kernel_shape", {2, 2});
  ints(pool, "strides", {2, 2});
  node("Flatten", {"p"}, "f");
  auto* gemm = node("Gemm", {"f", "fw", "fb"}, "logits");
  auto* tb = gemm->add_attribute();
  tb->set_name("transB");
  tb->set_type(onnx::AttributeProto::INT);
  tb->set_i(1);
  node("Softmax", {"logits"}, "prob");
  AddValue(g->mutable_output(), "prob", {-1, 10});
  return m.SerializeAsString();
}

inline std::vector<float> RunNet(const std::string& bytes, Backend backend,
                                 const std::vector<float>& x, int64_t batch) {
  ModelOptions o;
  o.backend = backend;
  auto m = Model::LoadFromBytes(bytes, "net", o);
  EXPECT_TRUE(m.ok()) << m.error().message;
  auto out = m->Run({Tensor{DType::kFloat32, {batch, 3, 12, 12}, const_cast<float*>(x.data())}});
  EXPECT_TRUE(out.ok()) << out.error().message;
  const auto& t = (*out)[0];
  return std::vector<float>(t.as<float>(), t.as<float>() + NumElements(t.shape));
}

// A small graph built node by node, for the tests of shape computations and bad values.
class TestGraph {
 public:
  explicit TestGraph(int opset) {
    m_.set_ir_version(8);
    m_.add_opset_import()->set_version(opset);
    g_ = m_.mutable_graph();
    g_->set_name("test");
  }
  onnx::NodeProto* Node(const std::string& op, std::vector<std::string> in,
                        std::vector<std::string> out) {
    auto* n = g_->add_node();
    n->set_op_type(op);
    n->set_name(op + "_" + out[0]);
    for (auto& i : in) n->add_input(i);
    for (auto& o : out) n->add_output(o);
    return n;
  }
  void Ints(const std::string& name, const std::vector<int64_t>& dims,
            const std::vector<int64_t>& values) {
    auto* t = g_->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::INT64);
    for (int64_t d : dims) t->add_dims(d);
    for (int64_t v : values) t->add_int64_data(v);
  }
  void Floats(const std::string& name, const std::vector<int64_t>& dims,
              const std::vector<float>& values) {
    AddInitializer(g_, name, dims, values);
  }
  // An initializer of any type from its little-endian bytes.
  void Raw(const std::string& name, const std::vector<int64_t>& dims, int type,
           const std::string& bytes) {
    auto* t = g_->add_initializer();
    t->set_name(name);
    t->set_data_type(type);
    for (int64_t d : dims) t->add_dims(d);
    t->set_raw_data(bytes);
  }
  template <typename T>
  void Typed(const std::string& name, const std::vector<int64_t>& dims, int type,
             const std::vector<T>& values) {
    Raw(name, dims, type,
        std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T)));
  }
  static void IntAttr(onnx::NodeProto* n, const std::string& name, int64_t v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  static void IntsAttr(onnx::NodeProto* n, const std::string& name, const std::vector<int64_t>& v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t x : v) a->add_ints(x);
  }
  void Input(const std::string& name, const std::vector<int64_t>& dims,
             int type = onnx::TensorProto::FLOAT) {
    AddValue(g_->mutable_input(), name, dims);
    g_->mutable_input()->rbegin()->mutable_type()->mutable_tensor_type()->set_elem_type(type);
  }
  void Output(const std::string& name, int type = onnx::TensorProto::FLOAT) {
    auto* v = g_->add_output();
    v->set_name(name);
    v->mutable_type()->mutable_tensor_type()->set_elem_type(type);
  }
  std::string Bytes() const { return m_.SerializeAsString(); }

 private:
  onnx::ModelProto m_;
  onnx::GraphProto* g_;
};

// Four calibration batches of 16 random images for SmallConvNet.
inline std::vector<OwnedTensor> SmallConvNetCalibration() {
  std::vector<OwnedTensor> calib;
  for (uint32_t b = 0; b < 4; ++b) {
    OwnedTensor t;
    t.dtype = DType::kFloat32;
    t.shape = {16, 3, 12, 12};
    auto v = Random(16 * 3 * 12 * 12, 100 + b);
    t.bytes.assign(reinterpret_cast<unsigned char*>(v.data()),
                   reinterpret_cast<unsigned char*>(v.data() + v.size()));
    calib.push_back(std::move(t));
  }
  return calib;
}

// ONNX Runtime (tools/ort/run.js, one thread) on `model` with input x of shape `dims`
// ("8,3,12,12"): the output named `output`, or empty after a test failure. dir: scratch.
inline std::vector<float> RunOnnxRuntime(const std::string& model, const std::vector<float>& x,
                                         const std::string& dims, const std::string& output,
                                         const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  const char* src = std::getenv("EDGELOOP_SOURCE_DIR");
  if (!src || !fs::exists(fs::path(src) / "tools/ort/node_modules/onnxruntime-node")) {
    ADD_FAILURE() << "ONNX Runtime is not installed: run scripts/ort-install";
    return {};
  }
  std::string raw(reinterpret_cast<const char*>(x.data()), x.size() * sizeof(float));
  if (!WriteFileAtomic((dir / "ort_in.bin").string(), raw).ok()) return {};
  std::string cmd = "node '" + (fs::path(src) / "tools/ort/run.js").string() + "' '" + model +
                    "' '" + (dir / "ort_in.bin").string() + "' " + dims + " " + output + " '" +
                    (dir / "ort_out.bin").string() + "'";
  if (std::system(cmd.c_str()) != 0) {
    ADD_FAILURE() << cmd;
    return {};
  }
  auto got = ReadFile((dir / "ort_out.bin").string());
  if (!got.ok()) return {};
  const float* f = reinterpret_cast<const float*>(got->data());
  return std::vector<float>(f, f + got->size() / sizeof(float));
}

}  // namespace edgeloop::runtime::test
