#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <filesystem>
#include <fstream>

#include "common/file.hpp"
#include "common/hash.hpp"
#include "data/corruptions.hpp"
#include "ml/evaluate.hpp"
#include "ml/export_onnx.hpp"
#include "ml/finetune.hpp"
#include "ml/model_store.hpp"
#include "ml/train.hpp"

namespace edgeloop::ml {
namespace fs = std::filesystem;

// Small, real slices of Fashion-MNIST, loaded once for the whole suite.
class MlTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto train = data::LoadDataset("fashion-mnist:train");
    auto test = data::LoadDataset("fashion-mnist:test");
    ASSERT_TRUE(train.ok()) << train.error().message;
    ASSERT_TRUE(test.ok()) << test.error().message;
    train_ = new data::Dataset(data::SamplePerClass(*train, 200, 1));
    val_ = new data::Dataset(data::SamplePerClass(*test, 40, 2));
  }
  static void TearDownTestSuite() {
    delete train_;
    delete val_;
  }
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("edgeloop_ml_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static ModelSpec Spec() {
    ModelSpec s;
    s.arch = "cnn";
    s.input_shape = {1, 28, 28};
    s.num_classes = 10;
    s.widths = {8, 16};
    s.embed = 32;
    s.input_mean = {0.286f};
    s.input_std = {0.353f};
    return s;
  }
  static TrainOptions Quick(int epochs = 2) {
    TrainOptions o;
    o.epochs = epochs;
    o.batch_size = 64;
    o.lr = 3e-3;
    o.quiet = true;
    o.threads = 1;
    return o;
  }
  LoadedModel TrainedModel() {
    SeedEverything(0);
    LoadedModel m{ModelInfo{}, Classifier(Spec())};
    m.info.spec = Spec();
    m.info.class_names = train_->class_names;
    auto r = Train(m.model, *train_, *val_, Quick(3));
    EXPECT_TRUE(r.ok());
    return m;
  }
  static std::string WeightsHash(Classifier& m) {
    std::ostringstream s;
    torch::save(m, s);
    return Sha256Hex(s.str());
  }

  fs::path dir_;
  static data::Dataset* train_;
  static data::Dataset* val_;
};
data::Dataset* MlTest::train_ = nullptr;
data::Dataset* MlTest::val_ = nullptr;

TEST_F(MlTest, TrainingLearnsWellAboveChance) {
  auto m = TrainedModel();
  auto ev = Evaluate(m.model, ToInputTensor(*val_), ToLabelTensor(*val_));
  EXPECT_GT(ev.accuracy, 0.6);  // chance is 0.1
}

TEST_F(MlTest, SameSeedGivesIdenticalWeightsAndOtherSeedDiffers) {
  auto run = [&](uint64_t seed) {
    SeedEverything(seed);
    Classifier m(Spec());
    auto o = Quick(1);
    o.seed = seed;
    EXPECT_TRUE(Train(m, *train_, *val_, o).ok());
    return WeightsHash(m);
  };
  EXPECT_EQ(run(7), run(7));
  EXPECT_NE(run(7), run(8));
}

TEST_F(MlTest, EarlyStoppingStopsAndKeepsTheBestEpoch) {
  SeedEverything(0);
  Classifier m(Spec());
  auto o = Quick(40);
  o.patience = 1;
  auto r = Train(m, *train_, *val_, o);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->early_stopped);
  EXPECT_LT(r->epochs.size(), 40u);
  auto ev = Evaluate(m, ToInputTensor(*val_), ToLabelTensor(*val_));
  EXPECT_NEAR(ev.accuracy, r->best_val_accuracy, 1e-9);
}

TEST_F(MlTest, SmallTrainingSetsAreRepeatedUpToMinEpochSamples) {
  auto tiny = data::SamplePerClass(*train_, 2, 3);  // 20 samples
  ASSERT_EQ(tiny.size(), 20u);
  SeedEverything(0);
  Classifier m(Spec());
  auto o = Quick(2);
  o.min_epoch_samples = 630;  // 32 copies of the 20 samples: 640 per epoch
  auto r = Train(m, tiny, *val_, o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->epochs.size(), 2u);
  EXPECT_EQ(r->epochs[0].samples, 640);
  o.min_epoch_samples = 0;  // a plain epoch is one pass
  Classifier m2(Spec());
  auto r2 = Train(m2, tiny, *val_, o);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->epochs[0].samples, 20);
}

