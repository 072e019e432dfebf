#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/pixel.hpp"
#include "common/sample_record.hpp"
#include "data/dataset.hpp"
#include "data/test_images.hpp"

namespace edgeloop::data {
namespace {

namespace fs = std::filesystem;

class Snapshot : public testing::TempDirTest {};

// A snapshot written as the server lays it out: <data>/samples/seg-*.log holding records,
// <data>/datasets/<id>/manifest.json naming each record's place.
TEST_F(Snapshot, ReadsFloatAndPixelTensorsAlike) {
  fs::create_directories(dir_ / "samples");
  fs::create_directories(dir_ / "datasets" / "d1");
  std::vector<float> pixels_as_floats, floats;
  for (int i = 0; i < 12; ++i) {
    pixels_as_floats.push_back(PixelValue(static_cast<uint8_t>(i * 20)));
    floats.push_back(0.5f + static_cast<float>(i) / 1000.f);  // not bytes
  }
  std::string segment;
  nlohmann::json rows = nlohmann::json::array();
  int seq = 0;
  for (const auto* values : {&pixels_as_floats, &floats}) {
    wire::Sample s;
    s.set_device_id("dev");
    s.set_sequence(++seq);
    for (int64_t d : {3, 2, 2}) s.mutable_tensor()->add_shape(d);
    SetTensorValues(s.mutable_tensor(), values->data(), values->size());
    EXPECT_EQ(s.tensor().pixels().empty(), values == &floats);
    const std::string rec = EncodeSampleRecord(s);
    rows.push_back(
        {"dev", seq, seq - 1, "train", 0, segment.size(), rec.size() - kSampleRecordHeaderBytes});
    segment += rec;
  }
  ASSERT_TRUE(testing::WriteBytes(P("samples/seg-000000.log"), segment));
  ASSERT_TRUE(
      testing::WriteBytes(P("datasets/d1/manifest.json"),
                          nlohmann::json({{"samples", rows}, {"class_names", {"a", "b"}}}).dump()));
  auto d = LoadSnapshot(P("datasets/d1"), "");
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->sample_shape, (std::vector<int64_t>{3, 2, 2}));
  EXPECT_EQ(std::vector<float>(d->sample(0), d->sample(0) + 12), pixels_as_floats);
  EXPECT_EQ(std::vector<float>(d->sample(1), d->sample(1) + 12), floats);
}

// LoadDataset reads snapshot: specs (training); LoadDatasetFiles, what the agent replays with,
// refuses them with an error naming the spec rather than looking for a file of that name.
TEST_F(Snapshot, LoadDatasetReadsSnapshotSpecsAndLoadDatasetFilesRefusesThem) {
  fs::create_directories(dir_ / "samples");
  fs::create_directories(dir_ / "datasets" / "d2");
  std::vector<float> values;
  for (int i = 0; i < 4; ++i) values.push_back(PixelValue(static_cast<uint8_t>(i * 60)));
  wire::Sample s;
  s.set_device_id("dev");
  s.set_sequence(1);
  for (int64_t d : {2, 2}) s.mutable_tensor()->add_shape(d);
  SetTensorValues(s.mutable_tensor(), values.data(), values.size());
  const std::string rec = EncodeSampleRecord(s);
  ASSERT_TRUE(testing::WriteBytes(P("samples/seg-000000.log"), rec));
  const nlohmann::json rows = nlohmann::json::array(
      {nlohmann::json::array({"dev", 1, 1, "train", 0, 0, rec.size() - kSampleRecordHeaderBytes})});
  ASSERT_TRUE(
      testing::WriteBytes(P("datasets/d2/manifest.json"),
                          nlohmann::json({{"samples", rows}, {"class_names", {"a", "b"}}}).dump()));
  const std::string spec = "snapshot:" + P("datasets/d2") + ":train";
  auto d = LoadDataset(spec);
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->sample_shape, (std::vector<int64_t>{1, 2, 2}));
  EXPECT_EQ(d->x, values);
  EXPECT_EQ(d->y, (std::vector<int32_t>{1}));
  auto refused = LoadDatasetFiles(spec);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::kUnsupported);
  EXPECT_EQ(refused.error().message.rfind(spec + ": ", 0), 0u) << refused.error().message;
}

}  // namespace
}  // namespace edgeloop::data
