#include "cloud/client.hpp"

#include <httplib.h>
#include <unistd.h>

#include <cstdlib>

#include "common/file.hpp"
#include "common/url.hpp"

namespace edgeloop::cloud {
namespace {

using Json = nlohmann::json;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

Errc ErrcForStatus(int status) {
  switch (status) {
    case 401:
    case 403:
      return Errc::kPermission;
    case 404:
      return Errc::kNotFound;
    case 413:
    case 429:
      return Errc::kResourceExhausted;
    default:
      return status >= 400 && status < 500 ? Errc::kInvalidArgument : Errc::kInternal;
  }
}

}  // namespace

Result<ClientOptions> ResolveClientOptions(ClientOptions o) {
  if (o.data_dir.empty()) o.data_dir = "edgeloop-data";
  if (o.server.empty()) o.server = Env("EDGELOOP_SERVER");
  if (o.server.empty()) o.server = "https://127.0.0.1:8443";
  if (o.token.empty()) o.token = Env("EDGELOOP_TOKEN");
  if (o.token.empty()) {
    auto token = ReadFile(o.data_dir + "/admin.token", 4096);
    if (!token.ok())
      return Error(Errc::kInvalidArgument,
                   "no operator token: pass --token, set EDGELOOP_TOKEN, or point --data at the "
                   "server's data folder (" +
                       o.data_dir + "/admin.token not readable)");
    o.token = *token;
  }
  while (!o.token.empty() && (o.token.back() == '\n' || o.token.back() == '\r')) o.token.pop_back();
  if (o.ca_file.empty()) o.ca_file = o.data_dir + "/ca.crt";
  if (::access(o.ca_file.c_str(), R_OK) != 0)
    return Error(Errc::kInvalidArgument,
                 "fleet CA certificate " + o.ca_file + " not readable (pass --ca or --data)");
  return o;
}

Result<OperatorClient> OperatorClient::Create(const ClientOptions& options) {
  EDGELOOP_ASSIGN_OR_RETURN(ServerUrl url, ParseServerUrl(options.server));
  OperatorClient c;
  c.host_ = url.host;
  c.port_ = url.port;
  c.url_ = url.ToString();
  c.token_ = options.token;
  c.ca_file_ = options.ca_file;
  return c;
}

Result<std::string> OperatorClient::Send(const std::string& method, const std::string& path,
                                         const std::string& body,
                                         const std::string& content_type) const {
  httplib::SSLClient client(host_, port_);
  client.set_ca_cert_path(ca_file_);
  client.enable_server_certificate_verification(true);
  client.set_connection_timeout(10);
  client.set_read_timeout(300);
  httplib::Headers headers = {{"Authorization", "Bearer " + token_}};
  auto res = method == "GET"   ? client.Get(path, headers)
             : method == "PUT" ? client.Put(path, headers, body, content_type)
                               : client.Post(path, headers, body, content_type);
  if (!res)
    return Error(Errc::kUnavailable,
                 "cannot reach " + url_ + path + ": " + httplib::to_string(res.error()));
  if (res->status >= 200 && res->status < 300) return std::move(res->body);
  Json err = Json::parse(res->body, nullptr, false);
  std::string message = res->body;
  if (err.is_object() && err.contains("error") && err["error"].contains("message") &&
      err["error"]["message"].is_string())
    message = err["error"]["message"];
  return Error(ErrcForStatus(res->status),
               message + " (HTTP " + std::to_string(res->status) + " from " + url_ + path + ")");
}

Result<std::string> OperatorClient::GetBytes(const std::string& path) const {
  return Send("GET", path, "", "");
}

Result<Json> OperatorClient::PostBytes(const std::string& path, const std::string& bytes,
                                       const std::string& content_type) const {
  return ParseAnswer(path, Send("POST", path, bytes, content_type));
}

Result<Json> OperatorClient::GetJson(const std::string& path) const {
  return ParseAnswer(path, GetBytes(path));
}

Result<Json> OperatorClient::ParseAnswer(const std::string& path,
                                         const Result<std::string>& body) const {
  if (!body.ok()) return body.error();
  Json j = Json::parse(*body, nullptr, false);
  if (j.is_discarded()) return Error(Errc::kFormat, url_ + path + ": answer is not JSON");
  return j;
}

Result<Json> OperatorClient::PostJson(const std::string& path, const Json& body) const {
  return PostBytes(path, body.dump(), "application/json");
}

Result<Json> OperatorClient::PutJson(const std::string& path, const Json& body) const {
  return ParseAnswer(path, Send("PUT", path, body.dump(), "application/json"));
}

}  // namespace edgeloop::cloud
