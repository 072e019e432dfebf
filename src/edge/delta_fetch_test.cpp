#include "edge/delta_fetch.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <vector>

#include "common/delta.hpp"
#include "common/hash.hpp"
#include "common/test_bytes.hpp"

namespace edgeloop::edge {
namespace {

using edgeloop::testing::PseudoRandomBytes;

// A server in miniature: answers a delta request with `delta_answer` (when set) and a full
// request with `full`; records what was asked.
struct FakeArtifactServer {
  FakeArtifactServer(std::string full_bytes, std::optional<FetchedArtifact> delta)
      : full(std::move(full_bytes)), delta_answer(std::move(delta)) {}

  std::string full;
  std::optional<FetchedArtifact> delta_answer;
  std::vector<std::string> asked;

  ArtifactFetchFn Fn() {
    return [this](const std::string& from) -> Result<FetchedArtifact> {
      asked.push_back(from);
      if (!from.empty() && delta_answer) return *delta_answer;
      return FetchedArtifact{full, ""};
    };
  }
};

class DeltaFetch : public ::testing::Test {
 protected:
  std::string installed = PseudoRandomBytes(100'000, 1);
  std::string target = installed.substr(0, 95'000) + PseudoRandomBytes(5'000, 2);
  std::string sha = Sha256Hex(target);
};

TEST_F(DeltaFetch, AppliesADeltaAgainstTheInstalledModel) {
  FakeArtifactServer server{
      target, FetchedArtifact{*CreateDelta(installed, target, 19), Sha256Hex(installed)}};
  auto got = FetchWithDelta(installed, sha, target.size(), server.Fn());
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_TRUE(got->used_delta);
  EXPECT_EQ(got->artifact, target);
  EXPECT_LT(got->bytes_transferred, 10'000u);
  EXPECT_EQ(server.asked, std::vector<std::string>{Sha256Hex(installed)});
}

TEST_F(DeltaFetch, FallsBackToTheFullDownloadOnACorruptDelta) {
  std::string delta = *CreateDelta(installed, target, 19);
  delta[delta.size() / 2] ^= 0x11;
  FakeArtifactServer server{target, FetchedArtifact{delta, Sha256Hex(installed)}};
  auto got = FetchWithDelta(installed, sha, target.size(), server.Fn());
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_FALSE(got->used_delta);
  EXPECT_EQ(got->artifact, target);
  EXPECT_FALSE(got->fallback_reason.empty());
  EXPECT_EQ(server.asked.size(), 2u);
  EXPECT_EQ(server.asked[1], "");
}

TEST_F(DeltaFetch, RefusesADeltaMadeForAnotherBase) {
  std::string other = PseudoRandomBytes(100'000, 3);
  FakeArtifactServer server{target,
                            FetchedArtifact{*CreateDelta(other, target, 19), Sha256Hex(other)}};
  auto got = FetchWithDelta(installed, sha, target.size(), server.Fn());
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_FALSE(got->used_delta);
  EXPECT_NE(got->fallback_reason.find("not the installed"), std::string::npos);
  EXPECT_EQ(got->artifact, target);
}

TEST_F(DeltaFetch, ADeltaThatDecodesToOtherBytesIsCaughtByTheHash) {
  // Claims the right base but encodes a different target: only the hash check can tell.
  std::string wrong = target;
  wrong[10] ^= 1;
  FakeArtifactServer server{
      target, FetchedArtifact{*CreateDelta(installed, wrong, 19), Sha256Hex(installed)}};
  auto got = FetchWithDelta(installed, sha, target.size(), server.Fn());
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_FALSE(got->used_delta);
  EXPECT_NE(got->fallback_reason.find("sha256"), std::string::npos);
  EXPECT_EQ(got->artifact, target);
}

TEST_F(DeltaFetch, ServerWithoutDeltasAndFirstInstallUseTheFullArtifact) {
  FakeArtifactServer server{target, std::nullopt};
  auto got = FetchWithDelta(installed, sha, target.size(), server.Fn());
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_FALSE(got->used_delta);
  EXPECT_TRUE(got->fallback_reason.empty());
  EXPECT_EQ(server.asked.size(), 1u);  // the full answer to the delta request is verified

  FakeArtifactServer fresh{target, std::nullopt};
  got = FetchWithDelta("", sha, target.size(), fresh.Fn());
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(fresh.asked, std::vector<std::string>{""});
}

TEST_F(DeltaFetch, TamperedFullDownloadIsAnError) {
  FakeArtifactServer server{target + "x", std::nullopt};
  auto got = FetchWithDelta(installed, sha, target.size(), server.Fn());
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code, Errc::kMismatch);
  EXPECT_NE(got.error().message.find("length"), std::string::npos);
}

}  // namespace
}  // namespace edgeloop::edge
