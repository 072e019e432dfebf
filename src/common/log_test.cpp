#include "common/log.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace edgeloop::log {
namespace {

TEST(Log, FormatsKeyValueFieldsAndQuotesWhereNeeded) {
  std::string line = Format(1'796'205'886'682, Level::kWarn, "rollout_tick_failed",
                            {{"rollout", "ro-1"}, {"error", "database is locked"}, {"n", 3}});
  EXPECT_EQ(line,
            "ts=2026-12-02T10:04:46.682Z level=warn event=rollout_tick_failed rollout=ro-1 "
            "error=\"database is locked\" n=3");
  EXPECT_EQ(Format(0, Level::kInfo, "e", {{"q", "a\"b"}}),
            "ts=1970-01-01T00:00:00.000Z level=info event=e q=\"a\\\"b\"");
}

TEST(Log, WritesToAFileAboveTheLevelAndRateLimitsEachEvent) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("edgeloop_log_test_" + std::to_string(::getpid()) + ".log"))
                               .string();
  Options o;
  o.file = path;
  o.level = Level::kInfo;
  o.max_per_event_per_10s = 5;
  ASSERT_TRUE(Configure(o).ok());
  Debug("hidden");
  for (int i = 0; i < 50; ++i) Warn("storm", {{"i", i}});
  Info("other");
  ASSERT_TRUE(Configure(Options{}).ok());  // back to stderr; closes the file
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::filesystem::remove(path);
  const std::string s = text.str();
  EXPECT_EQ(s.find("hidden"), std::string::npos);
  size_t storms = 0;
  for (size_t p = s.find("event=storm"); p != std::string::npos; p = s.find("event=storm", p + 1))
    ++storms;
  EXPECT_EQ(storms, 5u);
  EXPECT_NE(s.find("event=other"), std::string::npos);
}

TEST(Log, UnknownLevelAndUnwritableFileAreErrors) {
  EXPECT_FALSE(ParseLevel("loud").ok());
  EXPECT_EQ(*ParseLevel("warn"), Level::kWarn);
  Options o;
  o.file = "/nonexistent-dir/x.log";
  auto st = Configure(o);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("/nonexistent-dir/x.log"), std::string::npos);
}

}  // namespace
}  // namespace edgeloop::log
