// The ONNX importer: imported graphs compute what the edge runtime and ONNX's reference
// outputs say they compute, edgeloop's own exports come back as the models they were, bad
// files get one-line errors, and imported models fine-tune and export again.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include "common/file.hpp"
#include "ml/export_onnx.hpp"
#include "ml/finetune.hpp"
#include "ml/onnx_import.hpp"
#include "ml/onnx_import_block.hpp"
#include "ml/train.hpp"
#include "runtime/model.hpp"
#include "runtime/onnx_loader.hpp"

namespace edgeloop::ml {
namespace fs = std::filesystem;

namespace {

using onnx_import::Dims;

const char* kPytorchConverted = "/usr/share/libonnx-testdata/data/pytorch-converted";

torch::Tensor ToTorch(const runtime::OwnedTensor& t) {
  EXPECT_EQ(t.dtype, runtime::DType::kFloat32);
  return torch::from_blob(const_cast<float*>(t.as<float>()), t.shape, torch::kFloat32).clone();
}

// The edge runtime's output `index` on x, from the same file bytes.
Result<torch::Tensor> RunEdgeRuntime(const std::string& bytes, const torch::Tensor& x,
                                     size_t index = 0,
                                     runtime::Backend backend = runtime::Backend::kReference) {
  runtime::ModelOptions mo;
  mo.backend = backend;
  EDGELOOP_ASSIGN_OR_RETURN(auto model, runtime::Model::LoadFromBytes(bytes, "test", mo));
  auto in = x.contiguous();
  EDGELOOP_ASSIGN_OR_RETURN(auto out,
                            model.Run({runtime::Tensor{runtime::DType::kFloat32, in.sizes().vec(),
                                                       in.data_ptr<float>()}}));
  if (out.size() <= index) return Error(Errc::kInternal, "the runtime gave too few outputs");
  return ToTorch(out[index]);
}

double MaxDiff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

// A tiny trained cnn, so batch-norm statistics and weights are away from their initial values.
LoadedModel TrainedCnn(const data::Dataset& train) {
  ModelSpec spec;
  spec.input_shape = {1, 28, 28};
  spec.widths = {8, 16};
  spec.embed = 32;
  spec.input_mean = {0.286f};
  spec.input_std = {0.353f};
  SeedEverything(0);
  LoadedModel m{ModelInfo{}, Classifier(spec)};
  m.info.name = "tiny";
  m.info.version = "3";
  m.info.spec = spec;
  m.info.class_names = train.class_names;
  TrainOptions o;
  o.epochs = 1;
  o.quiet = true;
  o.threads = 1;
  o.min_epoch_samples = 256;
  EXPECT_TRUE(Train(m.model, train, data::Dataset{}, o).ok());
  m.model->eval();
  return m;
}

// A model written op by op: one float input [N, dims...] named "x", one output.
class TestModel {
 public:
  explicit TestModel(Dims dims, int opset = 13) : w_(m_.mutable_graph()) {
    m_.set_ir_version(7);
    m_.add_opset_import()->set_version(opset);
    m_.mutable_graph()->set_name("test");
    auto* tt = m_.mutable_graph()->add_input()->mutable_type()->mutable_tensor_type();
    m_.mutable_graph()->mutable_input(0)->set_name("x");
    tt->set_elem_type(onnx::TensorProto::FLOAT);
    tt->mutable_shape()->add_dim()->set_dim_param("N");
    for (int64_t d : dims) tt->mutable_shape()->add_dim()->set_dim_value(d);
  }
  OnnxGraphWriter& w() { return w_; }
  std::string Bytes(const std::string& output) {
    auto* out = m_.mutable_graph()->add_output();
    out->set_name(output);
    out->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
    std::string s;
    EXPECT_TRUE(m_.SerializeToString(&s));
    return s;
  }
  onnx::ModelProto& proto() { return m_; }

 private:
  onnx::ModelProto m_;
  OnnxGraphWriter w_;
};

class OnnxImportTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto train = data::LoadDataset("fashion-mnist:train");
    auto test = data::LoadDataset("fashion-mnist:test");
    ASSERT_TRUE(train.ok() && test.ok());
    train_ = new data::Dataset(data::SamplePerClass(*train, 30, 1));
    std::vector<size_t> idx(100);
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = i * 97;
    images_ = new data::Dataset(test->Subset(idx));
    cnn_ = new LoadedModel(TrainedCnn(*train_));
    auto bytes = ExportOnnx(*cnn_);
    ASSERT_TRUE(bytes.ok()) << bytes.error().message;
    export_ = new std::string(*bytes);
  }
  static void TearDownTestSuite() {
    delete train_;
    delete images_;
    delete cnn_;
    delete export_;
  }
  static torch::Tensor Images() { return ToInputTensor(*images_); }

  static data::Dataset* train_;
  static data::Dataset* images_;
  static LoadedModel* cnn_;
  static std::string* export_;
};
data::Dataset* OnnxImportTest::train_ = nullptr;
data::Dataset* OnnxImportTest::images_ = nullptr;
LoadedModel* OnnxImportTest::cnn_ = nullptr;
std::string* OnnxImportTest::export_ = nullptr;

}  // namespace

