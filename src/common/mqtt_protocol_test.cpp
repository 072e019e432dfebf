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

TEST(MqttProtocol, DeviceTopicsSplitIntoDeviceAndLeaf) {
  auto t = SplitDeviceTopic("edgeloop/devices/cam-1/telemetry");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->first, "cam-1");
  EXPECT_EQ(t->second, "telemetry");
  EXPECT_EQ(UpdateTopic("cam-1"), "edgeloop/devices/cam-1/update");
  for (const char* other : {"edgeloop/devices//events", "edgeloop/devices/a/b/events",
                            "edgeloop/devices/a/", "edgeloop/devices/a", "x/edgeloop/devices/a/e"})
    EXPECT_FALSE(SplitDeviceTopic(other).has_value()) << other;
}

TEST(MqttProtocol, EventAcksRoundTripAndAreNotSampleAcks) {
  Ack stored;
  stored.is_event = true;
  stored.event_id = 7;
  EXPECT_EQ(EncodeAck(stored), R"({"event":7,"stored":true})");
  auto back = ParseAck(EncodeAck(stored));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_TRUE(back->is_event);
  EXPECT_TRUE(back->ok());
  EXPECT_EQ(back->event_id, 7u);
  EXPECT_EQ(back->acked_through, 0u);

  Ack refused = stored;
  refused.error = "event phase must be one of ...";
  refused.status = 400;
  auto r = ParseAck(EncodeAck(refused));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->is_event);
  EXPECT_FALSE(r->ok());
  EXPECT_EQ(r->status, 400);
  // A sample ack is never taken for an event's, nor the reverse.
  auto sample = ParseAck(R"({"acked_through":3,"accepted":1,"duplicates":0})");
  ASSERT_TRUE(sample.ok());
  EXPECT_FALSE(sample->is_event);
  for (const char* bad : {R"({"event":-1,"stored":true})", R"({"event":1})",
                          R"({"event":"1","stored":true})", R"({"event":1,"stored":false})"})
    EXPECT_FALSE(ParseAck(bad).ok()) << bad;
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
