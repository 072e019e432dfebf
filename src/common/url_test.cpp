#include "common/url.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace edgeloop {
namespace {

TEST(ServerUrl, ParsesHostAndPort) {
  auto u = ParseServerUrl("https://cloud.example:8443/");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "cloud.example");
  EXPECT_EQ(u->port, 8443);
  EXPECT_EQ(u->ToString(), "https://cloud.example:8443");
  auto d = ParseServerUrl("https://10.0.0.1");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->port, 443);
  auto v6 = ParseServerUrl("https://[::1]:9000");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 9000);
  EXPECT_EQ(v6->ToString(), "https://[::1]:9000");
}

TEST(ServerUrl, RefusesWhatIsNotHttpsHostPort) {
  const std::vector<std::string> cases = {
      "http://host:80",   "host:8443",
      "https://",         "https://:8443",
      "https://host:",    "https://host:99999",
      "https://host:0",   "https://host:-1",
      "https://host:80a", "https://host:8443/v1",
      "https://host?x=1", "https://user@host",
      "https://[::1",     "https://[::1]x",
      "https://ho st",    std::string("https://") + std::string(3000, 'a')};
  for (const std::string& bad : cases) {
    auto u = ParseServerUrl(bad);
    EXPECT_FALSE(u.ok()) << bad;
    if (!u.ok()) {
      EXPECT_EQ(u.error().code, Errc::kInvalidArgument);
      EXPECT_NE(u.error().message.find("server URL"), std::string::npos);
    }
  }
}

TEST(HostPort, ParsesBrokerAddresses) {
  auto a = ParseHostPort("broker.example:8883", "MQTT broker");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "broker.example");
  EXPECT_EQ(a->port, 8883);
  EXPECT_EQ(a->ToString(), "broker.example:8883");
  auto v6 = ParseHostPort("[::1]:1883", "MQTT broker");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->ToString(), "[::1]:1883");
}

TEST(HostPort, RefusesWhatIsNotHostPort) {
  for (const std::string bad :
       {"broker", "broker:", ":8883", "broker:0", "broker:70000", "mqtts://broker:8883",
        "broker:8883/x", "user@broker:1", "[::1]", "[::1:1883", "broker:88a"}) {
    auto a = ParseHostPort(bad, "MQTT broker");
    EXPECT_FALSE(a.ok()) << bad;
    if (!a.ok()) {
      EXPECT_EQ(a.error().message.rfind("MQTT broker '", 0), 0u) << a.error().message;
    }
  }
}

}  // namespace
}  // namespace edgeloop