TEST_F(OnnxImportTest, EdgeloopExportImportsAsAGraphThatMatchesTheRuntimeAndLibtorch) {
  auto start = std::chrono::steady_clock::now();
  auto m = onnx_import::ImportGraphModule(*export_, "tiny.onnx");
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(m.ok()) << m.error().message;
  // Sub/Div normalization and the conv blocks come apart at the single-tensor cut points.
  EXPECT_GE((*m)->blocks()->size(), 3u);
  torch::NoGradGuard no_grad;
  (*m)->eval();
  auto x = Images();
  auto got = (*m)->forward(x);
  auto want = cnn_->model->forward(x);
  auto rt = RunEdgeRuntime(*export_, x);
  ASSERT_TRUE(rt.ok()) << rt.error().message;
  ASSERT_EQ(got.sizes(), rt->sizes());
  double vs_runtime = MaxDiff(got, *rt), vs_libtorch = MaxDiff(got, want);
  EXPECT_LT(vs_runtime, 1e-4);
  EXPECT_LT(vs_libtorch, 1e-4);
  std::printf(
      "edgeloop export (%zu bytes): import %.1f ms, max |import - runtime| = %.3g, "
      "max |import - original| = %.3g over 100 images\n",
      export_->size(), ms, vs_runtime, vs_libtorch);
}

TEST(OnnxImport, UnsupportedOpIsOneLineErrorNamingTheOpAndTheNode) {
  TestModel t({4});
  t.w().Node("Relu", {"x"}, "r");
  t.w().Node("Foo", {"r"}, "y")->set_name("conv_7");
  auto m = onnx_import::ImportGraphModule(t.Bytes("y"), "model.onnx");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, Errc::kUnsupported);
  EXPECT_EQ(m.error().message, "model.onnx: node 'conv_7' (Foo): op not supported by the importer");
}

// Truncated files, absurd shapes and sizes, broken references: errors, never a crash or a
// huge allocation.
TEST_F(OnnxImportTest, HostileFilesGetErrorsNotCrashes) {
  for (size_t cut : {size_t{0}, size_t{1}, size_t{7}, export_->size() / 3, export_->size() / 2,
                     export_->size() - 1}) {
    auto m = onnx_import::ImportGraphModule(std::string_view(*export_).substr(0, cut), "cut.onnx");
    EXPECT_FALSE(m.ok()) << "truncated at " << cut;
    if (!m.ok()) {
      EXPECT_EQ(m.error().message.find('\n'), std::string::npos);
    }
  }
  std::vector<std::pair<std::string, std::string>> cases;
  {  // an initializer claiming 2^60 elements with no data
    TestModel t({4});
    auto* init = t.proto().mutable_graph()->add_initializer();
    init->set_name("w");
    init->set_data_type(onnx::TensorProto::FLOAT);
    for (int i = 0; i < 3; ++i) init->add_dims(int64_t{1} << 20);
    t.w().Node("MatMul", {"x", "w"}, "y");
    cases.emplace_back("huge initializer", t.Bytes("y"));
  }
  {  // an initializer whose data does not fill its shape
    TestModel t({4});
    auto* init = t.proto().mutable_graph()->add_initializer();
    init->set_name("w");
    init->set_data_type(onnx::TensorProto::FLOAT);
    init->add_dims(4);
    init->add_dims(3);
    init->set_raw_data(std::string(8, '\0'));
    t.w().Node("MatMul", {"x", "w"}, "y");
    cases.emplace_back("short initializer", t.Bytes("y"));
  }
  {  // an input of 10^15 elements per sample
    TestModel t({100000, 100000, 100000});
    t.w().Node("Relu", {"x"}, "y");
    cases.emplace_back("huge input", t.Bytes("y"));
  }
  {  // negative and zero dimensions
    TestModel t({3, -5});
    t.w().Node("Relu", {"x"}, "y");
    cases.emplace_back("negative input dim", t.Bytes("y"));
  }
  {  // pads that would make a 2^40-element output
    TestModel t({1, 8, 8});
    t.w().Initializer("w", torch::ones({1, 1, 1, 1}));
    auto* n = t.w().Node("Conv", {"x", "w"}, "y");
    OnnxGraphWriter::IntsAttr(n, "pads", {1 << 20, 1 << 20, 1 << 20, 1 << 20});
    cases.emplace_back("huge pads", t.Bytes("y"));
  }
  {  // a reference to a value defined later
    TestModel t({4});
    t.w().Node("Relu", {"later"}, "y");
    t.w().Node("Relu", {"x"}, "later");
    cases.emplace_back("forward reference", t.Bytes("y"));
  }
  {  // Concat doubling its input 40 times
    TestModel t({4});
    std::string v = "x";
    for (int i = 0; i < 40; ++i) {
      std::string next = "c" + std::to_string(i);
      OnnxGraphWriter::IntAttr(t.w().Node("Concat", {v, v}, next), "axis", 1);
      v = next;
    }
    cases.emplace_back("concat doubling", t.Bytes(v));
  }
  {  // weights of the wrong shape for the input
    TestModel t({3, 8, 8});
    t.w().Initializer("w", torch::ones({4, 2, 3, 3}));
    t.w().Node("Conv", {"x", "w"}, "y");
    cases.emplace_back("conv channel mismatch", t.Bytes("y"));
  }
  {  // 3000 values of 4 MiB each: every one within the limits, together 12 GiB per sample
    TestModel t({1 << 20});
    std::string v = "x";
    for (int i = 0; i < 3000; ++i) {
      std::string next = "r" + std::to_string(i);
      t.w().Node("Relu", {v}, next);
      v = next;
    }
    cases.emplace_back("many large values", t.Bytes(v));
  }
  cases.emplace_back("random bytes", std::string(4096, '\xff'));
  for (const auto& [what, bytes] : cases) {
    auto m = onnx_import::ImportGraphModule(bytes, "bad.onnx");
    ASSERT_FALSE(m.ok()) << what;
    EXPECT_EQ(m.error().message.rfind("bad.onnx: ", 0), 0u) << what << ": " << m.error().message;
    EXPECT_EQ(m.error().message.find('\n'), std::string::npos) << what;
    std::printf("%-22s %s\n", what.c_str(), m.error().message.c_str());
  }
}

