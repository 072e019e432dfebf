// int8 models in QDQ form: the fast backend fuses DequantizeLinear -> layer -> QuantizeLinear
// into the integer kernels and gives what the QOperator form gives; ONNX Runtime runs the
// same files; patterns that cannot fuse run in float and say why.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "common/file.hpp"
#include "runtime/model.hpp"
#include "runtime/quantizer.hpp"
#include "runtime/test_models.hpp"

namespace edgeloop::runtime {
namespace {

using namespace test;  // NOLINT(google-build-using-namespace)

std::map<std::string, int> OpCounts(const Model& m) {
  std::map<std::string, int> n;
  for (const auto& node : m.graph().nodes) ++n[node.op_type];
  return n;
}

const QdqPattern* Find(const std::vector<QdqPattern>& ps, const std::string& op) {
  for (const auto& p : ps)
    if (p.op_type == op) return &p;
  return nullptr;
}

std::vector<float> Output(Model& m, const std::vector<float>& x, const Shape& shape) {
  auto out = m.Run({Tensor{DType::kFloat32, shape, const_cast<float*>(x.data())}});
  EXPECT_TRUE(out.ok()) << out.error().message;
  if (!out.ok()) return {};
  const auto& t = (*out)[0];
  return std::vector<float>(t.as<float>(), t.as<float>() + NumElements(t.shape));
}

Model LoadAs(const std::string& bytes, Backend backend) {
  ModelOptions o;
  o.backend = backend;
  auto m = Model::LoadFromBytes(bytes, "qdq", o);
  EXPECT_TRUE(m.ok()) << m.error().message;
  return std::move(*m);
}

TEST(Qdq, QuantizerQdqFormFusesIntoTheQOperatorKernelsAndOnnxRuntimeAgrees) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("edgeloop_qdq_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string fp32 = (dir / "m.onnx").string(), qop = (dir / "m-qop.onnx").string(),
                    qdq = (dir / "m-qdq.onnx").string();
  ASSERT_TRUE(WriteFileAtomic(fp32, SmallConvNet()).ok());
  const auto calib = SmallConvNetCalibration();
  ASSERT_TRUE(QuantizeModel(fp32, calib, qop).ok());
  auto report = QuantizeModel(fp32, calib, qdq, QuantFormat::kQdq);
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->quantized_layers, 2u);

  // The file is QDQ: float Conv and Gemm between DequantizeLinear and QuantizeLinear.
  onnx::ModelProto proto;
  ASSERT_TRUE(proto.ParseFromString(*ReadFile(qdq)));
  std::map<std::string, int> file_ops;
  for (const auto& n : proto.graph().node()) ++file_ops[n.op_type()];
  EXPECT_EQ(file_ops["Conv"], 1);
  EXPECT_EQ(file_ops["Gemm"], 1);
  EXPECT_EQ(file_ops["QLinearConv"], 0);
  EXPECT_GE(file_ops["DequantizeLinear"], 5);  // input, weights and bias of each layer

  // The fast backend runs it on QLinearConv: no float layer, no Q/DQ between the layers.
  const std::string bytes = *ReadFile(qdq);
  Model fused = LoadAs(bytes, Backend::kFast);
  auto ops = OpCounts(fused);
  EXPECT_EQ(ops["QLinearConv"], 2);
  EXPECT_EQ(ops["Conv"], 0);
  EXPECT_EQ(ops["Gemm"], 0);
  EXPECT_EQ(ops["Relu"], 0);
  EXPECT_EQ(ops["QuantizeLinear"], 1);    // the graph's float input
  EXPECT_EQ(ops["DequantizeLinear"], 1);  // before the float Softmax
  const auto& ps = fused.qdq_patterns();
  for (const char* op : {"Conv", "Gemm"}) {
    const QdqPattern* p = Find(ps, op);
    ASSERT_NE(p, nullptr) << op;
    EXPECT_EQ(p->fused_into, "QLinearConv") << op << ": " << p->reason;
  }
  for (const char* op : {"MaxPool", "Flatten"}) {
    const QdqPattern* p = Find(ps, op);
    ASSERT_NE(p, nullptr) << op;
    EXPECT_EQ(p->fused_into, op) << p->reason;
  }
  const QdqPattern* softmax = Find(ps, "Softmax");
  ASSERT_NE(softmax, nullptr);
  EXPECT_TRUE(softmax->fused_into.empty());
  EXPECT_NE(softmax->reason.find("no integer kernel"), std::string::npos) << softmax->reason;
  // The float weights behind the DequantizeLinear nodes are not kept.
  Model qoperator = LoadAs(*ReadFile(qop), Backend::kFast);
  EXPECT_LE(fused.ParameterBytes(), qoperator.ParameterBytes() + 64);

