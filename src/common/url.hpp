// The server URL that agents and the operator CLI are given: "https://host[:port][/]".
// One parser for both, so they agree on what is valid: the scheme must be https, the port
// (443 when absent) 1-65535 in digits only, an IPv6 host in brackets, and nothing after the
// authority but one optional slash (no path, query, fragment or user info).
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

}  // namespace edgeloop
