#include "common/url.hpp"

#include <functional>

namespace edgeloop {
namespace {

std::string Bracketed(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

// "host[:port]" or "[v6][:port]" into host and port (port stays as it is when absent).
Status ParseAuthority(const std::string& rest, std::string& host, int& port,
                      const std::function<Error(const std::string&)>& bad) {
  std::string digits;
  bool has_port = false;
  if (!rest.empty() && rest[0] == '[') {
    const size_t close = rest.find(']');
    if (close == std::string::npos) return bad("IPv6 host has no closing ']'");
    host = rest.substr(1, close - 1);
    const std::string after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return bad("unexpected text after the IPv6 host");
      digits = after.substr(1);
      has_port = true;
    }
  } else {
    const size_t colon = rest.find(':');
    host = rest.substr(0, colon);
    if (colon != std::string::npos) {
      digits = rest.substr(colon + 1);
      has_port = true;
    }
  }
  if (host.empty()) return bad("no host");
  if (has_port && digits.empty()) return bad("empty port");
  if (has_port) {
    if (digits.size() > 5 || digits.find_first_not_of("0123456789") != std::string::npos)
      return bad("port must be a number from 1 to 65535");
    port = std::stoi(digits);
    if (port < 1 || port > 65535) return bad("port must be a number from 1 to 65535");
  }
  return Status::Ok();
}

}  // namespace

std::string ServerUrl::ToString() const {
  return "https://" + Bracketed(host) + ":" + std::to_string(port);
}

std::string HostPort::ToString() const {
  return Bracketed(host) + ":" + std::to_string(port);
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
  EDGELOOP_RETURN_IF_ERROR(ParseAuthority(rest, out.host, out.port, bad));
  return out;
}

Result<HostPort> ParseHostPort(const std::string& text, const std::string& what) {
  auto bad = [&](const std::string& why) {
    return Error(Errc::kInvalidArgument, what + " '" + text.substr(0, 200) + "': " + why);
  };
  if (text.size() > 1024) return bad("longer than 1024 characters");
  if (text.find("://") != std::string::npos) return bad("give host:port, without a scheme");
  if (text.find_first_of("/?#@ \t\r\n") != std::string::npos)
    return bad("only host:port is allowed (no path, user or spaces)");
  HostPort out;
  EDGELOOP_RETURN_IF_ERROR(ParseAuthority(text, out.host, out.port, bad));
  if (out.port == 0) return bad("no port (host:port)");
  return out;
}

}  // namespace edgeloop
