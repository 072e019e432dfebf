#include "common/file.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>

namespace edgeloop {
namespace fs = std::filesystem;

class FileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("edgeloop_file_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(FileTest, AtomicWriteReplacesContentAndLeavesNoTemporaryFile) {
  std::string p = (dir_ / "a.txt").string();
  ASSERT_TRUE(WriteFileAtomic(p, "first").ok());
  ASSERT_TRUE(WriteFileAtomic(p, "second").ok());
  auto r = ReadFile(p);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "second");
  int files = 0;
  for (auto& e : fs::directory_iterator(dir_)) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
}

TEST_F(FileTest, AtomicWriteIntoMissingDirectoryFailsWithPath) {
  auto st = WriteFileAtomic((dir_ / "nope" / "a.txt").string(), "x");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("nope"), std::string::npos);
}

TEST_F(FileTest, ReadRefusesFilesOverTheLimit) {
  std::string p = (dir_ / "big").string();
  ASSERT_TRUE(WriteFileAtomic(p, std::string(100, 'x')).ok());
  auto r = ReadFile(p, 10);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kResourceExhausted);
}

TEST_F(FileTest, ReadMissingFileIsNotFound) {
  auto r = ReadFile((dir_ / "missing").string());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kNotFound);
}

TEST_F(FileTest, GzipIsDetectedByMagicAndTruncationIsAnError) {
  std::string p = (dir_ / "x.gz").string();
  gzFile gz = gzopen(p.c_str(), "wb");
  std::string payload(10000, 'q');
  gzwrite(gz, payload.data(), static_cast<unsigned>(payload.size()));
  gzclose(gz);
  auto r = ReadMaybeGzipFile(p);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, payload);
  auto raw = ReadFile(p);
  ASSERT_TRUE(WriteFileAtomic(p, raw->substr(0, raw->size() / 2)).ok());
  auto bad = ReadMaybeGzipFile(p);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, Errc::kFormat);
}

}  // namespace edgeloop