  // Same kernels, same parameters: the same outputs as the QOperator file, bit for bit.
  auto x = Random(8 * 3 * 12 * 12, 77);
  const Shape shape{8, 3, 12, 12};
  auto got = Output(fused, x, shape), want = Output(qoperator, x, shape);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], want[i]) << i;

  // The reference backend runs the file as written, in float between Q and DQ.
  Model reference = LoadAs(bytes, Backend::kReference);
  EXPECT_EQ(OpCounts(reference)["Conv"], 1);
  auto ref = Output(reference, x, shape);
  ASSERT_EQ(ref.size(), got.size());
  double max_ref = 0;
  for (size_t i = 0; i < got.size(); ++i)
    max_ref = std::max(max_ref, static_cast<double>(std::fabs(ref[i] - got[i])));
  EXPECT_LT(max_ref, 0.02);

  // ONNX Runtime runs the same QDQ file (fusing it its own way) and agrees.
  auto ort = RunOnnxRuntime(qdq, x, "8,3,12,12", "prob", dir);
  ASSERT_EQ(ort.size(), got.size());
  double max_ort = 0;
  for (size_t i = 0; i < got.size(); ++i)
    max_ort = std::max(max_ort, static_cast<double>(std::fabs(ort[i] - got[i])));
  EXPECT_LT(max_ort, 0.02);
  std::printf("QDQ: max |reference float path - fused| = %.2g, max |onnxruntime - fused| = %.2g\n",
              max_ref, max_ort);
  fs::remove_all(dir);
}

// x -> Conv -> Clip(0, 6) -> y: a MobileNet layer with its Relu6.
std::string ConvRelu6Net() {
  TestGraph t(13);
  t.Input("x", {-1, 3, 8, 8});
  t.Floats("w", {4, 3, 3, 3}, Random(4 * 27, 31));
  t.Floats("b", {4}, Random(4, 32));
  TestGraph::IntsAttr(t.Node("Conv", {"x", "w", "b"}, {"c"}), "pads", {1, 1, 1, 1});
  t.Floats("zero", {}, {0.0f});
  t.Floats("six", {}, {6.0f});
  t.Node("Clip", {"c", "zero", "six"}, {"y"});
  t.Output("y");
  return t.Bytes();
}