TEST_F(MlTest, CheckpointsAreWrittenEveryEpoch) {
  Classifier m(Spec());
  auto o = Quick(1);
  o.checkpoint_dir = (dir_ / "ckpt").string();
  ASSERT_TRUE(Train(m, *train_, *val_, o).ok());
  EXPECT_TRUE(fs::exists(dir_ / "ckpt" / "last.pt"));
  EXPECT_TRUE(fs::exists(dir_ / "ckpt" / "best.pt"));
}

TEST_F(MlTest, SaveLoadRoundTripGivesIdenticalOutputsAndDetectsCorruption) {
  auto m = TrainedModel();
  ASSERT_TRUE(SaveModel((dir_ / "m").string(), m.info, m.model).ok());
  auto back = LoadModel((dir_ / "m").string());
  ASSERT_TRUE(back.ok()) << back.error().message;
  auto x = ToInputTensor(*val_).slice(0, 0, 16);
  m.model->eval();
  EXPECT_TRUE(torch::equal(m.model->forward(x), back->model->forward(x)));
  // Flip a byte of the weights: loading must refuse.
  auto path = (dir_ / "m" / "weights.pt").string();
  auto bytes = *ReadFile(path);
  bytes[bytes.size() / 2] ^= 0x55;
  ASSERT_TRUE(WriteFileAtomic(path, bytes).ok());
  auto bad = LoadModel((dir_ / "m").string());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, Errc::kMismatch);
}