// Writes the module's blocks into a new model (as a Classifier's export does) and returns it.
std::string ReExport(onnx_import::GraphModule& m, const Dims& dims) {
  TestModel again(dims);
  std::string v = "x";
  for (size_t i = 0; i < m->blocks()->size(); ++i) {
    auto block = std::dynamic_pointer_cast<BlockImpl>(m->blocks()->ptr(i));
    auto out = block->ExportOnnx(again.w(), v, "block" + std::to_string(i));
    EXPECT_TRUE(out.ok()) << out.error().message;
    if (!out.ok()) return "";
    v = *out;
  }
  return again.Bytes(v);
}

// A long graph that never narrows to one tensor (the input is read by every layer) stays one
// block, and planning it takes linear time: 20000 weighted layers import in well under 10 s.
TEST(OnnxImport, LongGraphWithoutCutPointsImportsQuickly) {
  TestModel t({8});
  t.w().Initializer("w", torch::eye(8) * 0.5);
  std::string v = "x";
  for (int i = 0; i < 10000; ++i) {
    std::string m = "m" + std::to_string(i), a = "a" + std::to_string(i);
    t.w().Node("MatMul", {v, "w"}, m);
    t.w().Node("Add", {m, "x"}, a);
    v = a;
  }
  std::string bytes = t.Bytes(v);
  auto start = std::chrono::steady_clock::now();
  auto m = onnx_import::ImportGraphModule(bytes, "long.onnx");
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ((*m)->blocks()->size(), 1u);
  EXPECT_LT(s, 10.0);
  torch::NoGradGuard no_grad;
  auto x = torch::ones({2, 8});
  // Each layer halves, then adds the input: the fixed point is 2.
  EXPECT_LT(MaxDiff((*m)->forward(x), torch::full({2, 8}, 2.0)), 1e-5);
}

// Imported batch norm is a layer that trains: in train mode it normalizes with the batch's
// statistics and moves its running statistics (buffers) by ONNX's momentum; in eval mode it
// uses the running ones, as the file does. Scale and bias are parameters, mean and var are not.
TEST(OnnxImport, BatchNormTrainsInTrainModeAndUsesRunningStatsInEval) {
  TestModel t({3, 4, 4});
  t.w().Initializer("scale", torch::full({3}, 2.0));
  t.w().Initializer("bias", torch::full({3}, 0.5));
  t.w().Initializer("mean", torch::zeros({3}));
  t.w().Initializer("var", torch::ones({3}));
  auto* bn = t.w().Node("BatchNormalization", {"x", "scale", "bias", "mean", "var"}, "y");
  OnnxGraphWriter::FloatAttr(bn, "momentum", 0.75f);
  auto m = onnx_import::ImportGraphModule(t.Bytes("y"), "bn.onnx");
  ASSERT_TRUE(m.ok()) << m.error().message;
  std::set<std::string> params, buffers;
  for (const auto& kv : (*m)->named_parameters()) params.insert(kv.key());
  for (const auto& kv : (*m)->named_buffers()) buffers.insert(kv.key());
  EXPECT_EQ(params, (std::set<std::string>{"blocks.0.scale", "blocks.0.bias"}));
  EXPECT_EQ(buffers, (std::set<std::string>{"blocks.0.mean", "blocks.0.var"}));

  auto x = torch::randn({16, 3, 4, 4}) * 3 + 5;
  (*m)->train();
  auto y = (*m)->forward(x);
  // Batch statistics: each channel comes out with mean 0.5 and std 2.
  EXPECT_LT((y.mean({0, 2, 3}) - 0.5).abs().max().item<double>(), 1e-4);
  auto running = (*m)->named_buffers()["blocks.0.mean"];
  auto want = 0.25 * x.mean({0, 2, 3});  // 0.75 * old (0) + 0.25 * batch mean
  EXPECT_LT(MaxDiff(running, want), 1e-4);
  // The gradient reaches scale and bias.
  y.sum().backward();
  EXPECT_TRUE((*m)->named_parameters()["blocks.0.bias"].grad().defined());

  (*m)->eval();
  torch::NoGradGuard no_grad;
  auto var = (*m)->named_buffers()["blocks.0.var"];
  auto e = (*m)->forward(x);
  auto expect =
      (x - running.view({1, 3, 1, 1})) / torch::sqrt(var.view({1, 3, 1, 1}) + 1e-5) * 2 + 0.5;
  EXPECT_LT(MaxDiff(e, expect), 1e-4);
}

