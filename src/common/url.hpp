// The server URL that agents and the operator CLI are given: "https://host[:port][/]".
// One parser for both, so they agree on what is valid: the scheme must be https, the port
// (443 when absent) 1-65535 in digits only, an IPv6 host in brackets, and nothing after the
// authority but one optional slash (no path, query, fragment or user info).
//
// An MQTT broker is given as "host:port" alone (agent.yaml upload.mqtt_broker, `edgeloop
// server --mqtt-broker`): the same host and port rules, the port required.
#pragma once

#include <string>

#include "common/result.hpp"

namespace edgeloop {

struct ServerUrl {
  std::string host;  // without brackets for IPv6
  int port = 443;
  // "https://host:port", IPv6 hosts in brackets.
  std::string ToString() const;
};

// Errors: kInvalidArgument naming what is wrong and quoting the URL.
Result<ServerUrl> ParseServerUrl(const std::string& url);

struct HostPort {
  std::string host;  // without brackets for IPv6
  int port = 0;
  // "host:port", IPv6 hosts in brackets.
  std::string ToString() const;
};

// "host:port" or "[v6]:port". `what` names the address in errors ("MQTT broker").
// Errors: kInvalidArgument naming what is wrong and quoting the text.
Result<HostPort> ParseHostPort(const std::string& text, const std::string& what);

}  // namespace edgeloop