TEST_F(MlTest, HeadOnlyFinetuneLeavesTheBackboneUntouched) {
  auto parent = TrainedModel();
  auto before = parent.model->backbone()->parameters()[0].clone();
  auto head_before = parent.model->head()->weight.clone();
  FinetuneOptions o;
  o.strategy = Strategy::kHead;
  o.train = Quick(2);
  auto shifted = data::Corrupt(*train_, data::Corruption::kRotation, 4, 3);
  auto r = Finetune(parent, shifted, *val_, o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(torch::equal(r->model->backbone()->parameters()[0], before));
  EXPECT_FALSE(torch::equal(r->model->head()->weight, head_before));
  // The parent itself is not modified.
  EXPECT_TRUE(torch::equal(parent.model->head()->weight, head_before));
  EXPECT_EQ(r->info.lineage.parent_hash, parent.info.ModelHash());
  EXPECT_EQ(r->info.lineage.dataset_hash, shifted.hash);
  EXPECT_EQ(r->info.lineage.strategy, "head");
}

TEST_F(MlTest, LastKFreezesEarlierBlocksAndFullTrainsAll) {
  auto parent = TrainedModel();
  FinetuneOptions o;
  o.train = Quick(1);
  o.strategy = Strategy::kLastK;
  o.k = 1;
  auto r = Finetune(parent, *train_, *val_, o);
  ASSERT_TRUE(r.ok());
  auto blocks = parent.model->num_blocks();
  for (size_t i = 0; i < blocks; ++i) {
    auto a = parent.model->backbone()[i]->parameters()[0];
    auto b = r->model->backbone()[i]->parameters()[0];
    if (i + 1 < blocks)
      EXPECT_TRUE(torch::equal(a, b)) << "block " << i;
    else
      EXPECT_FALSE(torch::equal(a, b)) << "block " << i;
  }
  o.strategy = Strategy::kFull;
  auto f = Finetune(parent, *train_, *val_, o);
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(torch::equal(parent.model->backbone()[0]->parameters()[0],
                            f->model->backbone()[0]->parameters()[0]));
  EXPECT_EQ(f->info.lineage.hyperparameters["backbone_lr_scale"], 0.1);
}

TEST_F(MlTest, NewClassNamesAddHeadRowsAndKeepTheParentsRows) {
  auto parent = TrainedModel();
  // Three classes: two the parent knows (under its names) and one it does not.
  std::vector<size_t> idx;
  for (size_t i = 0; i < train_->size(); ++i)
    if (train_->y[i] < 3) idx.push_back(i);
  auto three = train_->Subset(idx);
  const auto& pc = parent.info.class_names;
  three.class_names = {pc[0], "Hat", pc[2]};
  FinetuneOptions o;
  o.train = Quick(1);
  o.train.lr = 1e-12;  // next to nothing moves: the head rows are what the fine-tune started from
  auto r = Finetune(parent, three, data::Dataset{}, o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->fresh_head);
  const int64_t k = static_cast<int64_t>(pc.size());
  EXPECT_EQ(r->added_classes, std::vector<std::string>{"Hat"});
  ASSERT_EQ(r->model->head()->weight.size(0), k + 1);
  EXPECT_EQ(r->info.spec.num_classes, k + 1);
  std::vector<std::string> want = pc;
  want.push_back("Hat");
  EXPECT_EQ(r->info.class_names, want);
  EXPECT_TRUE(torch::allclose(r->model->head()->weight.narrow(0, 0, k),
                              parent.model->head()->weight, 0, 1e-6));
  EXPECT_TRUE(torch::allclose(r->model->head()->bias.narrow(0, 0, k), parent.model->head()->bias,
                              0, 1e-6));
}

TEST_F(MlTest, FreshHeadReplacesTheHeadWithTheDatasClasses) {
  auto parent = TrainedModel();
  std::vector<size_t> idx;
  for (size_t i = 0; i < train_->size(); ++i)
    if (train_->y[i] < 3) idx.push_back(i);
  auto three = train_->Subset(idx);
  three.class_names = {"a", "b", "c"};
  FinetuneOptions o;
  o.train = Quick(1);
  o.fresh_head = true;
  auto r = Finetune(parent, three, data::Dataset{}, o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->fresh_head);
  EXPECT_EQ(r->model->head()->weight.size(0), 3);
  EXPECT_EQ(r->info.spec.num_classes, 3);
  EXPECT_EQ(r->info.class_names, three.class_names);
}

TEST_F(MlTest, ParentWithAnotherInputShapeIsRefused) {
  auto parent = TrainedModel();
  data::Dataset small;
  small.sample_shape = {1, 14, 14};
  small.x.assign(14 * 14 * 4, 0.5f);
  small.y = {0, 1, 2, 3};
  small.class_names = train_->class_names;
  FinetuneOptions o;
  o.train = Quick(1);
  auto r = Finetune(parent, small, data::Dataset{}, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kMismatch);
  EXPECT_NE(r.error().message.find("1x28x28"), std::string::npos);
}

TEST_F(MlTest, RobustnessSuiteCoversEveryCorruptionAndSeverityAndHurtsAccuracy) {
  auto m = TrainedModel();
  auto r = EvaluateRobustness(m, *val_, data::AllCorruptions(), {1, 5}, 0);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->accuracy.size(), 6u);
  for (auto& row : r->accuracy) EXPECT_EQ(row.size(), 2u);
  EXPECT_LT(r->mean_corruption_accuracy, r->clean_accuracy);
  // Severity 5 noise hurts more than severity 1.
  EXPECT_LT(r->accuracy[0][1], r->accuracy[0][0]);
}

TEST_F(MlTest, ExportedOnnxCarriesMetadataAndTheDeclaredGraph) {
  auto m = TrainedModel();
  m.info.name = "fmnist";
  m.info.version = "3";
  auto bytes = ExportOnnx(m);
  ASSERT_TRUE(bytes.ok()) << bytes.error().message;
  onnx::ModelProto proto;
  ASSERT_TRUE(proto.ParseFromString(*bytes));
  EXPECT_EQ(proto.opset_import(0).version(), kOnnxOpset);
  EXPECT_EQ(proto.graph().output(0).name(), "logits");
  EXPECT_EQ(proto.graph().output(1).name(), "probabilities");
  std::map<std::string, std::string> meta;
  for (auto& p : proto.metadata_props()) meta[p.key()] = p.value();
  EXPECT_EQ(meta["edgeloop.name"], "fmnist");
  EXPECT_EQ(meta["edgeloop.version"], "3");
  EXPECT_EQ(meta["edgeloop.model_hash"], m.info.ModelHash());
  EXPECT_NE(meta["edgeloop.class_names"].find("Ankle boot"), std::string::npos);
  // Batch norm is folded: no BatchNormalization node ships.
  for (auto& n : proto.graph().node()) EXPECT_NE(n.op_type(), "BatchNormalization");
}

}  // namespace edgeloop::ml
