// The backbone zoo (mobilenet_v2, resnet): shapes, sizes, specs, persistence, fine-tune
// freezing and the exported graph. Numerical parity of the export with the edge runtime and ONNX
// Runtime is pinned in tests/export_parity_test.cpp.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <filesystem>
#include <set>

#include "ml/block.hpp"
#include "ml/export_onnx.hpp"
#include "ml/finetune.hpp"
#include "ml/model_store.hpp"
#include "ml/train.hpp"

namespace edgeloop::ml {
namespace fs = std::filesystem;

namespace {

ModelSpec ZooSpec(const std::string& arch, std::vector<int64_t> shape, double width_mult = 1.0) {
  ModelSpec s;
  s.arch = arch;
  s.input_shape = shape;
  s.num_classes = 10;
  s.width_mult = width_mult;
  s.depth = 8;
  s.input_mean.assign(static_cast<size_t>(shape[0]), 0.3f);
  s.input_std.assign(static_cast<size_t>(shape[0]), 0.35f);
  return s;
}

std::vector<torch::Tensor> Snapshot(const std::vector<torch::Tensor>& ts) {
  std::vector<torch::Tensor> out;
  for (const auto& t : ts) out.push_back(t.detach().clone());
  return out;
}

bool AllEqual(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!torch::equal(a[i], b[i])) return false;
  return true;
}

}  // namespace

// A small Fashion-MNIST slice, loaded once, and narrow models so that training stays quick.
class ZooTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    auto train = data::LoadDataset("fashion-mnist:train");
    ASSERT_TRUE(train.ok()) << train.error().message;
    train_ = new data::Dataset(data::SamplePerClass(*train, 16, 1));
  }
  static void TearDownTestSuite() { delete train_; }
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("edgeloop_zoo_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static TrainOptions Quick() {
    TrainOptions o;
    o.epochs = 1;
    o.batch_size = 32;
    o.lr = 3e-3;
    o.quiet = true;
    o.threads = 1;
    return o;
  }
  // A narrow model of the test's architecture, trained for an epoch so that weights and batch
  // norm statistics are not at their initial values.
  LoadedModel Trained() {
    SeedEverything(0);
    auto spec = ZooSpec(GetParam(), {1, 28, 28}, 0.5);
    LoadedModel m{ModelInfo{}, Classifier(spec)};
    m.info.spec = spec;
    m.info.class_names = train_->class_names;
    EXPECT_TRUE(Train(m.model, *train_, data::Dataset{}, Quick()).ok());
    return m;
  }

  fs::path dir_;
  static data::Dataset* train_;
};
data::Dataset* ZooTest::train_ = nullptr;

INSTANTIATE_TEST_SUITE_P(Archs, ZooTest, ::testing::Values("mobilenet_v2", "resnet"),
                         [](const auto& info) { return info.param; });

TEST_P(ZooTest, BuildsForGrayAndColorImagesAndGivesOneLogitPerClass) {
  for (auto shape : {std::vector<int64_t>{1, 28, 28}, std::vector<int64_t>{3, 64, 64}}) {
    auto spec = ZooSpec(GetParam(), shape);
    ASSERT_TRUE(spec.Validate().ok()) << spec.Validate().error().message;
    Classifier m(spec);
    m->eval();
    torch::NoGradGuard no_grad;
    auto x = torch::rand({2, shape[0], shape[1], shape[2]});
    EXPECT_EQ(m->forward(x).sizes(), (std::vector<int64_t>{2, 10}));
    EXPECT_EQ(m->features(x).sizes(), (std::vector<int64_t>{2, m->embed_dim()}));
    // Several blocks, each a BlockImpl, so fine-tuning and export see whole blocks.
    EXPECT_GE(m->num_blocks(), 4u);
    for (size_t i = 0; i < m->num_blocks(); ++i)
      EXPECT_NE(std::dynamic_pointer_cast<BlockImpl>(m->backbone()->ptr(i)), nullptr) << i;
  }
}

TEST_P(ZooTest, ParameterCountGrowsWithTheWidthMultiplier) {
  int64_t last = 0;
  for (double w : {0.25, 0.5, 1.0, 1.5}) {
    Classifier m(ZooSpec(GetParam(), {1, 28, 28}, w));
    int64_t n = ParameterCount(m);
    EXPECT_GT(n, last) << "width_mult " << w;
    last = n;
  }
}