// Ops the conformance data leaves out (Reshape with 0 and -1, a branch joined by Add and
// Concat, Transpose, Clip bounds as inputs, asymmetric pads, ceil_mode, Gemm attributes) in
// one graph: the import matches the edge runtime on the file, and again on the import's own
// re-export, which is cut into blocks only where one tensor is live.
TEST(OnnxImport, MixedGraphMatchesTheRuntimeAndReExportsItself) {
  torch::manual_seed(3);
  TestModel t({2, 6, 6}, 13);
  auto& w = t.w();
  w.Initializer("w1", torch::randn({4, 2, 3, 3}) * 0.3);
  w.Initializer("b1", torch::randn({4}) * 0.1);
  auto* c1 = w.Node("Conv", {"x", "w1", "b1"}, "c1");
  OnnxGraphWriter::IntsAttr(c1, "pads", {0, 1, 1, 2});
  w.Initializer("scale", torch::rand({4}) + 0.5);
  w.Initializer("bias", torch::randn({4}) * 0.1);
  w.Initializer("mean", torch::randn({4}) * 0.1);
  w.Initializer("var", torch::rand({4}) + 0.5);
  w.Node("BatchNormalization", {"c1", "scale", "bias", "mean", "var"}, "bn");
  w.Node("Relu", {"bn"}, "hs");
  // Two branches from hs, joined: one block covers both.
  w.Node("Sigmoid", {"hs"}, "gate");
  w.Node("Mul", {"hs", "gate"}, "gated");
  w.Initializer("lo", torch::tensor(-0.5f));
  w.Node("Clip", {"hs", "lo", ""}, "clipped");
  w.Node("Add", {"gated", "clipped"}, "joined");
  w.Node("Concat", {"joined", "hs"}, "cat")->add_attribute()->CopyFrom([] {
    onnx::AttributeProto a;
    a.set_name("axis");
    a.set_type(onnx::AttributeProto::INT);
    a.set_i(1);
    return a;
  }());
  auto* mp = w.Node("MaxPool", {"cat"}, "mp");
  OnnxGraphWriter::IntsAttr(mp, "kernel_shape", {2, 2});
  OnnxGraphWriter::IntsAttr(mp, "strides", {2, 2});
  OnnxGraphWriter::IntAttr(mp, "ceil_mode", 1);
  w.Node("Transpose", {"mp"}, "tr")->add_attribute()->CopyFrom([] {
    onnx::AttributeProto a;
    a.set_name("perm");
    a.set_type(onnx::AttributeProto::INTS);
    for (int64_t p : {0, 1, 3, 2}) a.add_ints(p);
    return a;
  }());
  w.Node("Reshape", {"tr", w.IntInitializer("shape", {1, 0, -1})}, "rs");
  w.Node("Flatten", {"rs"}, "flat");
  w.Initializer("fc", torch::randn({5, 96}) * 0.1);
  w.Initializer("fcb", torch::randn({1, 5}) * 0.1);
  auto* gemm = w.Node("Gemm", {"flat", "fc", "fcb"}, "y");
  OnnxGraphWriter::IntAttr(gemm, "transB", 1);
  OnnxGraphWriter::FloatAttr(gemm, "alpha", 0.5f);
  OnnxGraphWriter::FloatAttr(gemm, "beta", 2.0f);
  std::string bytes = t.Bytes("y");

  auto m = onnx_import::ImportGraphModule(bytes, "mixed.onnx");
  ASSERT_TRUE(m.ok()) << m.error().message;
  torch::NoGradGuard no_grad;
  (*m)->eval();
  // The file's Reshape spells the batch as 1 (as exporters tracing one sample do): the file
  // itself means that only for batch 1, the import (and its re-export) for any batch.
  auto x1 = torch::randn({1, 2, 6, 6});
  auto rt = RunEdgeRuntime(bytes, x1);
  ASSERT_TRUE(rt.ok()) << rt.error().message;
  EXPECT_LT(MaxDiff((*m)->forward(x1), *rt), 1e-4);
  auto x = torch::randn({3, 2, 6, 6});
  auto got = (*m)->forward(x);
  for (int64_t i = 0; i < 3; ++i)
    EXPECT_LT(MaxDiff(got[i], (*m)->forward(x.slice(0, i, i + 1))[0]), 1e-5);
  // conv+bn+activations+branches+pool+reshape in one block, Gemm in the next.
  EXPECT_EQ((*m)->blocks()->size(), 2u);

  // The re-export (explicit pads, Clip bounds as inputs): the runtime agrees on it too.
  auto rt2 = RunEdgeRuntime(ReExport(*m, {2, 6, 6}), x, 0, runtime::Backend::kFast);
  ASSERT_TRUE(rt2.ok()) << rt2.error().message;
  EXPECT_LT(MaxDiff(got, *rt2), 1e-4);
}

// The edge runtime has no HardSigmoid or HardSwish: their re-export (Mul, Add, Clip) runs on
// it and computes the same; an opset-6 Clip (bounds as attributes) comes back as opset 13's.
TEST(OnnxImport, HardActivationsAndOldClipReExportAsOpsTheRuntimeRuns) {
  TestModel t({3, 4, 4}, 6);
  auto& w = t.w();
  OnnxGraphWriter::FloatAttr(w.Node("HardSigmoid", {"x"}, "hsig"), "alpha", 0.3f);
  w.Node("HardSwish", {"hsig"}, "hsw");
  w.Node("Add", {"hsw", "x"}, "sum");
  auto* clip = w.Node("Clip", {"sum"}, "y");
  OnnxGraphWriter::FloatAttr(clip, "min", -0.25f);
  OnnxGraphWriter::FloatAttr(clip, "max", 0.75f);
  auto m = onnx_import::ImportGraphModule(t.Bytes("y"), "hard.onnx");
  ASSERT_TRUE(m.ok()) << m.error().message;
  torch::NoGradGuard no_grad;
  auto x = torch::randn({5, 3, 4, 4}) * 3;
  auto got = (*m)->forward(x);
  auto hsig = torch::clamp(x * 0.3 + 0.5, 0, 1);
  auto want = torch::clamp(hsig * torch::clamp(hsig / 6 + 0.5, 0, 1) + x, -0.25, 0.75);
  EXPECT_LT(MaxDiff(got, want), 1e-6);
  auto rt = RunEdgeRuntime(ReExport(*m, {3, 4, 4}), x);
  ASSERT_TRUE(rt.ok()) << rt.error().message;
  EXPECT_LT(MaxDiff(got, *rt), 1e-5);
}

