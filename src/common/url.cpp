#include "common/url.hpp"

namespace edgeloop {

std::string ServerUrl::ToString() const {
  const bool v6 = host.find(':') != std::string::npos;
  return "https://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Result<ServerUrl> ParseServerUrl(const std::string& url) {
  auto bad = [&url](const std::string& what) {
    return Error(Errc::kInvalidArgument, "server URL '" + url.substr(0, 200) + "': " + what);
  };
  if (url.size() > 2048) return bad("longer than 2048 characters");
  const std::string scheme = "https://";
  if (url.rfind(scheme, 0) != 0) return bad("must start with https://");
  std::string rest = url.substr(scheme.size());
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.find_first_of("/?#@ \t\r\n") != std::string::npos)
    return bad("only https://host[:port] is allowed (no path, query, user or spaces)");
  ServerUrl out;
  std::string port;
  if (!rest.empty() && rest[0] == '[') {
    const size_t close = rest.find(']');
    if (close == std::string::npos) return bad("IPv6 host has no closing ']'");
    out.host = rest.substr(1, close - 1);
    const std::string after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return bad("unexpected text after the IPv6 host");
      port = after.substr(1);
      if (port.empty()) return bad("empty port");
    }
  } else {
    const size_t colon = rest.find(':');
    out.host = rest.substr(0, colon);
    if (colon != std::string::npos) {
      port = rest.substr(colon + 1);
      if (port.empty()) return bad("empty port");
    }
  }
  if (out.host.empty()) return bad("no host");
  if (!port.empty()) {
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
      return bad("port must be a number from 1 to 65535");
    out.port = std::stoi(port);
    if (out.port < 1 || out.port > 65535) return bad("port must be a number from 1 to 65535");
  }
  return out;
}

}  // namespace edgeloop