TEST(Qdq, TheQuantizerFoldsReluSixInBothForms) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("edgeloop_relu6_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string fp32 = (dir / "m.onnx").string(), qop = (dir / "qop.onnx").string(),
                    qdq = (dir / "qdq.onnx").string();
  ASSERT_TRUE(WriteFileAtomic(fp32, ConvRelu6Net()).ok());
  OwnedTensor calib;
  calib.dtype = DType::kFloat32;
  calib.shape = {8, 3, 8, 8};
  auto v = Random(8 * 3 * 64, 33);
  for (auto& f : v) f *= 4;  // outputs well beyond 6 and below 0: the Clip matters
  calib.bytes.assign(reinterpret_cast<unsigned char*>(v.data()),
                     reinterpret_cast<unsigned char*>(v.data() + v.size()));
  std::vector<OwnedTensor> batches;
  batches.push_back(calib);
  ASSERT_TRUE(QuantizeModel(fp32, batches, qop).ok());
  ASSERT_TRUE(QuantizeModel(fp32, batches, qdq, QuantFormat::kQdq).ok());
  Model a = LoadAs(*ReadFile(qop), Backend::kFast), b = LoadAs(*ReadFile(qdq), Backend::kFast);
  EXPECT_EQ(OpCounts(a)["Clip"], 0);
  EXPECT_EQ(OpCounts(a)["QLinearConv"], 1);
  EXPECT_EQ(OpCounts(b)["Clip"], 0);
  EXPECT_EQ(OpCounts(b)["QLinearConv"], 1);
  Model f = LoadAs(ConvRelu6Net(), Backend::kFast);
  const Shape shape{8, 3, 8, 8};
  auto want = Output(f, v, shape), got_a = Output(a, v, shape), got_b = Output(b, v, shape);
  // The float model's Relu6 is folded into its Conv too, and gives what the graph says.
  EXPECT_EQ(OpCounts(f)["Clip"], 0);
  Model fr = LoadAs(ConvRelu6Net(), Backend::kReference);
  EXPECT_EQ(OpCounts(fr)["Clip"], 1);
  auto want_ref = Output(fr, v, shape);
  ASSERT_EQ(want_ref.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(want[i], want_ref[i], 1e-5) << i;
  ASSERT_EQ(got_a.size(), want.size());
  ASSERT_EQ(got_b.size(), want.size());
  float lo = 0, hi = 0;
  double err = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got_a[i], got_b[i]) << i;
    // Input, weight and output rounding: a few steps of 16/255 at most, far less on average.
    EXPECT_NEAR(got_a[i], want[i], 0.3f) << i;
    err += std::fabs(got_a[i] - want[i]);
    lo = std::min(lo, got_a[i]);
    hi = std::max(hi, got_a[i]);
  }
  EXPECT_LT(err / static_cast<double>(want.size()), 0.05);
  EXPECT_GE(lo, 0.0f);
  EXPECT_LE(hi, 6.0f + 1e-5f);
  EXPECT_GT(hi, 5.5f);  // the clamp at 6 was reached
  fs::remove_all(dir);
}

// x -> Conv -> Relu -> Conv -> Add(x) -> Relu -> y: a residual block.
std::string ResidualNet() {
  TestGraph t(13);
  t.Input("x", {-1, 4, 6, 6});
  t.Floats("w1", {4, 4, 3, 3}, Random(4 * 36, 51));
  t.Floats("w2", {4, 4, 3, 3}, Random(4 * 36, 52));
  t.Floats("b1", {4}, Random(4, 53));
  t.Floats("b2", {4}, Random(4, 54));
  TestGraph::IntsAttr(t.Node("Conv", {"x", "w1", "b1"}, {"c1"}), "pads", {1, 1, 1, 1});
  t.Node("Relu", {"c1"}, {"r1"});
  TestGraph::IntsAttr(t.Node("Conv", {"r1", "w2", "b2"}, {"c2"}), "pads", {1, 1, 1, 1});
  t.Node("Add", {"c2", "x"}, {"s"});
  t.Node("Relu", {"s"}, {"y"});
  t.Output("y");
  return t.Bytes();
}

TEST(Qdq, ResidualAddsStayInt8AndFuseIntoQLinearAdd) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("edgeloop_res_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string fp32 = (dir / "m.onnx").string(), qop = (dir / "qop.onnx").string(),
                    qdq = (dir / "qdq.onnx").string();
  ASSERT_TRUE(WriteFileAtomic(fp32, ResidualNet()).ok());
  OwnedTensor calib;
  calib.dtype = DType::kFloat32;
  calib.shape = {16, 4, 6, 6};
  auto v = Random(16 * 4 * 36, 55);
  calib.bytes.assign(reinterpret_cast<unsigned char*>(v.data()),
                     reinterpret_cast<unsigned char*>(v.data() + v.size()));
  ASSERT_TRUE(QuantizeModel(fp32, {calib}, qop).ok());
  ASSERT_TRUE(QuantizeModel(fp32, {calib}, qdq, QuantFormat::kQdq).ok());
  const Shape shape{16, 4, 6, 6};
  Model f = LoadAs(ResidualNet(), Backend::kFast);
  const auto want = Output(f, v, shape);
  for (const std::string& file : {qop, qdq}) {
    const std::string bytes = *ReadFile(file);
    Model fused = LoadAs(bytes, Backend::kFast), ref = LoadAs(bytes, Backend::kReference);
    auto ops = OpCounts(fused);
    EXPECT_EQ(ops["QLinearAdd"], 1) << file;
    EXPECT_EQ(ops["Add"], 0) << file;
    EXPECT_EQ(ops["Relu"], 0) << file;
    EXPECT_EQ(OpCounts(ref)["Add"], 1) << file;
    const QdqPattern* add = Find(fused.qdq_patterns(), "Add");
    ASSERT_NE(add, nullptr);
    EXPECT_EQ(add->fused_into, "QLinearAdd") << add->reason;
    // The fused add does the float path's arithmetic: the same values, exactly.
    auto got = Output(fused, v, shape), got_ref = Output(ref, v, shape);
    ASSERT_EQ(got.size(), want.size());
    ASSERT_EQ(got_ref.size(), want.size());
    double err = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i], got_ref[i]) << file << " " << i;
      err += std::fabs(got[i] - want[i]);
    }
    EXPECT_LT(err / static_cast<double>(got.size()), 0.05) << file;
  }
  // ONNX Runtime runs the QDQ file (its own fusion) and agrees within a rounding step.
  auto ort = RunOnnxRuntime(qdq, v, "16,4,6,6", "y", dir);
  Model fused = LoadAs(*ReadFile(qdq), Backend::kFast);
  auto got = Output(fused, v, shape);
  ASSERT_EQ(ort.size(), got.size());
  double max_ort = 0;
  for (size_t i = 0; i < got.size(); ++i)
    max_ort = std::max(max_ort, static_cast<double>(std::fabs(ort[i] - got[i])));
  EXPECT_LT(max_ort, 0.1);
  fs::remove_all(dir);
}