std::vector<fs::path> SortedDirs(const fs::path& root) {
  std::vector<fs::path> dirs;
  EXPECT_TRUE(fs::is_directory(root)) << root;
  if (fs::is_directory(root))
    for (const auto& e : fs::directory_iterator(root)) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

std::set<std::string> ClaimedOps() {
  auto ops = onnx_import::SupportedOps();
  return {ops.begin(), ops.end()};
}

// Named tensors of a module, copied.
std::map<std::string, torch::Tensor> Snapshot(torch::nn::Module& m) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& kv : m.named_parameters()) out[kv.key()] = kv.value().detach().clone();
  for (const auto& kv : m.named_buffers()) out[kv.key()] = kv.value().detach().clone();
  return out;
}

TEST_F(OnnxImportTest, EdgeloopExportImportsAsTheClassifierItWas) {
  auto bytes = std::make_shared<const std::string>(*export_);
  auto start = std::chrono::steady_clock::now();
  auto m = ImportOnnxModelBytes(bytes, "tiny.onnx");
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->info.name, "tiny");
  EXPECT_EQ(m->info.version, "3");
  EXPECT_EQ(m->info.class_names, cnn_->info.class_names);
  EXPECT_EQ(m->info.spec.arch, "onnx");
  EXPECT_EQ(m->info.spec.input_shape, cnn_->info.spec.input_shape);
  // The export's Sub/Div became the model's normalization again, and the blocks are the cnn's:
  // two conv blocks and the embedding.
  EXPECT_EQ(m->info.spec.input_mean, cnn_->info.spec.input_mean);
  EXPECT_EQ(m->info.spec.input_std, cnn_->info.spec.input_std);
  EXPECT_EQ(m->model->num_blocks(), cnn_->model->num_blocks());
  EXPECT_EQ(m->model->embed_dim(), cnn_->model->embed_dim());
  torch::NoGradGuard no_grad;
  auto x = Images();
  auto got = m->model->forward(x);
  auto rt = RunEdgeRuntime(*export_, x);  // "logits"
  ASSERT_TRUE(rt.ok()) << rt.error().message;
  double vs_runtime = MaxDiff(got, *rt), vs_original = MaxDiff(got, cnn_->model->forward(x));
  EXPECT_LT(vs_runtime, 1e-4);
  EXPECT_LT(vs_original, 1e-4);
  std::printf(
      "classifier import of the edgeloop export: %.1f ms, max |import - runtime| = %.3g, "
      "max |import - original| = %.3g\n",
      ms, vs_runtime, vs_original);
}

// Every architecture edgeloop trains comes back from its export: mlp (features), the cnn,
// mobilenet_v2 (depthwise convolutions, ReLU6 as Clip, residual Adds) and resnet (residual
// units: the graph branches, so a unit is one block). Trained a few steps, exported, imported:
// the import matches the original and the edge runtime on the same file.
TEST_F(OnnxImportTest, EveryArchitecturesExportReimportsAndMatches) {
  for (std::string arch : {"mlp", "cnn", "mobilenet_v2", "resnet"}) {
    ModelSpec spec;
    spec.arch = arch;
    spec.input_shape = arch == "mlp" ? std::vector<int64_t>{784} : std::vector<int64_t>{1, 28, 28};
    spec.widths = arch == "mlp" ? std::vector<int64_t>{64, 32} : std::vector<int64_t>{8, 16};
    spec.embed = 32;
    spec.width_mult = 0.5;
    spec.depth = 8;
    spec.input_mean.assign(spec.input_shape[0], 0.3f);
    spec.input_std.assign(spec.input_shape[0], 0.35f);
    SeedEverything(1);
    LoadedModel m{ModelInfo{}, Classifier(spec)};
    m.info.name = arch;
    m.info.spec = spec;
    m.info.class_names = train_->class_names;
    // A few steps move the weights and batch-norm statistics off their initial values.
    data::Dataset train = data::SamplePerClass(*train_, 6, 0);
    if (arch == "mlp") train.sample_shape = {784};
    TrainOptions o;
    o.epochs = 1;
    o.batch_size = 20;
    o.quiet = true;
    o.threads = 1;
    ASSERT_TRUE(Train(m.model, train, data::Dataset{}, o).ok()) << arch;
    m.model->eval();
    auto bytes = ExportOnnx(m);
    ASSERT_TRUE(bytes.ok()) << bytes.error().message;

    auto start = std::chrono::steady_clock::now();
    auto im = ImportOnnxModelBytes(std::make_shared<const std::string>(*bytes), arch + ".onnx");
    double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    ASSERT_TRUE(im.ok()) << arch << ": " << im.error().message;
    EXPECT_EQ(im->info.spec.input_mean, spec.input_mean) << arch;
    torch::NoGradGuard no_grad;
    auto x = Images();
    if (arch == "mlp") x = x.reshape({x.size(0), 784});
    auto got = im->model->forward(x);
    auto rt = RunEdgeRuntime(*bytes, x, 0, runtime::Backend::kFast);
    ASSERT_TRUE(rt.ok()) << rt.error().message;
    double vs_runtime = MaxDiff(got, *rt), vs_original = MaxDiff(got, m.model->forward(x));
    EXPECT_LT(vs_runtime, 1e-4) << arch;
    EXPECT_LT(vs_original, 1e-4) << arch;
    EXPECT_GE(im->model->num_blocks(), 2u) << arch;
    std::printf(
        "%-13s export %7zu bytes, %3zu nodes in %2zu blocks (original %zu): import %.1f ms, "
        "max |import - runtime| %.3g, max |import - original| %.3g\n",
        arch.c_str(), bytes->size(),
        static_cast<size_t>(onnx_import::ReadGraph(*bytes, arch)->nodes.size()),
        im->model->num_blocks(), m.model->num_blocks(), ms, vs_runtime, vs_original);
  }
}

