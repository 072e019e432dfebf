#include "data/dataset.hpp"

#include <gtest/gtest.h>
#include <png.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

namespace edgeloop::data {
namespace {

namespace fs = std::filesystem;

class DataFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("edgeloop_data_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string P(const std::string& name) const { return (dir_ / name).string(); }
  void WriteText(const std::string& name, const std::string& text) {
    fs::create_directories(fs::path(P(name)).parent_path());
    std::ofstream(P(name), std::ios::binary) << text;
  }
  fs::path dir_;
};

// n images of h x w with distinct content, labels i % k.
Dataset MakeImages(size_t n, int h, int w, int k) {
  Dataset d;
  d.sample_shape = {1, h, w};
  for (size_t i = 0; i < n; ++i) {
    for (int p = 0; p < h * w; ++p)
      d.x.push_back(static_cast<float>((i * 7 + p * 3) % 256) / 255.0f);
    d.y.push_back(static_cast<int32_t>(i % k));
  }
  for (int c = 0; c < k; ++c) d.class_names.push_back(std::to_string(c));
  d.hash = ComputeHash(d);
  return d;
}

std::string Gzip(const std::string& raw) {
  uLongf size = compressBound(raw.size()) + 64;
  std::string out(size, '\0');
  z_stream zs{};
  deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  zs.avail_in = static_cast<uInt>(raw.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WritePng(const std::string& path, int w, int h, unsigned char base) {
  fs::create_directories(fs::path(path).parent_path());
  png_image img;
  std::memset(&img, 0, sizeof(img));
  img.version = PNG_IMAGE_VERSION;
  img.width = static_cast<png_uint_32>(w);
  img.height = static_cast<png_uint_32>(h);
  img.format = PNG_FORMAT_GRAY;
  std::vector<unsigned char> px(static_cast<size_t>(w) * h);
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<unsigned char>(base + i);
  ASSERT_TRUE(png_image_write_to_file(&img, path.c_str(), 0, px.data(), 0, nullptr)) << img.message;
}

TEST_F(DataFiles, IdxRoundTripKeepsPixelsLabelsAndHash) {
  Dataset d = MakeImages(12, 5, 4, 3);
  ASSERT_TRUE(WriteIdx(d, P("a-images-idx3-ubyte"), P("a-labels-idx1-ubyte")).ok());
  auto r = LoadIdx(P("a-images-idx3-ubyte"), P("a-labels-idx1-ubyte"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->sample_shape, (std::vector<int64_t>{1, 5, 4}));
  EXPECT_EQ(r->y, d.y);
  EXPECT_EQ(r->class_names, (std::vector<std::string>{"0", "1", "2"}));
  ASSERT_EQ(r->x.size(), d.x.size());
  for (size_t i = 0; i < d.x.size(); ++i) EXPECT_NEAR(r->x[i], d.x[i], 1e-6);
  EXPECT_EQ(r->hash, ComputeHash(*r));
  // Through LoadDataset, by prefix and by folder.
  auto by_prefix = LoadDataset("idx:" + P("a"));
  ASSERT_TRUE(by_prefix.ok()) << by_prefix.error().message;
  EXPECT_EQ(by_prefix->hash, r->hash);
  auto by_dir = LoadDataset(dir_.string());
  ASSERT_TRUE(by_dir.ok()) << by_dir.error().message;
  EXPECT_EQ(by_dir->hash, r->hash);
}

TEST_F(DataFiles, ReadsGzippedIdx) {
  Dataset d = MakeImages(6, 3, 3, 2);
  ASSERT_TRUE(WriteIdx(d, P("raw-images"), P("raw-labels")).ok());
  WriteText("train-images-idx3-ubyte.gz", Gzip(ReadAll(P("raw-images"))));
  WriteText("train-labels-idx1-ubyte.gz", Gzip(ReadAll(P("raw-labels"))));
  auto r = LoadIdx(P("train-images-idx3-ubyte.gz"), P("train-labels-idx1-ubyte.gz"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto plain = LoadIdx(P("raw-images"), P("raw-labels"));
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(r->hash, plain->hash);
  auto via_spec = LoadDataset(dir_.string() + ":train");
  ASSERT_TRUE(via_spec.ok()) << via_spec.error().message;
  EXPECT_EQ(via_spec->hash, plain->hash);
}

TEST_F(DataFiles, TruncatedIdxNamesTheFileAndTheSizes) {
  Dataset d = MakeImages(10, 28, 28, 2);
  ASSERT_TRUE(WriteIdx(d, P("img"), P("lab")).ok());
  std::string bytes = ReadAll(P("img"));
  WriteText("img", bytes.substr(0, 1234));
  auto r = LoadIdx(P("img"), P("lab"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find(P("img")), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("truncated"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("10 images of 28x28"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("1234"), std::string::npos) << r.error().message;
}

TEST_F(DataFiles, HugeIdxHeaderIsRefusedWithoutAllocating) {
  // Claims 2^32-1 images of 65535x65535 in a 16-byte file.
  WriteText("img",
            std::string("\x00\x00\x08\x03\xff\xff\xff\xff\x00\x00\xff\xff\x00\x00\xff\xff", 16));
  WriteText("lab", std::string("\x00\x00\x08\x01\x00\x00\x00\x00", 8));
  auto r = LoadIdx(P("img"), P("lab"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("truncated"), std::string::npos) << r.error().message;
}

TEST_F(DataFiles, WrongIdxMagicNamesTheFile) {
  WriteText("img", "PK\x03\x04 this is a zip file, not IDX");
  Dataset d = MakeImages(2, 2, 2, 2);
  ASSERT_TRUE(WriteIdx(d, P("ok-img"), P("lab")).ok());
  auto r = LoadIdx(P("img"), P("lab"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find(P("img")), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("magic"), std::string::npos) << r.error().message;
  // A labels file where images belong: wrong number of dimensions.
  auto swapped = LoadIdx(P("lab"), P("lab"));
  ASSERT_FALSE(swapped.ok());
  EXPECT_NE(swapped.error().message.find("dimension"), std::string::npos);
}

TEST_F(DataFiles, IdxImageAndLabelCountsMustMatch) {
  ASSERT_TRUE(WriteIdx(MakeImages(5, 3, 3, 2), P("img"), P("lab5")).ok());
  ASSERT_TRUE(WriteIdx(MakeImages(4, 3, 3, 2), P("img4"), P("lab")).ok());
  auto r = LoadIdx(P("img"), P("lab"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find(P("lab")), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("4 labels"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("5 images"), std::string::npos) << r.error().message;
}

TEST_F(DataFiles, MissingFileIsNotFoundNamingIt) {
  auto r = LoadDataset(P("nope.csv"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kNotFound);
  EXPECT_NE(r.error().message.find("nope.csv"), std::string::npos);
  auto d = LoadDataset(P("no-such-thing"));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code, Errc::kNotFound);
}

TEST_F(DataFiles, CsvWithNamedLabels) {
  WriteText("t.csv", "a, b ,label\n1,2.5,dog\n\n-3,4e-1,cat\n\"5\",6,dog\n");
  auto r = LoadDataset(P("t.csv"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->sample_shape, (std::vector<int64_t>{2}));
  EXPECT_EQ(r->class_names, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(r->y, (std::vector<int32_t>{1, 0, 1}));
  EXPECT_EQ(r->x, (std::vector<float>{1, 2.5f, -3, 0.4f, 5, 6}));
  EXPECT_EQ(r->source, "csv:" + P("t.csv"));
}

TEST_F(DataFiles, CsvIntegerLabelsAndOtherLabelColumn) {
  WriteText("t.csv", "y,f1,f2\n2,0,1\n0,1,0\n");
  auto r = LoadCsv(P("t.csv"), "y");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->class_names, (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_EQ(r->y, (std::vector<int32_t>{2, 0}));
  EXPECT_FALSE(LoadCsv(P("t.csv")).ok());  // no "label" column
}

TEST_F(DataFiles, CsvRoundTripThroughWriteCsv) {
  Dataset d;
  d.sample_shape = {3};
  d.x = {0.1f, 1e-7f, -2.5f, 3.0f, 4.25f, 1.0f / 3.0f};
  d.y = {1, 0};
  d.class_names = {"0", "1"};
  ASSERT_TRUE(WriteCsv(d, P("out.csv")).ok());
  auto r = LoadCsv(P("out.csv"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->x, d.x);
  EXPECT_EQ(r->y, d.y);
  EXPECT_EQ(r->hash, ComputeHash(d));
}

TEST_F(DataFiles, CsvBadRowNamesFileAndLine) {
  WriteText("bad.csv", "a,b,label\n1,2,x\n3,oops,y\n");
  auto r = LoadCsv(P("bad.csv"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kFormat);
  EXPECT_NE(r.error().message.find(P("bad.csv")), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("line 3"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("oops"), std::string::npos) << r.error().message;

  WriteText("short.csv", "a,b,label\n1,2,x\n3,y\n");
  auto s = LoadCsv(P("short.csv"));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("line 3"), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find("2 columns"), std::string::npos) << s.error().message;
}

TEST_F(DataFiles, EmptyCsvIsAnError) {
  WriteText("empty.csv", "a,b,label\n");
  auto r = LoadCsv(P("empty.csv"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("empty.csv"), std::string::npos);
  EXPECT_NE(r.error().message.find("empty"), std::string::npos);
  WriteText("nothing.csv", "");
  EXPECT_FALSE(LoadCsv(P("nothing.csv")).ok());
}

TEST_F(DataFiles, ImageFolderReadsClassesInSortedOrder) {
  WritePng(P("imgs/cat/1.png"), 4, 3, 10);
  WritePng(P("imgs/cat/2.png"), 4, 3, 20);
  WritePng(P("imgs/ant/1.png"), 4, 3, 200);
  auto r = LoadDataset(P("imgs"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->class_names, (std::vector<std::string>{"ant", "cat"}));
  EXPECT_EQ(r->y, (std::vector<int32_t>{0, 1, 1}));
  EXPECT_EQ(r->sample_shape, (std::vector<int64_t>{1, 3, 4}));
  EXPECT_FLOAT_EQ(r->sample(0)[0], 200.0f / 255.0f);
  EXPECT_FLOAT_EQ(r->sample(2)[1], 21.0f / 255.0f);
}

TEST_F(DataFiles, ImageFolderRefusesAnImageOfAnotherSize) {
  WritePng(P("imgs/a/1.png"), 28, 28, 0);
  WritePng(P("imgs/b/odd.png"), 20, 24, 0);
  auto r = LoadImageFolder(P("imgs"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kMismatch);
  EXPECT_NE(r.error().message.find("odd.png"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("24x20"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("28x28"), std::string::npos) << r.error().message;
}

TEST_F(DataFiles, ImageFolderRefusesCorruptAndNonPngFiles) {
  WritePng(P("imgs/a/1.png"), 8, 8, 0);
  std::string good = ReadAll(P("imgs/a/1.png"));
  WriteText("imgs/b/broken.png", good.substr(0, good.size() / 2));
  auto r = LoadImageFolder(P("imgs"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("broken.png"), std::string::npos) << r.error().message;

  fs::remove(P("imgs/b/broken.png"));
  WriteText("imgs/b/notes.txt", "not an image");
  auto t = LoadImageFolder(P("imgs"));
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("notes.txt"), std::string::npos) << t.error().message;
}

TEST_F(DataFiles, EmptyImageFolderIsAnError) {
  fs::create_directories(P("imgs/a"));
  auto r = LoadImageFolder(P("imgs"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("empty"), std::string::npos);
}

TEST(DatasetHash, ChangesWithOnePixelOrLabelAndIsStableOtherwise) {
  Dataset a = MakeImages(5, 4, 4, 2);
  Dataset b = MakeImages(5, 4, 4, 2);
  EXPECT_EQ(ComputeHash(a), ComputeHash(b));
  EXPECT_EQ(ComputeHash(a).size(), 64u);
  b.x[17] += 1.0f / 255.0f;
  EXPECT_NE(ComputeHash(a), ComputeHash(b));
  Dataset c = MakeImages(5, 4, 4, 2);
  c.y[3] = 0;
  EXPECT_NE(ComputeHash(a), ComputeHash(c));
  Dataset e = MakeImages(5, 4, 4, 2);
  e.class_names[1] = "other";
  EXPECT_NE(ComputeHash(a), ComputeHash(e));
  Dataset f = MakeImages(5, 4, 4, 2);
  f.sample_shape = {1, 2, 8};
  EXPECT_NE(ComputeHash(a), ComputeHash(f));
}

TEST(DatasetSubset, KeepsOrderAndRecomputesHash) {
  Dataset d = MakeImages(6, 2, 2, 3);
  Dataset s = d.Subset({4, 1});
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s.y, (std::vector<int32_t>{d.y[4], d.y[1]}));
  EXPECT_EQ(std::vector<float>(s.sample(0), s.sample(0) + 4),
            std::vector<float>(d.sample(4), d.sample(4) + 4));
  EXPECT_EQ(s.hash, ComputeHash(s));
  EXPECT_NE(s.hash, d.hash);
}

TEST(DatasetSplit, IsDeterministicStratifiedAndDisjoint) {
  Dataset d = MakeImages(1000, 2, 2, 4);
  for (size_t i = 0; i < d.size(); ++i) d.sample(i)[0] = static_cast<float>(i);  // distinct
  d.hash = ComputeHash(d);
  Split a = SplitDataset(d, 0.1, 0.2, 42);
  Split b = SplitDataset(d, 0.1, 0.2, 42);
  EXPECT_EQ(a.train.hash, b.train.hash);
  EXPECT_EQ(a.val.hash, b.val.hash);
  EXPECT_EQ(a.test.hash, b.test.hash);
  EXPECT_EQ(a.train.size() + a.val.size() + a.test.size(), d.size());
  EXPECT_EQ(a.test.size(), 200u);
  EXPECT_EQ(a.val.size(), 100u);
  for (const Dataset* part : {&a.train, &a.val, &a.test}) {
    std::vector<size_t> count(4);
    for (int32_t y : part->y) ++count[y];
    for (size_t c = 0; c < 4; ++c) EXPECT_EQ(count[c], part->size() / 4) << "class " << c;
  }
  // Disjoint and complete: every sample is distinct, so count distinct pixel rows.
  std::set<std::vector<float>> seen;
  for (const Dataset* part : {&a.train, &a.val, &a.test})
    for (size_t i = 0; i < part->size(); ++i)
      seen.insert(std::vector<float>(part->sample(i), part->sample(i) + 4));
  EXPECT_EQ(seen.size(), d.size());
  Split other = SplitDataset(d, 0.1, 0.2, 43);
  EXPECT_NE(other.test.hash, a.test.hash);
}

TEST(DatasetSplit, SamplePerClassTakesAtMostNOfEach) {
  Dataset d = MakeImages(100, 2, 2, 3);
  Dataset s = SamplePerClass(d, 5, 7);
  EXPECT_EQ(s.size(), 15u);
  std::vector<int> count(3);
  for (int32_t y : s.y) ++count[y];
  EXPECT_EQ(count, (std::vector<int>{5, 5, 5}));
  EXPECT_EQ(SamplePerClass(d, 5, 7).hash, s.hash);
  EXPECT_NE(SamplePerClass(d, 5, 8).hash, s.hash);
  EXPECT_EQ(SamplePerClass(d, 1000, 7).size(), 100u);
}

TEST_F(DataFiles, FashionMnistFolderCanBeOverriddenAndLabelsMustFitItsClasses) {
  Dataset d = MakeImages(20, 28, 28, 10);
  ASSERT_TRUE(WriteIdx(d, P("t10k-images-idx3-ubyte"), P("t10k-labels-idx1-ubyte")).ok());
  ::setenv("EDGELOOP_FASHION_MNIST_DIR", dir_.c_str(), 1);
  auto r = LoadDataset("fashion-mnist:test");
  auto train = LoadDataset("fashion-mnist");  // default split, not present here
  d.y[3] = 10;                                // outside the ten Fashion-MNIST classes
  ASSERT_TRUE(WriteIdx(d, P("t10k-images-idx3-ubyte"), P("t10k-labels-idx1-ubyte")).ok());
  auto bad = LoadDataset("fashion-mnist:test");
  ::unsetenv("EDGELOOP_FASHION_MNIST_DIR");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->size(), 20u);
  EXPECT_EQ(r->class_names, kFashionMnistClasses);
  EXPECT_EQ(r->source, "fashion-mnist:test");
  ASSERT_FALSE(train.ok());
  EXPECT_NE(train.error().message.find("train-images"), std::string::npos) << train.error().message;
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("label 10"), std::string::npos) << bad.error().message;
}

TEST_F(DataFiles, WritersRefuseWhatTheFormatCannotHoldAndLeaveNoFile) {
  Dataset rgb;
  rgb.sample_shape = {3, 2, 2};
  rgb.x.assign(12, 0.5f);
  rgb.y = {0};
  rgb.class_names = {"a"};
  EXPECT_FALSE(WriteIdx(rgb, P("i"), P("l")).ok());
  Dataset big = MakeImages(2, 2, 2, 2);
  big.y[1] = 300;
  EXPECT_FALSE(WriteIdx(big, P("i"), P("l")).ok());
  Dataset unlabelled = MakeImages(2, 2, 2, 2);
  unlabelled.y[0] = -1;
  EXPECT_FALSE(WriteCsv(unlabelled, P("u.csv")).ok());
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST(FashionMnist, LoadsTheInstalledTestSplit) {
  auto r = LoadDataset("fashion-mnist:test");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->size(), 10000u);
  EXPECT_EQ(r->sample_shape, (std::vector<int64_t>{1, 28, 28}));
  EXPECT_EQ(r->class_names, kFashionMnistClasses);
  EXPECT_EQ(r->class_names.size(), 10u);
  EXPECT_EQ(r->source, "fashion-mnist:test");
  std::vector<int> count(10);
  for (int32_t y : r->y) ++count[y];
  for (int c : count) EXPECT_EQ(c, 1000);
  float lo = 1, hi = 0;
  for (float v : r->x) lo = std::min(lo, v), hi = std::max(hi, v);
  EXPECT_EQ(lo, 0.0f);
  EXPECT_EQ(hi, 1.0f);
  EXPECT_FALSE(LoadDataset("fashion-mnist:validation").ok());
}

}  // namespace
}  // namespace edgeloop::data
