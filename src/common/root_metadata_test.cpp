// The root role's rules (TUF 5.3) on real Ed25519 keys: each attack a root update or a targets
// document can carry is refused with the reason named.
#include "common/root_metadata.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/crypto.hpp"

namespace edgeloop {
namespace {

struct Key {
  std::string priv, pub, id;
};

Key NewKey() {
  Key k;
  k.priv = *crypto::GenerateEd25519KeyPem();
  k.pub = *crypto::Ed25519PublicKeyPem(k.priv);
  k.id = *crypto::KeyId(k.pub);
  return k;
}

RootMetadata RootOf(uint64_t version, const std::vector<Key>& root_keys, uint32_t threshold,
                    const Key& targets, int64_t expires = 4'000'000'000) {
  RootMetadata r;
  r.version = version;
  r.expires_unix = expires;
  for (const auto& k : root_keys) {
    r.keys[k.id] = k.pub;
    r.root.keyids.push_back(k.id);
  }
  r.root.threshold = threshold;
  r.keys[targets.id] = targets.pub;
  r.targets = {{targets.id}, 1};
  return r;
}

UpdateMetadata Meta(uint64_t version, int64_t expires) {
  UpdateMetadata m;
  m.deployment_target = "dev-1";
  m.version = version;
  m.expires_unix = expires;
  m.target = {"model.onnx", "clf:2", std::string(64, 'a'), 100};
  return m;
}

class RootRole : public ::testing::Test {
 protected:
  Key legacy_ = NewKey(), a_ = NewKey(), b_ = NewKey(), c_ = NewKey(), t2_ = NewKey();
  RootMetadata v1_ = *ImplicitRoot(legacy_.pub);
};

TEST_F(RootRole, ImplicitRootIsVersionOneWithThePinnedKeyForBothRoles) {
  EXPECT_EQ(v1_.version, 1u);
  EXPECT_EQ(v1_.root.keyids, std::vector<std::string>{legacy_.id});
  EXPECT_EQ(v1_.targets.keyids, std::vector<std::string>{legacy_.id});
  EXPECT_TRUE(CheckRootFresh(v1_, 4'000'000'000).ok());  // never expires
}

TEST_F(RootRole, AcceptsTheNextRootSignedByOldAndNewThresholds) {
  RootMetadata v2 = RootOf(2, {a_, b_, c_}, 2, legacy_);
  std::string doc = *SignRootMetadata(v2, {legacy_.priv, a_.priv, b_.priv});
  auto next = VerifyNextRoot(v1_, doc);
  ASSERT_TRUE(next.ok()) << next.error().message;
  EXPECT_EQ(next->version, 2u);
  EXPECT_EQ(next->root.threshold, 2u);
  // A second step, rotating the targets key: signed by 2 of a, b, c (old and new root alike).
  RootMetadata v3 = RootOf(3, {a_, b_, c_}, 2, t2_);
  auto third = VerifyNextRoot(*next, *SignRootMetadata(v3, {b_.priv, c_.priv}));
  ASSERT_TRUE(third.ok()) << third.error().message;
  EXPECT_EQ(third->targets.keyids, std::vector<std::string>{t2_.id});
}

TEST_F(RootRole, RefusesARootWithoutTheOldRootsSignature) {
  RootMetadata v2 = RootOf(2, {a_}, 1, legacy_);
  auto next = VerifyNextRoot(v1_, *SignRootMetadata(v2, {a_.priv}));
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(next.error().code, Errc::kPermission);
  EXPECT_NE(next.error().message.find("by the keys of root 1"), std::string::npos);
}

TEST_F(RootRole, RefusesARootBelowItsOwnThreshold) {
  RootMetadata v2 = RootOf(2, {a_, b_, c_}, 2, legacy_);
  auto next = VerifyNextRoot(v1_, *SignRootMetadata(v2, {legacy_.priv, a_.priv}));
  ASSERT_FALSE(next.ok());
  EXPECT_NE(next.error().message.find("by its own root keys has 1 valid signature(s), the "
                                      "threshold is 2"),
            std::string::npos)
      << next.error().message;
}

TEST_F(RootRole, OneSignatureRepeatedCountsOnce) {
  RootMetadata v2 = RootOf(2, {a_, b_}, 2, legacy_);
  std::string doc = *SignRootMetadata(v2, {legacy_.priv, a_.priv});
  auto j = nlohmann::json::parse(doc);
  j["signatures"].push_back(j["signatures"][1]);  // a's signature twice
  EXPECT_FALSE(VerifyNextRoot(v1_, j.dump()).ok());
}

TEST_F(RootRole, RefusesAKeyListedUnderAnotherId) {
  RootMetadata v2 = RootOf(2, {a_}, 1, legacy_);
  auto j = nlohmann::json::parse(*SignRootMetadata(v2, {legacy_.priv, a_.priv}));
  j["signed"]["keys"][std::string(64, 'f')] = j["signed"]["keys"][a_.id];
  auto parsed = ParseRootMetadata(j.dump());
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.error().message.find("does not match its keyid"), std::string::npos);
}

TEST_F(RootRole, RefusesARootThatSkipsAVersionOrGoesBack) {
  RootMetadata v3 = RootOf(3, {a_}, 1, legacy_);
  auto skip = VerifyNextRoot(v1_, *SignRootMetadata(v3, {legacy_.priv, a_.priv}));
  ASSERT_FALSE(skip.ok());
  EXPECT_NE(skip.error().message.find("skips a version"), std::string::npos);
  RootMetadata v2 = RootOf(2, {a_}, 1, legacy_);
  auto trusted = *VerifyNextRoot(v1_, *SignRootMetadata(v2, {legacy_.priv, a_.priv}));
  RootMetadata again = RootOf(2, {a_}, 1, t2_);
  auto back = VerifyNextRoot(trusted, *SignRootMetadata(again, {a_.priv}));
  ASSERT_FALSE(back.ok());
  EXPECT_NE(back.error().message.find("rollback"), std::string::npos);
}

TEST_F(RootRole, FreezeAnExpiredRootRefusesEveryTargetsDocument) {
  RootMetadata v2 = RootOf(2, {a_}, 1, t2_, /*expires=*/1000);
  auto trusted = *VerifyNextRoot(v1_, *SignRootMetadata(v2, {legacy_.priv, a_.priv}));
  std::string targets = *SignUpdateMetadata(Meta(1, 5000), t2_.priv);
  EXPECT_TRUE(VerifyTargetsWithRoot(targets, trusted, 999, 0).ok());
  auto frozen = VerifyTargetsWithRoot(targets, trusted, 1000, 0);
  ASSERT_FALSE(frozen.ok());
  EXPECT_NE(frozen.error().message.find("freeze"), std::string::npos);
}

TEST_F(RootRole, MixAndMatchTargetsSignedByARetiredKeyAreRefused) {
  RootMetadata v2 = RootOf(2, {a_}, 1, t2_);
  auto trusted = *VerifyNextRoot(v1_, *SignRootMetadata(v2, {legacy_.priv, a_.priv}));
  // Signed by the key root 1 trusted for targets, which root 2 no longer lists for that role.
  std::string old = *SignUpdateMetadata(Meta(5, 4'000'000'000), legacy_.priv);
  EXPECT_TRUE(VerifyTargetsWithRoot(old, v1_, 100, 0).ok());
  auto refused = VerifyTargetsWithRoot(old, trusted, 100, 0);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::kPermission);
  // A root document is not update metadata, even when its signer is a targets key.
  EXPECT_FALSE(VerifyTargetsWithRoot(*SignRootMetadata(v2, {t2_.priv}), trusted, 100, 0).ok());
}

TEST_F(RootRole, TargetsRollbackAndExpiryStillRefused) {
  std::string doc = *SignUpdateMetadata(Meta(3, 2000), legacy_.priv);
  EXPECT_FALSE(VerifyTargetsWithRoot(doc, v1_, 100, 4).ok());   // rollback
  EXPECT_FALSE(VerifyTargetsWithRoot(doc, v1_, 2000, 0).ok());  // expired
  EXPECT_TRUE(VerifyTargetsWithRoot(doc, v1_, 100, 3).ok());
}

TEST_F(RootRole, EndlessDataOversizedRootRefusedBeforeParsing) {
  std::string huge = "{\"signed\": {\"pad\": \"" + std::string(kMaxRootBytes, 'x') + "\"}}";
  auto r = ParseRootMetadata(huge);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("endless data"), std::string::npos);
}

TEST_F(RootRole, SignedTimeNeedsTheTargetsKeyAndTheNonce) {
  std::string doc = *SignServerTime(1'900'000'000, "00aa11bb", legacy_.priv);
  auto t = VerifyServerTime(doc, v1_, "00aa11bb");
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(*t, 1'900'000'000);
  EXPECT_FALSE(VerifyServerTime(doc, v1_, "ffffffff").ok());  // replayed for another request
  EXPECT_FALSE(VerifyServerTime(*SignServerTime(1, "00aa11bb", a_.priv), v1_, "00aa11bb").ok());
}

TEST_F(RootRole, SplitsAKeysFile) {
  auto keys = SplitPrivateKeys(a_.priv + b_.priv);
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(keys->size(), 2u);
  EXPECT_FALSE(SplitPrivateKeys("not a key").ok());
}

}  // namespace
}  // namespace edgeloop