// A model from elsewhere: no metadata, a softmax after the head, global pooling before it.
std::string ForeignModel(bool matmul_head) {
  torch::manual_seed(5);
  TestModel t({1, 28, 28}, 11);
  auto& w = t.w();
  w.Initializer("conv.weight", torch::randn({6, 1, 3, 3}) * 0.3);
  w.Initializer("conv.bias", torch::randn({6}) * 0.1);
  auto* conv = w.Node("Conv", {"x", "conv.weight", "conv.bias"}, "c");
  conv->set_name("conv_1");
  OnnxGraphWriter::IntsAttr(conv, "strides", {2, 2});
  conv->add_attribute()->CopyFrom([] {
    onnx::AttributeProto a;
    a.set_name("auto_pad");
    a.set_type(onnx::AttributeProto::STRING);
    a.set_s("SAME_UPPER");
    return a;
  }());
  w.Node("Relu", {"c"}, "r");
  w.Initializer("conv2.weight", torch::randn({6, 1, 3, 3}) * 0.3);
  auto* dw = w.Node("Conv", {"r", "conv2.weight"}, "d");
  OnnxGraphWriter::IntAttr(dw, "group", 6);
  OnnxGraphWriter::IntsAttr(dw, "pads", {1, 1, 1, 1});
  w.Node("Clip",
         {"d", w.Initializer("zero", torch::tensor(0.f)), w.Initializer("six", torch::tensor(6.f))},
         "relu6");
  w.Node("GlobalAveragePool", {"relu6"}, "gap");
  w.Node("Flatten", {"gap"}, "emb");
  w.Initializer("fc.weight", torch::randn({6, 4}) * 0.5);
  w.Initializer("fc.bias", torch::randn({4}) * 0.1);
  if (matmul_head) {
    w.Node("MatMul", {"emb", "fc.weight"}, "mm")->set_name("fc");
    w.Node("Add", {"mm", "fc.bias"}, "logits");
  } else {
    auto* g = w.Node("Gemm", {"emb", "fc.weight", "fc.bias"}, "logits");
    g->set_name("fc");
    OnnxGraphWriter::FloatAttr(g, "alpha", 0.5f);
  }
  OnnxGraphWriter::IntAttr(w.Node("Softmax", {"logits"}, "prob"), "axis", 1);
  return t.Bytes("prob");
}

TEST_F(OnnxImportTest, ForeignModelHeadIsTheLastMatrixProductAndOutputsLogits) {
  for (bool matmul : {false, true}) {
    std::string file = ForeignModel(matmul);
    auto m = ImportOnnxModelBytes(std::make_shared<const std::string>(file), "/tmp/mobile.onnx");
    ASSERT_TRUE(m.ok()) << m.error().message;
    EXPECT_EQ(m->info.spec.onnx_head, "fc");
    EXPECT_EQ(m->info.name, "test");  // the graph's name
    EXPECT_EQ(m->info.class_names, (std::vector<std::string>{"0", "1", "2", "3"}));
    EXPECT_EQ(m->model->embed_dim(), 6);
    EXPECT_EQ(m->model->num_blocks(), 2u);  // one block per convolution
    torch::NoGradGuard no_grad;
    auto x = Images();
    auto logits = m->model->forward(x);
    ASSERT_EQ(logits.sizes(), torch::IntArrayRef({100, 4}));
    auto rt = RunEdgeRuntime(file, x);  // "prob", after the softmax the import dropped
    ASSERT_TRUE(rt.ok()) << rt.error().message;
    EXPECT_LT(MaxDiff(torch::softmax(logits, 1), *rt), 1e-5) << (matmul ? "MatMul" : "Gemm");
  }
  OnnxImportOptions named;
  named.class_names = {"a", "b", "c", "d"};
  auto m = ImportOnnxModelBytes(std::make_shared<const std::string>(ForeignModel(false)), "m.onnx",
                                named);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->info.class_names, named.class_names);
  named.class_names = {"a", "b"};
  m = ImportOnnxModelBytes(std::make_shared<const std::string>(ForeignModel(false)), "m.onnx",
                           named);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().message, "m.onnx: 2 class names given, but head node 'fc' has 4 outputs");
}

TEST(OnnxImport, WithoutAHeadTheErrorSaysSoAndHowToNameOne) {
  TestModel t({3, 8, 8});
  t.w().Initializer("w", torch::ones({4, 3, 3, 3}));
  t.w().Node("Conv", {"x", "w"}, "c");
  t.w().Node("GlobalAveragePool", {"c"}, "y");
  auto bytes = std::make_shared<const std::string>(t.Bytes("y"));
  auto m = ImportOnnxModelBytes(bytes, "seg.onnx");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().message,
            "seg.onnx: no Gemm or MatMul with constant weights reading [N, features] leads to "
            "output 'y', so there is no classification head; name the node to use as the head "
            "(--head-node NAME)");
  OnnxImportOptions o;
  o.head_node = "nope";
  m = ImportOnnxModelBytes(bytes, "seg.onnx", o);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().message, "seg.onnx: no node named 'nope' (and no Gemm or MatMul at all)");
}

// --head-node picks an earlier Gemm: what follows it is dropped.
TEST_F(OnnxImportTest, HeadNodeOptionPicksTheHead) {
  OnnxImportOptions o;
  auto g = onnx_import::ReadGraph(*export_, "tiny.onnx");
  ASSERT_TRUE(g.ok());
  std::vector<std::string> gemms;
  for (const auto& n : g->nodes)
    if (n.op_type == "Gemm") gemms.push_back(n.name);
  ASSERT_EQ(gemms.size(), 2u);  // the embedding and the head
  o.head_node = gemms[0];
  auto m = ImportOnnxModelBytes(std::make_shared<const std::string>(*export_), "tiny.onnx", o);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->info.spec.num_classes, 32);      // the embedding's width, as classes
  EXPECT_EQ(m->info.class_names.front(), "0");  // the metadata's 10 names do not fit
  EXPECT_EQ(m->model->num_blocks(), 2u);
}