TEST_P(ZooTest, SaveLoadRoundTripKeepsSpecAndOutputs) {
  auto m = Trained();
  ASSERT_TRUE(SaveModel((dir_ / "m").string(), m.info, m.model).ok());
  auto back = LoadModel((dir_ / "m").string());
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->info.spec.arch, GetParam());
  EXPECT_EQ(back->info.spec.width_mult, 0.5);
  EXPECT_EQ(back->info.spec.ToJson(), m.info.spec.ToJson());
  auto x = ToInputTensor(*train_).slice(0, 0, 8);
  torch::NoGradGuard no_grad;
  m.model->eval();
  back->model->eval();
  EXPECT_TRUE(torch::equal(m.model->forward(x), back->model->forward(x)));
}

TEST_P(ZooTest, HeadStrategyTrainsOnlyTheHead) {
  auto parent = Trained();
  auto params = Snapshot(parent.model->backbone()->parameters());
  auto buffers = Snapshot(parent.model->backbone()->buffers());
  auto head = parent.model->head()->weight.clone();
  FinetuneOptions o;
  o.strategy = Strategy::kHead;
  o.train = Quick();
  auto r = Finetune(parent, *train_, data::Dataset{}, o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(AllEqual(r->model->backbone()->parameters(), params));
  // Frozen blocks run in eval mode: their batch-norm statistics do not move either.
  EXPECT_TRUE(AllEqual(r->model->backbone()->buffers(), buffers));
  EXPECT_FALSE(torch::equal(r->model->head()->weight, head));
}

TEST_P(ZooTest, LastKStrategyTrainsExactlyTheLastKBlocks) {
  auto parent = Trained();
  const size_t blocks = parent.model->num_blocks(), k = 2;
  FinetuneOptions o;
  o.strategy = Strategy::kLastK;
  o.k = static_cast<int>(k);
  o.train = Quick();
  auto r = Finetune(parent, *train_, data::Dataset{}, o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  for (size_t i = 0; i < blocks; ++i) {
    bool same =
        AllEqual(r->model->backbone()[i]->parameters(), parent.model->backbone()[i]->parameters());
    if (i + k < blocks)
      EXPECT_TRUE(same) << "frozen block " << i << " changed";
    else
      EXPECT_FALSE(same) << "trained block " << i << " did not change";
  }
}

TEST_P(ZooTest, ExportWritesFoldedConvsAndTheArchitecturesOps) {
  auto m = Trained();
  auto bytes = ExportOnnx(m);
  ASSERT_TRUE(bytes.ok()) << bytes.error().message;
  onnx::ModelProto proto;
  ASSERT_TRUE(proto.ParseFromString(*bytes));
  std::multiset<std::string> ops;
  bool depthwise = false;
  for (const auto& n : proto.graph().node()) {
    ops.insert(n.op_type());
    for (const auto& a : n.attribute())
      if (a.name() == "group" && a.i() > 1) depthwise = true;
  }
  EXPECT_EQ(ops.count("BatchNormalization"), 0u);
  EXPECT_EQ(ops.count("GlobalAveragePool"), 1u);
  EXPECT_GE(ops.count("Add"), 1u);
  EXPECT_EQ(ops.count("Gemm"), 1u);  // the head only
  if (GetParam() == "mobilenet_v2") {
    EXPECT_TRUE(depthwise);
    EXPECT_GE(ops.count("Clip"), 1u);
  } else {
    EXPECT_FALSE(depthwise);
    EXPECT_EQ(ops.count("Clip"), 0u);
  }
}

// The zoo is sized for small images: the stride-2 steps leave a 4x4 map (mobilenet_v2) or
// divide by four (resnet) before the final pooling block.
TEST(Zoo, FinalFeatureMapFitsTheInputResolution) {
  struct Case {
    std::string arch;
    int64_t side, expected;
  };
  for (const auto& c : std::vector<Case>{{"mobilenet_v2", 28, 4},
                                         {"mobilenet_v2", 64, 4},
                                         {"mobilenet_v2", 224, 7},
                                         {"resnet", 28, 7},
                                         {"resnet", 64, 16}}) {
    auto spec = ZooSpec(c.arch, {1, c.side, c.side}, 0.25);
    spec.depth = 14;  // two blocks per stage: the pooling block's own one keeps the resolution
    Classifier m(spec);
    m->eval();
    torch::NoGradGuard no_grad;
    auto x = torch::rand({1, 1, c.side, c.side});
    for (size_t i = 0; i + 1 < m->num_blocks(); ++i) x = ForwardBlock(m->backbone()->ptr(i), x);
    EXPECT_EQ(x.size(2), c.expected) << c.arch << " " << c.side;
    EXPECT_EQ(x.size(3), c.expected) << c.arch << " " << c.side;
  }
}

TEST(Zoo, ResNetDepthSetsTheNumberOfBasicBlocks) {
  for (int64_t depth : {8, 14, 20}) {
    auto spec = ZooSpec("resnet", {1, 28, 28});
    spec.depth = depth;
    Classifier m(spec);
    EXPECT_EQ(m->num_blocks(), static_cast<size_t>(1 + (depth - 2) / 2)) << depth;
  }
}

TEST(Zoo, InvalidSpecsAreRefusedWithTheProblemNamed) {
  struct Case {
    std::string arch;
    std::vector<int64_t> shape;
    double width_mult;
    int64_t depth;
    Errc code;
    std::string says;
  };
  for (const auto& c : std::vector<Case>{
           {"resnet", {1, 28, 28}, 1.0, 9, Errc::kInvalidArgument, "6n + 2"},
           {"resnet", {1, 28, 28}, 1.0, 2, Errc::kInvalidArgument, "depth 2"},
           {"resnet", {1, 6, 28}, 1.0, 8, Errc::kMismatch, "too small"},
           {"mobilenet_v2", {3, 7, 7}, 1.0, 8, Errc::kMismatch, "too small"},
           {"mobilenet_v2", {1, 28, 28}, 0.0, 8, Errc::kInvalidArgument, "width multiplier"},
           {"resnet", {1, 28, 28}, 5.0, 8, Errc::kInvalidArgument, "width multiplier"},
           {"mobilenet_v2", {784}, 1.0, 8, Errc::kMismatch, "images [c,h,w]"},
           {"vgg", {1, 28, 28}, 1.0, 8, Errc::kInvalidArgument, "unknown architecture"}}) {
    auto spec = ZooSpec(c.arch, c.shape, c.width_mult);
    spec.depth = c.depth;
    auto st = spec.Validate();
    ASSERT_FALSE(st.ok()) << c.says;
    EXPECT_EQ(st.error().code, c.code) << st.error().message;
    EXPECT_NE(st.error().message.find(c.says), std::string::npos) << st.error().message;
  }
  // Normalization must still match the channels.
  auto spec = ZooSpec("resnet", {3, 32, 32});
  spec.input_mean = {0.5f};
  EXPECT_FALSE(spec.Validate().ok());
}

TEST(Zoo, SpecJsonRoundTripsAndOlderFilesLoadWithDefaults) {
  auto spec = ZooSpec("resnet", {3, 32, 32}, 0.75);
  spec.depth = 14;
  auto back = ModelSpec::FromJson(spec.ToJson());
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->width_mult, 0.75);
  EXPECT_EQ(back->depth, 14);
  EXPECT_EQ(back->ToJson(), spec.ToJson());

  // A model.json written before the zoo existed has neither field.
  auto old = nlohmann::json::parse(R"({"arch": "cnn", "input_shape": [1, 28, 28],
      "num_classes": 10, "widths": [16, 32], "embed": 128, "dropout": 0.2,
      "input_mean": [0.25], "input_std": [0.5]})");
  auto cnn = ModelSpec::FromJson(old);
  ASSERT_TRUE(cnn.ok()) << cnn.error().message;
  EXPECT_EQ(cnn->width_mult, 1.0);
  // Its spec serializes as before, so the model hash of existing models does not change.
  EXPECT_EQ(cnn->ToJson(), old);
}

}  // namespace edgeloop::ml
