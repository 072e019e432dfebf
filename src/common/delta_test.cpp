#include "common/delta.hpp"

#include <gtest/gtest.h>

#include <random>

#include "common/hash.hpp"
#include "common/test_bytes.hpp"

namespace edgeloop {
namespace {

// A "fine-tuned" version of base: the same bytes with a few regions rewritten, as when only
// a model's head changes.
std::string Edit(std::string s, uint32_t seed) {
  std::mt19937 rng(seed);
  for (int region = 0; region < 4; ++region) {
    size_t at = rng() % (s.size() - 512);
    for (size_t i = 0; i < 512; ++i) s[at + i] = static_cast<char>(rng() & 0xff);
  }
  return s;
}

TEST(Delta, RoundTripIsByteIdenticalAndSmallForAnEditedBase) {
  std::string base = testing::PseudoRandomBytes(1 << 20, 1);
  std::string target = Edit(base, 2);
  auto delta = CreateDelta(base, target, 19);
  ASSERT_TRUE(delta.ok()) << delta.error().message;
  // 4 rewritten regions of 512 random bytes cannot be compressed; the rest is references.
  EXPECT_LT(delta->size(), 16u * 1024) << "delta of a 1 MiB target with 2 KiB changed";
  auto out = ApplyDelta(base, *delta, target.size());
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(Sha256Hex(*out), Sha256Hex(target));
  EXPECT_EQ(*out, target);
}

TEST(Delta, WorksAcrossSizeChangesAndEmptyInputs) {
  std::string base = testing::PseudoRandomBytes(300'000, 3);
  std::string longer = base + testing::PseudoRandomBytes(50'000, 4);
  for (const std::string& target : {longer, base.substr(1000, 100'000), std::string()}) {
    auto delta = CreateDelta(base, target, 3);
    ASSERT_TRUE(delta.ok()) << delta.error().message;
    auto out = ApplyDelta(base, *delta, target.size());
    ASSERT_TRUE(out.ok()) << out.error().message;
    EXPECT_EQ(*out, target);
  }
  auto from_nothing = CreateDelta("", "hello", 3);
  ASSERT_TRUE(from_nothing.ok());
  EXPECT_EQ(*ApplyDelta("", *from_nothing, 5), "hello");
}

TEST(Delta, WrongBaseIsAnErrorOrAHashMismatchNeverTheTarget) {
  std::string base = testing::PseudoRandomBytes(200'000, 5);
  std::string target = Edit(base, 6);
  std::string other = testing::PseudoRandomBytes(200'000, 7);
  auto delta = CreateDelta(base, target, 19);
  ASSERT_TRUE(delta.ok());
  for (const std::string& wrong : {other, Edit(base, 8), std::string()}) {
    auto out = ApplyDelta(wrong, *delta, target.size());
    if (out.ok()) {
      EXPECT_NE(Sha256Hex(*out), Sha256Hex(target));
    } else {
      EXPECT_EQ(out.error().code, Errc::kFormat) << out.error().message;
    }
  }
}

TEST(Delta, RefusesOutputAboveTheLimitBeforeDecoding) {
  std::string base = testing::PseudoRandomBytes(10'000, 9);
  std::string target = base + base;
  auto delta = CreateDelta(base, target, 3);
  ASSERT_TRUE(delta.ok());
  auto out = ApplyDelta(base, *delta, target.size() - 1);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().code, Errc::kResourceExhausted);
  EXPECT_NE(out.error().message.find("exceeds the limit"), std::string::npos);
}

TEST(Delta, CorruptOrTruncatedDeltaIsAFormatError) {
  std::string base = testing::PseudoRandomBytes(100'000, 10);
  std::string target = Edit(base, 11);
  auto delta = CreateDelta(base, target, 19);
  ASSERT_TRUE(delta.ok());
  std::string truncated = delta->substr(0, delta->size() / 2);
  std::string flipped = *delta;
  flipped[flipped.size() / 2] ^= 0x5a;
  for (const std::string& bad : {std::string("not a delta"), std::string(), truncated, flipped}) {
    auto out = ApplyDelta(base, bad, 1 << 20);
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.error().code, Errc::kFormat) << out.error().message;
  }
}

TEST(Delta, RejectsAnInvalidLevel) {
  EXPECT_EQ(CreateDelta("a", "b", 0).error().code, Errc::kInvalidArgument);
  EXPECT_EQ(CreateDelta("a", "b", 99).error().code, Errc::kInvalidArgument);
}

}  // namespace
}  // namespace edgeloop