// Fine-tuning an import with strategy head trains the head alone; saved, loaded and exported,
// the result runs on the edge runtime as libtorch computes it.
TEST_F(OnnxImportTest, FinetuneHeadOfAnImportChangesOnlyTheHeadAndExportsForTheRuntime) {
  fs::path dir = fs::temp_directory_path() / ("edgeloop_onnx_ft_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  ASSERT_TRUE(WriteFileAtomic((dir / "parent.onnx").string(), *export_).ok());
  auto parent = LoadOrImportModel((dir / "parent.onnx").string());
  ASSERT_TRUE(parent.ok()) << parent.error().message;
  auto before = Snapshot(*parent->model);

  for (auto strategy : {Strategy::kHead, Strategy::kLastK}) {
    FinetuneOptions o;
    o.strategy = strategy;
    o.k = 1;
    o.train.epochs = 1;
    o.train.quiet = true;
    o.train.threads = 1;
    o.train.min_epoch_samples = 256;
    auto r = Finetune(*parent, *train_, data::Dataset{}, o);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_FALSE(r->fresh_head);
    EXPECT_EQ(r->info.lineage.parent_name, "tiny");
    auto after = Snapshot(*r->model);
    ASSERT_EQ(after.size(), before.size());
    size_t changed = 0, last_block_changed = 0;
    const std::string last = "backbone." + std::to_string(parent->model->num_blocks() - 1) + ".";
    for (const auto& [name, t] : before) {
      bool same = torch::equal(t, after[name]);
      bool in_head = name.rfind("head.", 0) == 0, in_last = name.rfind(last, 0) == 0;
      if (strategy == Strategy::kHead || !in_last) {
        EXPECT_EQ(same, !in_head) << name;
      }
      changed += !same;
      last_block_changed += !same && in_last;
    }
    EXPECT_GE(changed, 2u);
    if (strategy == Strategy::kLastK) {
      EXPECT_GT(last_block_changed, 0u);
    }
    if (strategy != Strategy::kHead) continue;

    // Saved with its graph, loaded back, exported: libtorch and the runtime agree.
    ASSERT_TRUE(SaveModel((dir / "child").string(), r->info, r->model).ok());
    EXPECT_TRUE(fs::exists(dir / "child" / "graph.onnx"));
    auto child = LoadModel((dir / "child").string());
    ASSERT_TRUE(child.ok()) << child.error().message;
    torch::NoGradGuard no_grad;
    auto x = Images();
    r->model->eval();
    auto want = r->model->forward(x);
    EXPECT_LT(MaxDiff(child->model->forward(x), want), 1e-6);
    auto exported = ExportOnnx(*child);
    ASSERT_TRUE(exported.ok()) << exported.error().message;
    for (auto backend : {runtime::Backend::kReference, runtime::Backend::kFast}) {
      auto rt = RunEdgeRuntime(*exported, x, 0, backend);
      ASSERT_TRUE(rt.ok()) << rt.error().message;
      double diff = MaxDiff(*rt, want);
      EXPECT_LT(diff, 1e-4);
      std::printf("fine-tuned import, exported: max |runtime - libtorch| = %.3g (%s)\n", diff,
                  backend == runtime::Backend::kFast ? "fast" : "reference");
    }
    // A tampered graph.onnx is refused.
    ASSERT_TRUE(WriteFileAtomic((dir / "child" / "graph.onnx").string(), "x").ok());
    auto bad = LoadModel((dir / "child").string());
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message.find("graph.onnx: sha256 does not match"), std::string::npos);
  }
  fs::remove_all(dir);
}

// ONNX's pytorch-converted models: every one whose ops the importer claims imports and matches
// both the reference output and (where the runtime runs it) the edge runtime; every other one
// is refused for naming an op the importer does not claim.
TEST(OnnxImportConformance, PytorchConvertedModelsMatchReferenceOutputsAndTheRuntime) {
  const std::set<std::string> claimed = ClaimedOps();
  int imported = 0, refused = 0, runtime_compared = 0;
  for (const auto& dir : SortedDirs(kPytorchConverted)) {
    const std::string name = dir.filename().string();
    auto bytes = ReadFile((dir / "model.onnx").string());
    ASSERT_TRUE(bytes.ok());
    onnx::ModelProto proto;
    ASSERT_TRUE(proto.ParseFromString(*bytes));
    std::set<std::string> unclaimed;
    for (const auto& n : proto.graph().node())
      if (!claimed.count(n.op_type())) unclaimed.insert(n.op_type());

    auto start = std::chrono::steady_clock::now();
    auto m = onnx_import::ImportGraphModule(*bytes, name);
    double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (!m.ok()) {
      ++refused;
      const std::string& msg = m.error().message;
      std::printf("%-45s refused: %s\n", name.c_str(), msg.c_str());
      EXPECT_EQ(msg.find('\n'), std::string::npos);
      // Either an op the importer does not claim, named in the error, or an input that is not
      // float data (Embedding's indices).
      bool float_input =
          proto.graph().input(0).type().tensor_type().elem_type() == onnx::TensorProto::FLOAT;
      if (!float_input) {
        EXPECT_NE(msg.find("not float32"), std::string::npos) << name << ": " << msg;
        continue;
      }
      EXPECT_FALSE(unclaimed.empty()) << name << ": " << msg;
      size_t open = msg.find(" ("), close = msg.find("): op not supported by the importer");
      ASSERT_TRUE(open != std::string::npos && close != std::string::npos) << msg;
      EXPECT_TRUE(unclaimed.count(msg.substr(open + 2, close - open - 2))) << name << ": " << msg;
      continue;
    }
    EXPECT_TRUE(unclaimed.empty()) << name << " imported despite unclaimed ops";
    ++imported;
    auto in = runtime::ParseOnnxTensor(*ReadFile((dir / "test_data_set_0/input_0.pb").string()),
                                       "input_0.pb");
    auto ref = runtime::ParseOnnxTensor(*ReadFile((dir / "test_data_set_0/output_0.pb").string()),
                                        "output_0.pb");
    ASSERT_TRUE(in.ok() && ref.ok()) << name;
    torch::NoGradGuard no_grad;
    (*m)->eval();
    auto x = ToTorch(*in);
    auto got = (*m)->forward(x);
    auto want = ToTorch(*ref);
    ASSERT_EQ(got.sizes(), want.sizes()) << name;
    double vs_ref = MaxDiff(got, want);
    double scale = std::max(1.0, want.abs().max().item<double>());
    EXPECT_LT(vs_ref, 1e-4 * scale) << name;
    std::string rt_text = "runtime: refuses";
    auto rt = RunEdgeRuntime(*bytes, x);
    if (rt.ok()) {
      ++runtime_compared;
      double vs_rt = MaxDiff(got, *rt);
      EXPECT_LT(vs_rt, 1e-4 * scale) << name;
      char buf[64];
      std::snprintf(buf, sizeof buf, "max |import - runtime| %.3g", vs_rt);
      rt_text = buf;
    }
    std::printf("%-45s imported (%zu blocks, %.2f ms): max |import - reference| %.3g, %s\n",
                name.c_str(), (*m)->blocks()->size(), ms, vs_ref, rt_text.c_str());
  }
  std::printf("%d imported, %d refused, %d also compared with the edge runtime\n", imported,
              refused, runtime_compared);
  // Conv (1-3d, groups, dilations, pads), pooling, batch norm, Linear, activations, Softmax.
  EXPECT_GE(imported, 45);
}

