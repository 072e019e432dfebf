// The runtime's behaviour beyond conformance: bad files and bad inputs give clear errors and
// never huge allocations, the fast backend agrees with the reference, memory is planned once.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <random>

#include "runtime/model.hpp"

namespace edgeloop::runtime {
namespace {

void AddInitializer(onnx::GraphProto* g, const std::string& name, const std::vector<int64_t>& dims,
                    const std::vector<float>& values) {
  auto* t = g->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t->add_dims(d);
  for (float v : values) t->add_float_data(v);
}

void AddValue(google::protobuf::RepeatedPtrField<onnx::ValueInfoProto>* list, const std::string& name,
              const std::vector<int64_t>& dims) {
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

std::vector<float> Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 0.5f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// x[?,3,12,12] -> Conv(8, 3x3, pad 1, stride s) -> Relu -> MaxPool 2 -> Flatten -> Gemm(10)
// -> Softmax.
std::string SmallConvNet(int stride = 1, int group = 1) {
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

std::vector<float> RunNet(const std::string& bytes, Backend backend, const std::vector<float>& x, int64_t batch) {
  ModelOptions o;
  o.backend = backend;
  auto m = Model::LoadFromBytes(bytes, "net", o);
  EXPECT_TRUE(m.ok()) << m.error().message;
  auto out = m->Run({Tensor{DType::kFloat32, {batch, 3, 12, 12}, const_cast<float*>(x.data())}});
  EXPECT_TRUE(out.ok()) << out.error().message;
  const auto& t = (*out)[0];
  return std::vector<float>(t.as<float>(), t.as<float>() + NumElements(t.shape));
}

TEST(Runtime, FastBackendMatchesReference) {
  for (int stride : {1, 2}) {
    for (int group : {1, 3}) {
      auto bytes = SmallConvNet(stride, group);
      auto x = Random(4 * 3 * 12 * 12, 9);
      auto ref = RunNet(bytes, Backend::kReference, x, 4);
      auto fast = RunNet(bytes, Backend::kFast, x, 4);
      ASSERT_EQ(ref.size(), 40u);
      ASSERT_EQ(fast.size(), ref.size());
      for (size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(fast[i], ref[i], 1e-5) << stride << " " << group;
    }
  }
}

TEST(Runtime, PlansMemoryAtLoadAndReusesBuffers) {
  auto m = Model::LoadFromBytes(SmallConvNet(), "net");
  ASSERT_TRUE(m.ok()) << m.error().message;
  PlanStats st = m->plan_stats();  // planned for batch 1 before any Run
  EXPECT_EQ(st.steps, 6u);
  EXPECT_GT(st.arena_bytes, 0u);
  EXPECT_LT(st.arena_bytes, st.naive_bytes);  // lifetimes let buffers share memory
  auto x = Random(3 * 12 * 12, 5);
  auto a = m->Run({Tensor{DType::kFloat32, {1, 3, 12, 12}, x.data()}});
  auto b = m->Run({Tensor{DType::kFloat32, {1, 3, 12, 12}, x.data()}});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ((*a)[0].bytes, (*b)[0].bytes);  // the same plan gives the same answer twice
}

TEST(Runtime, WrongInputShapeOrTypeIsAClearError) {
  auto m = Model::LoadFromBytes(SmallConvNet(), "net");
  ASSERT_TRUE(m.ok());
  std::vector<float> x(3 * 10 * 10);
  auto r = m->Run({Tensor{DType::kFloat32, {1, 3, 10, 10}, x.data()}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("must have shape [?,3,12,12]"), std::string::npos) << r.error().message;
  std::vector<int64_t> xi(3 * 12 * 12);
  r = m->Run({Tensor{DType::kInt64, {1, 3, 12, 12}, xi.data()}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("must be float32"), std::string::npos) << r.error().message;
  r = m->Run({});
  ASSERT_FALSE(r.ok());
}

TEST(Runtime, TruncatedOrGarbageFilesAreRefused) {
  auto bytes = SmallConvNet();
  for (size_t cut : {size_t{0}, size_t{1}, bytes.size() / 3, bytes.size() - 7}) {
    auto m = Model::LoadFromBytes(std::string_view(bytes).substr(0, cut), "cut.onnx");
    EXPECT_FALSE(m.ok()) << "cut at " << cut;
    if (!m.ok()) {
      EXPECT_NE(m.error().message.find("cut.onnx"), std::string::npos);
    }
  }
  EXPECT_FALSE(Model::LoadFromBytes("this is not protobuf at all \xff\xff\xff", "junk").ok());
}

TEST(Runtime, InitializerWhoseDataDoesNotMatchItsShapeIsRefused) {
  onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(SmallConvNet()));
  m.mutable_graph()->mutable_initializer(0)->add_dims(2);  // now claims twice the data
  auto r = Model::LoadFromBytes(m.SerializeAsString(), "bad.onnx");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("initializer 'w'"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("needs 324 elements but the data holds 162"), std::string::npos)
      << r.error().message;
}

TEST(Runtime, AbsurdShapesAreRefusedWithoutAllocating) {
  onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(SmallConvNet()));
  auto* init = m.mutable_graph()->mutable_initializer(0);
  init->clear_dims();
  for (int64_t d : {int64_t{1} << 20, int64_t{1} << 20, int64_t{1} << 20}) init->add_dims(d);
  auto r = Model::LoadFromBytes(m.SerializeAsString(), "huge.onnx");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kResourceExhausted) << r.error().message;

  // A declared input of 2^40 elements is refused at load, not allocated.
  onnx::ModelProto m2;
  ASSERT_TRUE(m2.ParseFromString(SmallConvNet()));
  auto* dims = m2.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape();
  dims->mutable_dim(0)->set_dim_value(int64_t{1} << 40);
  r = Model::LoadFromBytes(m2.SerializeAsString(), "huge-input.onnx");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kResourceExhausted) << r.error().message;
}

TEST(Runtime, UnsupportedOpFailsAtLoadNamingOpAndNode) {
  onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(SmallConvNet()));
  auto* n = m.mutable_graph()->mutable_node(1);
  n->set_op_type("Erf");
  auto r = Model::LoadFromBytes(m.SerializeAsString(), "erf.onnx");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kUnsupported);
  EXPECT_NE(r.error().message.find("op 'Erf'"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("node 'Relu_r'"), std::string::npos) << r.error().message;
}

TEST(Runtime, DanglingReferenceIsRefused) {
  onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(SmallConvNet()));
  m.mutable_graph()->mutable_node(2)->set_input(0, "nowhere");
  auto r = Model::LoadFromBytes(m.SerializeAsString(), "dangling.onnx");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("'nowhere'"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace edgeloop::runtime
