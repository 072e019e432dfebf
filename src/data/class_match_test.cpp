#include "data/class_match.hpp"

#include <gtest/gtest.h>

namespace edgeloop::data {
namespace {

Dataset Labelled(std::vector<std::string> names, std::vector<int32_t> y) {
  Dataset d;
  d.sample_shape = {1};
  d.x.assign(y.size(), 0.f);
  d.y = std::move(y);
  d.class_names = std::move(names);
  d.source = "images:site/";
  d.hash = ComputeHash(d);
  return d;
}

TEST(ClassMatch, RenumbersAFoldersSortedClassesToTheModelsOrder) {
  // A folder sorts its classes alphabetically; the model's order is Fashion-MNIST's.
  auto d = Labelled({"Ankle boot", "Bag", "Sandal"}, {0, 1, 2, 0, -1});
  auto m = MatchClassesByName(d, kFashionMnistClasses, "base");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_FALSE(m->by_index);
  EXPECT_EQ(m->data.class_names, kFashionMnistClasses);
  EXPECT_EQ(m->data.y, (std::vector<int32_t>{9, 8, 5, 9, -1}));
  EXPECT_EQ(m->data.hash, d.hash);
}

TEST(ClassMatch, UnknownClassNamesAreAMismatchListingThem) {
  auto d = Labelled({"Bag", "Hat", "Scarf"}, {0, 1, 2});
  auto m = MatchClassesByName(d, kFashionMnistClasses, "model base");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, Errc::kMismatch);
  EXPECT_NE(m.error().message.find("2 class(es) that model base does not know: Hat, Scarf"),
            std::string::npos)
      << m.error().message;
}

TEST(ClassMatch, UnnamedClassesAreMatchedByIndexAndSaySo) {
  auto d = Labelled({"0", "1", "2"}, {2, 1});
  auto m = MatchClassesByName(d, kFashionMnistClasses, "base");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_TRUE(m->by_index);
  EXPECT_EQ(m->data.y, (std::vector<int32_t>{2, 1}));
  EXPECT_EQ(m->data.class_names, kFashionMnistClasses);
}

TEST(ClassMatch, ReadsClassNamesFromOnnxMetadata) {
  auto names = ClassNamesFromOnnxMetadata({{"edgeloop.class_names", R"(["a","b"])"}}, "m.onnx");
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(ClassNamesFromOnnxMetadata({}, "m.onnx")->empty());
  auto bad = ClassNamesFromOnnxMetadata({{"edgeloop.class_names", R"(["a",1])"}}, "m.onnx");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("m.onnx"), std::string::npos);
  auto deep = ClassNamesFromOnnxMetadata(
      {{"edgeloop.class_names", std::string(500, '[') + std::string(500, ']')}}, "m.onnx");
  EXPECT_FALSE(deep.ok());
}

}  // namespace
}  // namespace edgeloop::data