// ONNX's single-op node tests for every op the importer claims. Inputs after the first become
// initializers holding the test's own values (the importer takes one data input; weights,
// shapes and bounds are constants in a model). Every case imports and matches its reference
// output, or is refused for a reason the importer documents: the batch (the first dimension)
// would not stay first, or an input is not float data.
TEST(OnnxImportConformance, NodeTestsOfClaimedOpsMatchReferenceOutputs) {
  const std::set<std::string> claimed = ClaimedOps();
  int imported = 0, refused = 0;
  std::map<std::string, std::pair<int, int>> per_op;  // imported, refused
  for (const auto& dir : SortedDirs("/usr/share/libonnx-testdata/data/node")) {
    const std::string name = dir.filename().string();
    auto bytes = ReadFile((dir / "model.onnx").string());
    ASSERT_TRUE(bytes.ok());
    onnx::ModelProto proto;
    ASSERT_TRUE(proto.ParseFromString(*bytes));
    bool all_claimed = proto.graph().node_size() > 0;
    for (const auto& n : proto.graph().node()) all_claimed &= claimed.count(n.op_type()) > 0;
    if (!all_claimed || proto.graph().input_size() == 0) continue;
    const std::string op = proto.graph().node(0).op_type();
    const fs::path data = dir / "test_data_set_0";
    for (int i = 1; i < proto.graph().input_size(); ++i) {
      auto pb = ReadFile((data / ("input_" + std::to_string(i) + ".pb")).string());
      ASSERT_TRUE(pb.ok()) << name;
      auto* init = proto.mutable_graph()->add_initializer();
      ASSERT_TRUE(init->ParseFromString(*pb));
      init->set_name(proto.graph().input(i).name());
    }
    std::string model;
    ASSERT_TRUE(proto.SerializeToString(&model));
    auto m = onnx_import::ImportGraphModule(model, name);
    if (!m.ok()) {
      ++refused;
      ++per_op[op].second;
      const std::string& msg = m.error().message;
      std::printf("%-50s refused: %s\n", name.c_str(), msg.c_str());
      EXPECT_EQ(msg.find('\n'), std::string::npos);
      bool documented = false;
      for (const char* reason :
           {"batch", "not float32", "element type", "where the importer expects data",
            "training_mode", "is not a tensor", "empty tensors"})
        documented |= msg.find(reason) != std::string::npos;
      EXPECT_TRUE(documented) << name << ": " << msg;
      continue;
    }
    auto in = runtime::ParseOnnxTensor(*ReadFile((data / "input_0.pb").string()), "input_0.pb");
    auto ref = runtime::ParseOnnxTensor(*ReadFile((data / "output_0.pb").string()), "output_0.pb");
    ASSERT_TRUE(in.ok() && ref.ok()) << name;
    torch::NoGradGuard no_grad;
    (*m)->eval();
    torch::Tensor got;
    try {
      got = (*m)->forward(ToTorch(*in));
    } catch (const std::exception& e) {
      ADD_FAILURE() << name << ": " << e.what();
      continue;
    }
    auto want = ToTorch(*ref);
    ASSERT_EQ(got.sizes(), want.sizes()) << name;
    double scale = std::max(1.0, want.abs().max().item<double>());
    double diff = MaxDiff(got, want);
    EXPECT_LT(diff, 1e-4 * scale) << name;
    ++imported;
    ++per_op[op].first;
    std::printf("%-50s imported: max |import - reference| %.3g\n", name.c_str(), diff);
  }
  for (const auto& [op, counts] : per_op)
    std::printf("%-20s %3d imported %3d refused\n", op.c_str(), counts.first, counts.second);
  std::printf("%d imported, %d refused\n", imported, refused);
  EXPECT_GE(imported, 85);
}

}  // namespace edgeloop::ml