// PyTorch-style QAT export: float weights behind QuantizeLinear -> DequantizeLinear, int8
// activations, a Relu6 (Clip 0..6) implied by the output's range, a Reshape between equal
// parameters, and a batched MatMul with per-column weight scales.
std::string FakeQuantNet() {
  TestGraph t(13);
  t.Input("x", {2, 4, 6, 6});
  t.Floats("xs", {}, {0.02f});
  t.Typed<int8_t>("xz", {}, onnx::TensorProto::INT8, {0});
  t.Node("QuantizeLinear", {"x", "xs", "xz"}, {"xq"});
  t.Node("DequantizeLinear", {"xq", "xs", "xz"}, {"xf"});
  auto w = Random(5 * 4 * 9, 11);
  t.Floats("w", {5, 4, 3, 3}, w);
  std::vector<float> ws(5);
  for (size_t c = 0; c < 5; ++c) {
    float mx = 0;
    for (size_t i = 0; i < 36; ++i) mx = std::max(mx, std::fabs(w[c * 36 + i]));
    ws[c] = mx / 127.0f;
  }
  t.Floats("ws", {5}, ws);
  t.Typed<int8_t>("wz", {5}, onnx::TensorProto::INT8, {0, 0, 0, 0, 0});
  TestGraph::IntAttr(t.Node("QuantizeLinear", {"w", "ws", "wz"}, {"wq"}), "axis", 0);
  TestGraph::IntAttr(t.Node("DequantizeLinear", {"wq", "ws", "wz"}, {"wf"}), "axis", 0);
  t.Floats("b", {5}, Random(5, 12));
  TestGraph::IntsAttr(t.Node("Conv", {"xf", "wf", "b"}, {"c"}), "pads", {1, 1, 1, 1});
  t.Floats("zero", {}, {0.0f});
  t.Floats("six", {}, {6.0f});
  t.Node("Clip", {"c", "zero", "six"}, {"r"});
  t.Floats("ys", {}, {6.0f / 255.0f});
  t.Typed<int8_t>("yz", {}, onnx::TensorProto::INT8, {-128});
  t.Node("QuantizeLinear", {"r", "ys", "yz"}, {"rq"});
  t.Node("DequantizeLinear", {"rq", "ys", "yz"}, {"rf"});
  t.Ints("shape", {3}, {2, 5, 36});
  t.Node("Reshape", {"rf", "shape"}, {"rs"});
  t.Node("QuantizeLinear", {"rs", "ys", "yz"}, {"rsq"});
  t.Node("DequantizeLinear", {"rsq", "ys", "yz"}, {"rsf"});
  std::vector<int8_t> bq(36 * 7);
  auto noise = Random(bq.size(), 13);
  for (size_t i = 0; i < bq.size(); ++i)
    bq[i] = static_cast<int8_t>(std::clamp(std::nearbyint(noise[i] * 120), -127.0f, 127.0f));
  t.Typed<int8_t>("B", {36, 7}, onnx::TensorProto::INT8, bq);
  t.Floats("bs", {7}, {0.004f, 0.005f, 0.006f, 0.007f, 0.008f, 0.009f, 0.010f});
  t.Typed<int8_t>("bz", {7}, onnx::TensorProto::INT8, std::vector<int8_t>(7, 0));
  TestGraph::IntAttr(t.Node("DequantizeLinear", {"B", "bs", "bz"}, {"Bf"}), "axis", 1);
  t.Node("MatMul", {"rsf", "Bf"}, {"mm"});
  t.Floats("os", {}, {0.05f});
  t.Typed<uint8_t>("oz", {}, onnx::TensorProto::UINT8, {128});
  t.Node("QuantizeLinear", {"mm", "os", "oz"}, {"mq"});
  t.Node("DequantizeLinear", {"mq", "os", "oz"}, {"y"});
  t.Output("y");
  return t.Bytes();
}

