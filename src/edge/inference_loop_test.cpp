#include "edge/inference_loop.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>

#include "common/file.hpp"
#include "common/hash.hpp"
#include "data/corruptions.hpp"
#include "edge/test_util.hpp"
#include "edge/updater_test_repo.hpp"
#include "common/sample_record.hpp"
#include "edgeloop_wire.pb.h"

namespace edgeloop::edge {
namespace {

using testing::ScratchDir;

// Three classes of 8x8 images: a bright band in the top, middle or bottom rows, plus noise.
data::Dataset Bands(int per_class, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> noise(0.f, 0.08f);
  data::Dataset d;
  d.sample_shape = {1, 8, 8};
  d.class_names = {"top", "middle", "bottom"};
  for (int i = 0; i < per_class * 3; ++i) {
    int c = i % 3;
    for (int r = 0; r < 8; ++r)
      for (int col = 0; col < 8; ++col)
        d.x.push_back(std::clamp((r / 3 == c ? 0.8f : 0.15f) + noise(rng), 0.f, 1.f));
    d.y.push_back(c);
  }
  return d;
}

Sample SampleOf(const data::Dataset& d, size_t i) {
  Sample s;
  s.id = "s" + std::to_string(i);
  s.shape = d.sample_shape;
  s.data.assign(d.sample(i), d.sample(i) + d.sample_numel());
  s.label = d.y[i];
  return s;
}

// A real (if small) model: the nearest class mean, probabilities from negative distances.
class NearestMeanClassifier : public Classifier {
 public:
  explicit NearestMeanClassifier(const data::Dataset& train)
      : means_(3, std::vector<float>(64, 0)) {
    std::vector<int> counts(3, 0);
    for (size_t i = 0; i < train.size(); ++i) {
      auto c = static_cast<size_t>(train.y[i]);
      ++counts[c];
      for (size_t k = 0; k < 64; ++k) means_[c][k] += train.sample(i)[k];
    }
    for (size_t c = 0; c < 3; ++c)
      for (float& v : means_[c]) v /= static_cast<float>(counts[c]);
  }
  Result<std::vector<float>> Classify(const Sample& s) override {
    if (s.data.size() != 64) return Error(Errc::kMismatch, "expected 64 values");
    std::vector<float> logits;
    for (const auto& m : means_) {
      float d = 0;
      for (size_t k = 0; k < 64; ++k) d += (s.data[k] - m[k]) * (s.data[k] - m[k]);
      logits.push_back(-d);
    }
    return Softmax(logits);
  }

 private:
  std::vector<std::vector<float>> means_;
};

TEST(InferenceLoopTest, SoftmaxAndInputStats) {
  auto p = Softmax({1.f, 2.f, 3.f});
  EXPECT_NEAR(p[0] + p[1] + p[2], 1.0, 1e-6);
  EXPECT_NEAR(p[2], 0.665241, 1e-5);
  InputStats st = ComputeInputStats({0.f, 1.f});
  EXPECT_DOUBLE_EQ(st.mean, 0.5);
  EXPECT_DOUBLE_EQ(st.std, 0.5);
}

TEST(InferenceLoopTest, ClassifiesFeedsTelemetryAndSpoolsWhatTheSamplerPicks) {
  ScratchDir dir("loop");
  data::Dataset train = Bands(50, 1), live = Bands(40, 2);
  NearestMeanClassifier model(train);
  auto spool = Spool::Open(dir.path());
  ASSERT_TRUE(spool.ok());
  SamplerConfig sc;
  sc.policy = SamplingPolicy::kUniform;
  sc.rate = 0.0;  // only labelled samples are selected, and every one of these is labelled
  Sampler sampler(sc);
  Telemetry telemetry;
  InferenceLoop loop({&model, spool->get(), &sampler, &telemetry, nullptr, nullptr, "m3"});
  for (size_t i = 0; i < live.size(); ++i) {
    auto o = loop.Process(SampleOf(live, i), static_cast<double>(i));
    ASSERT_TRUE(o.ok()) << o.error().message;
    EXPECT_TRUE(o->uploaded);
    EXPECT_EQ(o->prediction, live.y[i]);
  }
  auto snap = nlohmann::json::parse(telemetry.SnapshotJson(0));
  EXPECT_EQ(snap["n"], 120);
  EXPECT_DOUBLE_EQ(snap["accuracy"].get<double>(), 1.0);
  auto recs = (*spool)->Peek(1000, size_t{1} << 30);
  ASSERT_TRUE(recs.ok());
  ASSERT_EQ(recs->size(), 120u);
  wire::Sample rec;
  ASSERT_TRUE(rec.ParseFromString((*recs)[5].payload));
  EXPECT_EQ(rec.metadata().at("id"), "s5");
  EXPECT_TRUE(rec.has_label());
  EXPECT_EQ(rec.label(), live.y[5]);
  EXPECT_EQ(rec.label_source(), wire::LABEL_SOURCE_DEVICE);
  EXPECT_EQ(rec.model_version(), "m3");
  EXPECT_EQ(TensorValueCount(rec.tensor()), 64);
  EXPECT_TRUE((*recs)[5].labelled);
}

// The drift reference of a model on the data it was trained on.
Result<ReferenceProfile> ProfileOn(Classifier& model, const data::Dataset& train) {
  std::vector<Sample> samples;
  for (size_t i = 0; i < train.size(); ++i) samples.push_back(SampleOf(train, i));
  return BuildReferenceProfile(model, samples);
}

// A model trained on clean bands, its drift reference, and a spool.
class InferenceLoopDriftTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = ProfileOn(model, train);
    ASSERT_TRUE(p.ok()) << p.error().message;
    profile = *p;
    auto s = Spool::Open(dir.path());
    ASSERT_TRUE(s.ok()) << s.error().message;
    spool = std::move(*s);
  }
  ScratchDir dir{"loop"};
  data::Dataset train = Bands(100, 1);
  NearestMeanClassifier model{train};
  std::optional<ReferenceProfile> profile;
  std::unique_ptr<Spool> spool;
};

