// The exported ONNX file gives the same outputs under ONNX Runtime as the libtorch model.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "common/file.hpp"
#include "ml/export_onnx.hpp"
#include "ml/train.hpp"
#include "runtime/model.hpp"

namespace edgeloop::ml {
namespace fs = std::filesystem;

TEST(ExportParity, OnnxRuntimeMatchesLibtorchWithin1e4On100TestImages) {
  const char* src = std::getenv("EDGELOOP_SOURCE_DIR");
  ASSERT_NE(src, nullptr);
  fs::path runner = fs::path(src) / "tools" / "ort" / "run.js";
  ASSERT_TRUE(fs::exists(fs::path(src) / "tools/ort/node_modules/onnxruntime-node"))
      << "ONNX Runtime is not installed: run scripts/ort-install";
  fs::path dir = fs::temp_directory_path() / ("edgeloop_parity_" + std::to_string(::getpid()));
  fs::create_directories(dir);

  auto train = data::LoadDataset("fashion-mnist:train");
  auto test = data::LoadDataset("fashion-mnist:test");
  ASSERT_TRUE(train.ok() && test.ok());
  auto small = data::SamplePerClass(*train, 100, 0);
  ModelSpec spec;
  spec.input_shape = {1, 28, 28};
  spec.widths = {8, 16};
  spec.embed = 32;
  spec.input_mean = {0.286f};
  spec.input_std = {0.353f};
  SeedEverything(0);
  LoadedModel m{ModelInfo{}, Classifier(spec)};
  m.info.spec = spec;
  m.info.class_names = train->class_names;
  TrainOptions o;
  o.epochs = 2;
  o.quiet = true;
  // Train so that batch-norm statistics and weights are not at their initial values.
  ASSERT_TRUE(Train(m.model, small, data::Dataset{}, o).ok());
  ASSERT_TRUE(ExportOnnxFile(m, (dir / "m.onnx").string()).ok());

  std::vector<size_t> idx(100);
  for (size_t i = 0; i < 100; ++i) idx[i] = i * 97;
  auto images = test->Subset(idx);
  std::string raw(reinterpret_cast<const char*>(images.x.data()), images.x.size() * sizeof(float));
  ASSERT_TRUE(WriteFileAtomic((dir / "in.bin").string(), raw).ok());

  torch::NoGradGuard no_grad;
  m.model->eval();
  auto expected = m.model->forward(ToInputTensor(images)).contiguous();
  for (const char* output : {"logits", "probabilities"}) {
    std::string cmd = "node '" + runner.string() + "' '" + (dir / "m.onnx").string() + "' '" +
                      (dir / "in.bin").string() + "' 100,1,28,28 " + output + " '" +
                      (dir / "out.bin").string() + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    auto got = ReadFile((dir / "out.bin").string());
    ASSERT_TRUE(got.ok());
    ASSERT_EQ(got->size(), 100u * 10 * sizeof(float));
    auto ort = torch::from_blob(got->data(), {100, 10}, torch::kFloat32).clone();
    auto want = std::string(output) == "logits" ? expected : torch::softmax(expected, 1);
    double max_diff = (ort - want).abs().max().item<double>();
    EXPECT_LT(max_diff, 1e-4) << output;
    std::printf("%s: max |onnxruntime - libtorch| = %.3g over 100 images\n", output, max_diff);
  }

  // The edge runtime, both backends, on the same file and images.
  for (auto backend : {runtime::Backend::kReference, runtime::Backend::kFast}) {
    runtime::ModelOptions mo;
    mo.backend = backend;
    auto rt = runtime::Model::Load((dir / "m.onnx").string(), mo);
    ASSERT_TRUE(rt.ok()) << rt.error().message;
    auto out =
        rt->Run({runtime::Tensor{runtime::DType::kFloat32, {100, 1, 28, 28}, images.x.data()}});
    ASSERT_TRUE(out.ok()) << out.error().message;
    ASSERT_EQ(out->size(), 2u);
    for (size_t o = 0; o < 2; ++o) {
      ASSERT_EQ((*out)[o].shape, (runtime::Shape{100, 10}));
      auto got =
          torch::from_blob(const_cast<float*>((*out)[o].as<float>()), {100, 10}, torch::kFloat32)
              .clone();
      auto want = o == 0 ? expected : torch::softmax(expected, 1);
      double max_diff = (got - want).abs().max().item<double>();
      EXPECT_LT(max_diff, 1e-4) << (o == 0 ? "logits" : "probabilities");
      std::printf("%s: max |edgeloop runtime (%s) - libtorch| = %.3g over 100 images\n",
                  o == 0 ? "logits" : "probabilities",
                  backend == runtime::Backend::kFast ? "fast" : "reference", max_diff);
    }
  }
  fs::remove_all(dir);
}

}  // namespace edgeloop::ml