TEST(Qdq, FakeQuantizedWeightsReluSixAndBatchedMatMulFuseAndMatchTheFloatPath) {
  const std::string bytes = FakeQuantNet();
  Model fused = LoadAs(bytes, Backend::kFast);
  auto ops = OpCounts(fused);
  EXPECT_EQ(ops["QLinearConv"], 2);  // the Conv, and the MatMul as a 1x1 QLinearConv
  EXPECT_EQ(ops["Conv"], 0);
  EXPECT_EQ(ops["MatMul"], 0);
  EXPECT_EQ(ops["Clip"], 0);
  EXPECT_EQ(ops["QuantizeLinear"], 1);
  EXPECT_EQ(ops["DequantizeLinear"], 1);
  for (const auto& p : fused.qdq_patterns())
    EXPECT_FALSE(p.fused_into.empty()) << p.op_type << " '" << p.node << "': " << p.reason;
  ASSERT_EQ(fused.qdq_patterns().size(), 3u);

  Model reference = LoadAs(bytes, Backend::kReference);
  EXPECT_EQ(OpCounts(reference)["MatMul"], 1);
  const Shape shape{2, 4, 6, 6};
  auto x = Random(2 * 4 * 36, 14);
  auto got = Output(fused, x, shape), want = Output(reference, x, shape);
  ASSERT_EQ(got.size(), 2u * 5 * 7);
  ASSERT_EQ(want.size(), got.size());
  // Integer accumulation against float arithmetic: equal but for a rounding tie now and then.
  size_t same = 0;
  double max_diff = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    same += got[i] == want[i];
    max_diff = std::max(max_diff, static_cast<double>(std::fabs(got[i] - want[i])));
  }
  EXPECT_GE(same, got.size() * 9 / 10);
  EXPECT_LE(max_diff, 2 * 0.05 + 1e-6);
  // The outputs are not trivially saturated or constant.
  double spread = 0;
  for (float v : want) spread = std::max(spread, static_cast<double>(std::fabs(v)));
  EXPECT_GT(spread, 0.5);
}