TEST_F(InferenceLoopDriftTest, DriftAlarmRisesOnTheDevicesCorruptedDomain) {
  Sampler sampler(SamplerConfig{});
  DriftConfig dc;
  dc.window = 300;
  dc.min_samples = 300;

  auto run = [&](const data::Dataset& d) {
    DriftMonitor drift(*profile, dc);
    InferenceLoop loop({&model, spool.get(), &sampler, nullptr, &drift, nullptr, "m1"});
    for (size_t i = 0; i < d.size(); ++i) EXPECT_TRUE(loop.Process(SampleOf(d, i), 0).ok());
    return drift.Scores();
  };
  auto clean = run(Bands(100, 9));
  EXPECT_FALSE(clean.at("input_mean").alarm) << clean.at("input_mean").psi;
  EXPECT_FALSE(clean.at("confidence").alarm) << clean.at("confidence").psi;
  auto bright = run(data::Corrupt(Bands(100, 9), data::Corruption::kBrightness, 3, 5));
  EXPECT_TRUE(bright.at("input_mean").alarm) << bright.at("input_mean").psi;
  EXPECT_GT(bright.at("input_mean").psi, 1.0);
}

// Once the drift monitor raises its alarm (scored at each telemetry period), the sampler's
// on_drift policy decides what is uploaded.
TEST_F(InferenceLoopDriftTest, SamplesWithTheDriftPolicyOnceTheAlarmIsUp) {
  SamplerConfig sc;
  sc.confidence_below = 0;  // the usual policy picks nothing unlabelled
  sc.entropy_above = 1;
  sc.random_fraction = 0;
  sc.on_drift = SamplingPolicy::kAll;
  Sampler sampler(sc);
  DriftConfig dc;
  dc.window = 300;
  dc.min_samples = 300;
  DriftMonitor drift(*profile, dc);
  InferenceLoop loop({&model, spool.get(), &sampler, nullptr, &drift, nullptr, "m1"});
  data::Dataset bright = data::Corrupt(Bands(100, 9), data::Corruption::kBrightness, 3, 5);
  auto unlabelled = [&](size_t i) {
    Sample s = SampleOf(bright, i);
    s.label.reset();
    return s;
  };
  int before = 0, after = 0;
  for (size_t i = 0; i < 300; ++i) before += loop.Process(unlabelled(i), 0)->uploaded;
  ASSERT_TRUE(drift.Scores().at("input_mean").alarm);  // the telemetry period's scoring
  for (size_t i = 300; i < 400; ++i) {
    auto o = loop.Process(unlabelled(i), 0);
    ASSERT_TRUE(o.ok());
    after += o->uploaded;
    EXPECT_EQ(o->reason, std::string("drift_all"));
  }
  EXPECT_EQ(before, 0);
  EXPECT_EQ(after, 100);
}

TEST(InferenceLoopTest, FeedsTheUpdatersProbationWindow) {
  ScratchDir dir("loop"), root("loop-updater"), repo("loop-repo");
  auto [priv, pub] = testing::TestKeys();
  UpdaterOptions uo;
  uo.update_public_key_pem = pub;
  uo.probation.samples = 30;
  auto updater = Updater::Open(root.path(), uo, std::make_shared<FileFetcher>(repo.path()));
  ASSERT_TRUE(updater.ok());
  ASSERT_TRUE((*updater)->Bootstrap("v1", 1, "{}").ok());
  std::string artifact = "v2 model bytes";
  ASSERT_TRUE(WriteFileAtomic(repo / "m2", artifact).ok());
  UpdateMetadata m;
  m.deployment_target = "dev-1";
  m.version = 2;
  m.expires_unix = 4102444800;
  m.target = {"m2", "v2", Sha256Hex(artifact), artifact.size()};
  auto doc = SignUpdateMetadata(m, priv);
  ASSERT_TRUE(doc.ok());
  ASSERT_TRUE((*updater)->Offer(*doc).ok());
  ASSERT_EQ((*updater)->phase(), UpdatePhase::kProbation);

  data::Dataset d = Bands(10, 3);
  NearestMeanClassifier model(d);
  auto spool = Spool::Open(dir.path());
  ASSERT_TRUE(spool.ok());
  Sampler sampler(SamplerConfig{});
  InferenceLoop loop({&model, spool->get(), &sampler, nullptr, nullptr, updater->get(), "m2"});
  for (size_t i = 0; i < d.size(); ++i) ASSERT_TRUE(loop.Process(SampleOf(d, i), 0).ok());
  EXPECT_EQ((*updater)->phase(), UpdatePhase::kCommitted);
  EXPECT_EQ((*updater)->active().version, 2u);
}

}  // namespace
}  // namespace edgeloop::edge
