// The exported ONNX file gives the same outputs under ONNX Runtime and the edge runtime (both
// backends) as the libtorch model, for every architecture: the cnn, and the zoo's
// mobilenet_v2 and resnet on Fashion-MNIST (28x28) and on colour 64x64 images.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "common/file.hpp"
#include "ml/export_onnx.hpp"
#include "ml/train.hpp"
#include "runtime/model.hpp"

namespace edgeloop::ml {
namespace fs = std::filesystem;
namespace {

struct ParityCase {
  std::string name;
  std::string arch;
  std::vector<int64_t> shape;  // per sample
  int train_per_class;         // training samples per class (the zoo's models train slower)
  // The reference backend's direct loops take half a minute for 100 mobilenet_v2 images, so
  // the zoo's cases check it on the first few.
  int64_t reference_images;
};

// Fashion-MNIST slices for 1x28x28; for other shapes, uniform random images with random labels
// (they only need to move the weights and batch-norm statistics off their initial values).
struct ParityData {
  data::Dataset train, test;
};

ParityData DataFor(const std::vector<int64_t>& shape, int per_class) {
  ParityData d;
  if (shape == std::vector<int64_t>{1, 28, 28}) {
    auto train = data::LoadDataset("fashion-mnist:train");
    auto test = data::LoadDataset("fashion-mnist:test");
    EXPECT_TRUE(train.ok() && test.ok());
    if (!train.ok() || !test.ok()) return d;
    d.train = data::SamplePerClass(*train, per_class, 0);
    std::vector<size_t> idx(100);
    for (size_t i = 0; i < 100; ++i) idx[i] = i * 97;
    d.test = test->Subset(idx);
    return d;
  }
  torch::manual_seed(5);
  auto make = [&](size_t n) {
    data::Dataset s;
    s.sample_shape = shape;
    s.class_names = data::kFashionMnistClasses;
    auto x = torch::rand({static_cast<int64_t>(n), shape[0], shape[1], shape[2]}).contiguous();
    s.x.assign(x.data_ptr<float>(), x.data_ptr<float>() + x.numel());
    auto y = torch::randint(0, 10, {static_cast<int64_t>(n)}, torch::kInt32).contiguous();
    s.y.assign(y.data_ptr<int32_t>(), y.data_ptr<int32_t>() + n);
    return s;
  };
  d.train = make(static_cast<size_t>(per_class) * 10);
  d.test = make(100);
  return d;
}

ModelSpec SpecFor(const ParityCase& c) {
  ModelSpec spec;
  spec.arch = c.arch;
  spec.input_shape = c.shape;
  spec.widths = {8, 16};
  spec.embed = 32;
  spec.width_mult = 0.5;
  spec.depth = 8;
  spec.input_mean.assign(static_cast<size_t>(c.shape[0]), 0.286f);
  spec.input_std.assign(static_cast<size_t>(c.shape[0]), 0.353f);
  return spec;
}

}  // namespace

class ExportParity : public ::testing::TestWithParam<ParityCase> {};

TEST_P(ExportParity, OnnxRuntimeAndEdgeRuntimeMatchLibtorchWithin1e4) {
  const ParityCase& c = GetParam();
  const char* src = std::getenv("EDGELOOP_SOURCE_DIR");
  ASSERT_NE(src, nullptr);
  fs::path runner = fs::path(src) / "tools" / "ort" / "run.js";
  ASSERT_TRUE(fs::exists(fs::path(src) / "tools/ort/node_modules/onnxruntime-node"))
      << "ONNX Runtime is not installed: run scripts/ort-install";
  fs::path dir =
      fs::temp_directory_path() / ("edgeloop_parity_" + std::to_string(::getpid()) + "_" + c.name);
  fs::create_directories(dir);

  ParityData d = DataFor(c.shape, c.train_per_class);
  ASSERT_EQ(d.test.size(), 100u);
  ModelSpec spec = SpecFor(c);
  ASSERT_TRUE(spec.Validate().ok()) << spec.Validate().error().message;
  SeedEverything(0);
  LoadedModel m{ModelInfo{}, Classifier(spec)};
  m.info.spec = spec;
  m.info.class_names = d.train.class_names;
  TrainOptions o;
  o.epochs = 2;
  o.threads = 1;
  o.quiet = true;
  // Train so that batch-norm statistics and weights are not at their initial values.
  ASSERT_TRUE(Train(m.model, d.train, data::Dataset{}, o).ok());
  ASSERT_TRUE(ExportOnnxFile(m, (dir / "m.onnx").string()).ok());

  auto& images = d.test;
  std::string raw(reinterpret_cast<const char*>(images.x.data()), images.x.size() * sizeof(float));
  ASSERT_TRUE(WriteFileAtomic((dir / "in.bin").string(), raw).ok());
  runtime::Shape in_shape = {100, c.shape[0], c.shape[1], c.shape[2]};
  std::string dims;
  for (int64_t v : in_shape) dims += (dims.empty() ? "" : ",") + std::to_string(v);

  torch::NoGradGuard no_grad;
  m.model->eval();
  auto expected = m.model->forward(ToInputTensor(images)).contiguous();
  for (const char* output : {"logits", "probabilities"}) {
    std::string cmd = "node '" + runner.string() + "' '" + (dir / "m.onnx").string() + "' '" +
                      (dir / "in.bin").string() + "' " + dims + " " + output + " '" +
                      (dir / "out.bin").string() + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    auto got = ReadFile((dir / "out.bin").string());
    ASSERT_TRUE(got.ok());
    ASSERT_EQ(got->size(), 100u * 10 * sizeof(float));
    auto ort = torch::from_blob(got->data(), {100, 10}, torch::kFloat32).clone();
    auto want = std::string(output) == "logits" ? expected : torch::softmax(expected, 1);
    double max_diff = (ort - want).abs().max().item<double>();
    EXPECT_LT(max_diff, 1e-4) << output;
    std::printf("%s %s: max |onnxruntime - libtorch| = %.3g over 100 images\n", c.name.c_str(),
                output, max_diff);
  }

  // The edge runtime, both backends, on the same file and images.
  for (auto backend : {runtime::Backend::kReference, runtime::Backend::kFast}) {
    const int64_t n = backend == runtime::Backend::kReference ? c.reference_images : 100;
    in_shape[0] = n;
    runtime::ModelOptions mo;
    mo.backend = backend;
    auto rt = runtime::Model::Load((dir / "m.onnx").string(), mo);
    ASSERT_TRUE(rt.ok()) << rt.error().message;
    auto out = rt->Run({runtime::Tensor{runtime::DType::kFloat32, in_shape, images.x.data()}});
    ASSERT_TRUE(out.ok()) << out.error().message;
    ASSERT_EQ(out->size(), 2u);
    for (size_t o = 0; o < 2; ++o) {
      ASSERT_EQ((*out)[o].shape, (runtime::Shape{n, 10}));
      auto got =
          torch::from_blob(const_cast<float*>((*out)[o].as<float>()), {n, 10}, torch::kFloat32)
              .clone();
      auto want = (o == 0 ? expected : torch::softmax(expected, 1)).slice(0, 0, n);
      double max_diff = (got - want).abs().max().item<double>();
      EXPECT_LT(max_diff, 1e-4) << (o == 0 ? "logits" : "probabilities");
      std::printf("%s %s: max |edgeloop runtime (%s) - libtorch| = %.3g over %lld images\n",
                  c.name.c_str(), o == 0 ? "logits" : "probabilities",
                  backend == runtime::Backend::kFast ? "fast" : "reference", max_diff,
                  static_cast<long long>(n));
    }
  }
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(
    Archs, ExportParity,
    ::testing::Values(ParityCase{"cnn", "cnn", {1, 28, 28}, 100, 100},
                      ParityCase{"mobilenet_v2", "mobilenet_v2", {1, 28, 28}, 30, 10},
                      ParityCase{"resnet", "resnet", {1, 28, 28}, 30, 10},
                      ParityCase{"mobilenet_v2_rgb64", "mobilenet_v2", {3, 64, 64}, 10, 10},
                      ParityCase{"resnet_rgb64", "resnet", {3, 64, 64}, 10, 10}),
    [](const auto& info) { return info.param.name; });

}  // namespace edgeloop::ml
