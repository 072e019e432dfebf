// The input spec a model carries: model.json, the ONNX metadata, and what the edge side
// reads back from an exported file.
#include <gtest/gtest.h>

#include "edge/runtime_classifier.hpp"
#include "ml/export_onnx.hpp"
#include "ml/model_store.hpp"
#include "runtime/model.hpp"

namespace edgeloop::ml {
namespace {

ModelInfo RgbModelInfo() {
  ModelInfo info;
  info.spec.arch = "cnn";
  info.spec.input_shape = {3, 32, 40};
  info.spec.num_classes = 2;
  info.spec.widths = {4};
  info.spec.embed = 8;
  info.spec.input_mean = {0.4f, 0.5f, 0.6f};
  info.spec.input_std = {0.2f, 0.2f, 0.2f};
  info.class_names = {"ok", "scratch"};
  return info;
}

TEST(ModelInputSpec, RoundTripsThroughModelJson) {
  ModelInfo info = RgbModelInfo();
  data::InputSpec spec = data::InputSpec::ForShape({3, 32, 40}).value();
  spec.resize = data::ResizeMode::kCenterCrop;
  info.input_spec = spec;
  auto back = ModelInfo::FromJson(nlohmann::json::parse(info.ToJson().dump()));
  ASSERT_TRUE(back.ok()) << back.error().message;
  ASSERT_TRUE(back->input_spec.has_value());
  EXPECT_EQ(*back->input_spec, spec);
  EXPECT_EQ(back->ModelHash(), info.ModelHash());
}

TEST(ModelInputSpec, AnOldModelJsonWithoutOneDerivesItFromTheInputShape) {
  nlohmann::json j = RgbModelInfo().ToJson();
  j["preprocessing"] = {{"input", "float32 pixels in [0,1], layout [N,C,H,W]"},
                        {"normalization", "inside the model: (x - mean) / std"},
                        {"mean", {0.4, 0.5, 0.6}},
                        {"std", {0.2, 0.2, 0.2}}};
  auto m = ModelInfo::FromJson(j);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_FALSE(m->input_spec.has_value());
  auto spec = m->ImageInputSpec();
  ASSERT_TRUE(spec.has_value());
  EXPECT_EQ(spec->Shape(), (std::vector<int64_t>{3, 32, 40}));
  EXPECT_EQ(spec->resize, data::ResizeMode::kStretch);
  EXPECT_TRUE(spec->IdentityNormalization());
}

TEST(ModelInputSpec, ARecordedSpecMustMatchTheInputShapeAndBeValid) {
  nlohmann::json j = RgbModelInfo().ToJson();
  j["preprocessing"]["input_spec"]["height"] = 64;
  EXPECT_FALSE(ModelInfo::FromJson(j).ok());
  j = RgbModelInfo().ToJson();
  j["preprocessing"]["input_spec"]["zoom"] = 2;
  auto bad = ModelInfo::FromJson(j);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("zoom"), std::string::npos) << bad.error().message;
}

TEST(ModelInputSpec, FeatureModelsHaveNone) {
  ModelInfo info;
  info.spec.arch = "mlp";
  info.spec.input_shape = {6};
  info.spec.widths = {4};
  info.spec.num_classes = 2;
  info.spec.input_mean = std::vector<float>(6, 0.f);
  info.spec.input_std = std::vector<float>(6, 1.f);
  info.class_names = {"a", "b"};
  EXPECT_FALSE(info.ImageInputSpec().has_value());
  EXPECT_TRUE(info.ToJson()["preprocessing"]["input_spec"].is_null());
}

TEST(ModelInputSpec, TheExportedOnnxCarriesItToTheEdgeSide) {
  ModelInfo info = RgbModelInfo();
  data::InputSpec spec = data::InputSpec::ForShape({3, 32, 40}).value();
  spec.resize = data::ResizeMode::kPad;
  info.input_spec = spec;
  LoadedModel m{info, Classifier(info.spec)};
  auto bytes = ExportOnnx(m);
  ASSERT_TRUE(bytes.ok()) << bytes.error().message;
  auto loaded = runtime::Model::LoadFromBytes(*bytes, "exported.onnx");
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  auto read = edge::ModelInputSpec(*loaded, "exported.onnx");
  ASSERT_TRUE(read.ok()) << read.error().message;
  ASSERT_TRUE(read->has_value());
  EXPECT_EQ(**read, spec);
  // Without the metadata entry (an older export, a model from elsewhere): the NCHW input.
  m.info.input_spec.reset();
  auto derived = ExportOnnx(m);
  ASSERT_TRUE(derived.ok());
  auto again = runtime::Model::LoadFromBytes(*derived, "derived.onnx");
  ASSERT_TRUE(again.ok());
  auto d = edge::ModelInputSpec(*again, "derived.onnx");
  ASSERT_TRUE(d.ok() && d->has_value());
  EXPECT_EQ((*d)->Shape(), (std::vector<int64_t>{3, 32, 40}));
  EXPECT_EQ((*d)->resize, data::ResizeMode::kStretch);
}

}  // namespace
}  // namespace edgeloop::ml
