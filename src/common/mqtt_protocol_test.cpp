#include "common/mqtt_protocol.hpp"

#include <gtest/gtest.h>

namespace edgeloop::mqtt {
namespace {

TEST(MqttProtocol, TopicsNameTheDevice) {
  EXPECT_EQ(SamplesTopic("cam-1"), "edgeloop/devices/cam-1/samples");
  EXPECT_EQ(AcksTopic("cam-1"), "edgeloop/devices/cam-1/acks");
  EXPECT_EQ(DeviceOfSamplesTopic("edgeloop/devices/cam-1/samples").value_or(""), "cam-1");
  for (const char* other :
       {"edgeloop/devices/cam-1/acks", "edgeloop/devices//samples", "edgeloop/devices/a/b/samples",
        "x/edgeloop/devices/a/samples", "edgeloop/devices/samples"})
    EXPECT_FALSE(DeviceOfSamplesTopic(other).has_value()) << other;
}

TEST(MqttProtocol, AcksRoundTrip) {
  Ack ok;
  ok.acked_through = 42;
  ok.accepted = 5;
  ok.duplicates = 2;
  EXPECT_EQ(EncodeAck(ok), R"({"accepted":5,"acked_through":42,"duplicates":2})");
  auto back = ParseAck(EncodeAck(ok));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_TRUE(back->ok());
  EXPECT_EQ(back->acked_through, 42u);
  EXPECT_EQ(back->duplicates, 2u);

  Ack refused;
  refused.error = "certificate revoked or device unknown";
  refused.status = 403;
  refused.last_seq = 9;
  auto r = ParseAck(EncodeAck(refused));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->ok());
  EXPECT_EQ(r->status, 403);
  EXPECT_EQ(r->last_seq, 9u);
  EXPECT_EQ(r->error, refused.error);
}

TEST(MqttProtocol, MalformedAcksAreErrors) {
  for (const char* bad : {"", "[]", "{}", R"({"acked_through":-1})", R"({"acked_through":"7"})",
                          R"({"error":""})", R"({"error":5})", "{\"acked_through\":1"}) {
    auto a = ParseAck(bad);
    EXPECT_FALSE(a.ok()) << bad;
    if (!a.ok()) {
      EXPECT_EQ(a.error().code, Errc::kFormat) << bad;
    }
  }
}

// Documents built to blow the parser up: an ack arrives from the network, so nesting, node
// count and size are bounded before anything is built.
TEST(MqttProtocol, HostileAcksAreRefusedWithinTheirBounds) {
  // Each would be a valid ack without the bounds: only the limits refuse them.
  const std::string deep =
      "{\"acked_through\":1,\"x\":" + std::string(5000, '[') + std::string(5000, ']') + "}";
  std::string wide = "{\"acked_through\":1,\"x\":[";
  for (int i = 0; i < 10000; ++i) wide += (i ? ",0" : "0");
  wide += "]}";
  const std::string big = "{\"error\":\"" + std::string(1 << 20, 'e') + "\"}";
  for (const std::string* bad : std::initializer_list<const std::string*>{&deep, &wide, &big}) {
    auto a = ParseAck(*bad);
    EXPECT_FALSE(a.ok()) << bad->substr(0, 40);
    if (!a.ok()) {
      EXPECT_EQ(a.error().code, Errc::kFormat);
    }
  }
}

}  // namespace
}  // namespace edgeloop::mqtt