// Three patterns that must not fuse: a Relu the output's zero point does not imply, a MaxPool
// whose output is quantized differently from its input, and a Conv with float weights. They
// run in float, as written, and the report says why.
std::string UnfusableNet() {
  TestGraph t(13);
  t.Input("x", {1, 2, 4, 4});
  t.Floats("xs", {}, {0.05f});
  t.Typed<uint8_t>("xz", {}, onnx::TensorProto::UINT8, {10});
  t.Node("QuantizeLinear", {"x", "xs", "xz"}, {"xq"});
  t.Node("DequantizeLinear", {"xq", "xs", "xz"}, {"xf"});
  std::vector<int8_t> wq(3 * 2 * 9);
  auto noise = Random(wq.size(), 21);
  for (size_t i = 0; i < wq.size(); ++i)
    wq[i] = static_cast<int8_t>(std::clamp(std::nearbyint(noise[i] * 100), -127.0f, 127.0f));
  t.Typed<int8_t>("wq", {3, 2, 3, 3}, onnx::TensorProto::INT8, wq);
  t.Floats("ws", {}, {0.01f});
  t.Typed<int8_t>("wz", {}, onnx::TensorProto::INT8, {0});
  t.Node("DequantizeLinear", {"wq", "ws", "wz"}, {"wf"});
  t.Node("Conv", {"xf", "wf"}, {"c"});
  t.Node("Relu", {"c"}, {"r"});
  t.Floats("ys", {}, {0.02f});
  t.Typed<uint8_t>("yz", {}, onnx::TensorProto::UINT8, {20});
  t.Node("QuantizeLinear", {"r", "ys", "yz"}, {"rq"});
  t.Node("DequantizeLinear", {"rq", "ys", "yz"}, {"y1"});
  auto* pool = t.Node("MaxPool", {"xf"}, {"p"});
  TestGraph::IntsAttr(pool, "kernel_shape", {2, 2});
  t.Floats("ps", {}, {0.07f});
  t.Node("QuantizeLinear", {"p", "ps", "xz"}, {"pq"});
  t.Node("DequantizeLinear", {"pq", "ps", "xz"}, {"y2"});
  t.Floats("w2", {1, 2, 1, 1}, {0.5f, -0.25f});
  t.Node("Conv", {"xf", "w2"}, {"y3"});
  t.Output("y1");
  t.Output("y2");
  t.Output("y3");
  return t.Bytes();
}

TEST(Qdq, PatternsThatCannotFuseRunInFloatAndSayWhy) {
  const std::string bytes = UnfusableNet();
  Model fast = LoadAs(bytes, Backend::kFast);
  const auto& ps = fast.qdq_patterns();
  ASSERT_EQ(ps.size(), 3u);
  std::map<std::string, std::string> why;
  for (const auto& p : ps) {
    EXPECT_TRUE(p.fused_into.empty()) << p.node;
    why[p.node] = p.reason;
  }
  EXPECT_NE(why["Conv_c"].find("Relu is not implied"), std::string::npos) << why["Conv_c"];
  EXPECT_NE(why["MaxPool_p"].find("quantized differently"), std::string::npos) << why["MaxPool_p"];
  EXPECT_NE(why["Conv_y3"].find("weights are float"), std::string::npos) << why["Conv_y3"];
  auto ops = OpCounts(fast);
  EXPECT_EQ(ops["Conv"], 2);
  EXPECT_EQ(ops["MaxPool"], 1);
  EXPECT_EQ(ops["QLinearConv"], 0);

  // Run in float, they give what the reference backend gives.
  Model reference = LoadAs(bytes, Backend::kReference);
  auto x = Random(32, 22);
  auto in = Tensor{DType::kFloat32, {1, 2, 4, 4}, x.data()};
  auto a = fast.Run({in});
  auto b = reference.Run({in});
  ASSERT_TRUE(a.ok()) << a.error().message;
  ASSERT_TRUE(b.ok()) << b.error().message;
  ASSERT_EQ(a->size(), 3u);
  for (size_t o = 0; o < 3; ++o) {
    ASSERT_EQ((*a)[o].shape, (*b)[o].shape);
    for (int64_t i = 0; i < NumElements((*a)[o].shape); ++i)
      EXPECT_NEAR((*a)[o].as<float>()[i], (*b)[o].as<float>()[i], 0.021) << o << ":" << i;
  }
}

// The fuzzer's QDQ seeds (src/runtime/fuzz/seeds/) are these graphs: with
// EDGELOOP_WRITE_FUZZ_SEEDS=DIR this writes them there. Either way they must load.
TEST(Qdq, FuzzSeedGraphsLoad) {
  const std::vector<std::pair<std::string, std::string>> seeds = {
      {"qdq-fake-quant.onnx", FakeQuantNet()},
      {"qdq-unfusable.onnx", UnfusableNet()},
      {"relu6.onnx", ConvRelu6Net()}};
  const char* dir = std::getenv("EDGELOOP_WRITE_FUZZ_SEEDS");
  for (const auto& [name, bytes] : seeds) {
    EXPECT_TRUE(Model::LoadFromBytes(bytes, name).ok()) << name;
    if (dir) {
      ASSERT_TRUE(WriteFileAtomic(std::string(dir) + "/" + name, bytes).ok());
    }
  }
}

}  // namespace
}  // namespace edgeloop::runtime
