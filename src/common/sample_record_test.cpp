#include "common/sample_record.hpp"

#include <gtest/gtest.h>

#include "common/pixel.hpp"

namespace edgeloop {
namespace {

TEST(TensorPixels, ByteValuedTensorsTravelAsPixelsAndReadBackExactly) {
  std::vector<float> v;
  for (int b = 0; b < 256; ++b) v.push_back(PixelValue(static_cast<uint8_t>(b)));
  wire::Sample s;
  s.mutable_tensor()->add_shape(256);
  SetTensorValues(s.mutable_tensor(), v.data(), v.size());
  EXPECT_EQ(s.tensor().values_size(), 0);
  EXPECT_EQ(s.tensor().pixels().size(), 256u);
  wire::Sample back;
  ASSERT_TRUE(back.ParseFromString(s.SerializeAsString()));
  EXPECT_EQ(TensorValueCount(back.tensor()), 256);
  EXPECT_EQ(TensorValues(back.tensor()), v);
}

TEST(TensorPixels, OtherValuesStayFloats) {
  for (std::vector<float> v : {std::vector<float>{0.5f}, {1.5f, 0.f}, {-0.f, 2.f / 255.f, 0.001f}}) {
    wire::Tensor t;
    SetTensorValues(&t, v.data(), v.size());
    EXPECT_TRUE(t.pixels().empty());
    EXPECT_EQ(TensorValues(t), v);
  }
}

TEST(TensorPixels, AnOldFloatOnlyRecordStillParses) {
  // What agents from before the pixels field send: values only, field 2.
  wire::Sample old;
  old.set_sequence(7);
  old.mutable_tensor()->add_shape(2);
  old.mutable_tensor()->add_values(0.25f);
  old.mutable_tensor()->add_values(3.0f);
  const std::string bytes = old.SerializeAsString();
  wire::Sample s;
  ASSERT_TRUE(s.ParseFromString(bytes));
  EXPECT_EQ(TensorValueCount(s.tensor()), 2);
  EXPECT_EQ(TensorValues(s.tensor()), (std::vector<float>{0.25f, 3.0f}));
  // And through the sample store's record framing.
  const std::string rec = EncodeSampleRecord(s);
  EXPECT_EQ(rec.size(), kSampleRecordHeaderBytes + bytes.size());
}

TEST(TensorPixels, ATensorWithBothFormsIsMalformed) {
  wire::Tensor t;
  t.add_values(0.5f);
  t.set_pixels(std::string(1, '\x10'));
  EXPECT_EQ(TensorValueCount(t), -1);
}

}  // namespace
}  // namespace edgeloop
