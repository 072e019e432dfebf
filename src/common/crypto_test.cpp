#include "common/crypto.hpp"

#include <gtest/gtest.h>

#include "common/update_metadata.hpp"
#include "edgeloop_wire.pb.h"

namespace edgeloop {
namespace {

TEST(Ed25519, SignatureVerifiesAndTamperedMessageFails) {
  auto key = crypto::GenerateEd25519KeyPem();
  ASSERT_TRUE(key.ok()) << key.error().message;
  auto pub = crypto::Ed25519PublicKeyPem(*key);
  ASSERT_TRUE(pub.ok());
  auto sig = crypto::Ed25519Sign(*key, "model v3");
  ASSERT_TRUE(sig.ok());
  EXPECT_EQ(sig->size(), 64u);
  EXPECT_TRUE(crypto::Ed25519Verify(*pub, "model v3", *sig).ok());
  EXPECT_FALSE(crypto::Ed25519Verify(*pub, "model v4", *sig).ok());
  auto other = crypto::GenerateEd25519KeyPem();
  auto other_pub = crypto::Ed25519PublicKeyPem(*other);
  EXPECT_FALSE(crypto::Ed25519Verify(*other_pub, "model v3", *sig).ok());
}

TEST(Ed25519, RejectsGarbageKeys) {
  EXPECT_EQ(crypto::Ed25519Sign("not a key", "x").error().code, Errc::kFormat);
  auto tls_key = crypto::GenerateTlsKeyPem();
  EXPECT_FALSE(crypto::Ed25519Sign(*tls_key, "x").ok());
}

TEST(Base64, RoundTripsAllLengths) {
  std::string data;
  for (int i = 0; i < 10; ++i) {
    auto back = crypto::Base64Decode(crypto::Base64Encode(data));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, data);
    data.push_back(static_cast<char>(i * 37));
  }
  EXPECT_FALSE(crypto::Base64Decode("abc").ok());
}

TEST(Certificates, IssuedClientCertCarriesServerChosenName) {
  auto ca = crypto::CreateCertificateAuthority("edgeloop fleet CA", 3650);
  ASSERT_TRUE(ca.ok()) << ca.error().message;
  auto device_key = crypto::GenerateTlsKeyPem();
  auto csr = crypto::CreateCsr(*device_key, "i-want-to-be-admin");
  ASSERT_TRUE(csr.ok());
  auto cert = crypto::SignClientCsr(*ca, *csr, "device-7", 42, 365);
  ASSERT_TRUE(cert.ok()) << cert.error().message;
  auto info = crypto::ParseCertificate(*cert);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->common_name, "device-7");
  EXPECT_EQ(info->serial, 42u);
  EXPECT_TRUE(crypto::VerifyIssuedBy(*cert, ca->cert_pem).ok());
  auto other_ca = crypto::CreateCertificateAuthority("other", 10);
  EXPECT_FALSE(crypto::VerifyIssuedBy(*cert, other_ca->cert_pem).ok());
}

TEST(Certificates, RejectsMalformedOrTamperedCsr) {
  auto ca = crypto::CreateCertificateAuthority("ca", 10);
  EXPECT_EQ(crypto::SignClientCsr(*ca, "garbage", "d", 1, 1).error().code, Errc::kFormat);
  auto key = crypto::GenerateTlsKeyPem();
  auto csr = crypto::CreateCsr(*key, "d");
  std::string bad = *csr;
  bad[bad.size() / 2] = bad[bad.size() / 2] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(crypto::SignClientCsr(*ca, bad, "d", 1, 1).ok());
}

TEST(Certificates, ServerCertificateIsSignedByCa) {
  auto ca = crypto::CreateCertificateAuthority("ca", 10);
  auto server = crypto::IssueServerCertificate(*ca, {"localhost"}, {"127.0.0.1"}, 10);
  ASSERT_TRUE(server.ok()) << server.error().message;
  EXPECT_TRUE(crypto::VerifyIssuedBy(server->cert_pem, ca->cert_pem).ok());
  EXPECT_EQ(crypto::ParseCertificate(server->cert_pem)->common_name, "localhost");
}

UpdateMetadata SampleMetadata() {
  UpdateMetadata m;
  m.deployment_target = "group:canary";
  m.version = 5;
  m.expires_unix = 2'000'000'000;
  m.target = {"classifier.onnx", "3", std::string(64, 'a'), 1234};
  return m;
}

TEST(UpdateMetadata, SignedMetadataVerifies) {
  auto key = crypto::GenerateEd25519KeyPem();
  auto pub = crypto::Ed25519PublicKeyPem(*key);
  auto doc = SignUpdateMetadata(SampleMetadata(), *key);
  ASSERT_TRUE(doc.ok()) << doc.error().message;
  auto m = VerifyUpdateMetadata(*doc, *pub, 1'000'000'000, 5);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->version, 5u);
  EXPECT_EQ(m->target.length, 1234u);
  EXPECT_EQ(m->target.model_version, "3");
}

TEST(UpdateMetadata, RejectsRollbackExpiryTamperingAndWrongKey) {
  auto key = crypto::GenerateEd25519KeyPem();
  auto pub = crypto::Ed25519PublicKeyPem(*key);
  auto doc = SignUpdateMetadata(SampleMetadata(), *key);
  EXPECT_EQ(VerifyUpdateMetadata(*doc, *pub, 1'000'000'000, 6).error().code, Errc::kPermission);
  EXPECT_EQ(VerifyUpdateMetadata(*doc, *pub, 2'000'000'001, 0).error().code, Errc::kPermission);
  std::string tampered = *doc;
  tampered.replace(tampered.find("1234"), 4, "9999");
  EXPECT_EQ(VerifyUpdateMetadata(tampered, *pub, 1'000'000'000, 0).error().code, Errc::kPermission);
  auto other = crypto::Ed25519PublicKeyPem(*crypto::GenerateEd25519KeyPem());
  EXPECT_EQ(VerifyUpdateMetadata(*doc, *other, 1'000'000'000, 0).error().code, Errc::kPermission);
  EXPECT_EQ(VerifyUpdateMetadata("{not json", *pub, 0, 0).error().code, Errc::kFormat);
}

TEST(WireSchema, SampleBatchRoundTrips) {
  wire::SampleBatch batch;
  auto* s = batch.add_samples();
  s->set_device_id("device-1");
  s->set_sequence(17);
  s->mutable_tensor()->add_shape(28);
  s->mutable_tensor()->add_shape(28);
  s->mutable_tensor()->mutable_values()->Resize(784, 0.5f);
  s->set_has_label(true);
  s->set_label(3);
  s->set_label_source(wire::LABEL_SOURCE_HUMAN);
  (*s->mutable_metadata())["camera"] = "blur";
  std::string bytes = batch.SerializeAsString();
  wire::SampleBatch back;
  ASSERT_TRUE(back.ParseFromString(bytes));
  ASSERT_EQ(back.samples_size(), 1);
  EXPECT_EQ(back.samples(0).sequence(), 17u);
  EXPECT_EQ(back.samples(0).tensor().values_size(), 784);
  EXPECT_EQ(back.samples(0).metadata().at("camera"), "blur");
  EXPECT_FALSE(back.ParseFromString(std::string("\xff\xff\xff\xff", 4)));
}

}  // namespace
}  // namespace edgeloop
