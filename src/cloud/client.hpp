// An HTTPS client for operators of an edgeloop server: what the `edgeloop fleet`, `models`,
// `artifacts`, `deploy` and `datasets snapshot*` commands use.
//
// The server's certificate must chain to the fleet CA given as a PEM file (pinned: the system
// trust store is not consulted). Every request carries the bearer token. Errors: kUnavailable
// when the server cannot be reached (naming the URL); an HTTP error answer becomes an Error
// with the server's message and a category from its status (400 kInvalidArgument, 401/403
// kPermission, 404 kNotFound, 413/429 kResourceExhausted, else kInternal). Not thread-safe;
// each request opens its own connection.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "common/result.hpp"

namespace edgeloop::cloud {

struct ClientOptions {
  std::string server;    // https://host:port
  std::string token;     // operator bearer token
  std::string ca_file;   // fleet CA certificate (PEM)
  std::string data_dir;  // where admin.token and ca.crt are looked up when not given
};

// Fills what the flags left empty: server from EDGELOOP_SERVER, else https://127.0.0.1:8443;
// token from EDGELOOP_TOKEN, else <data_dir>/admin.token; CA from <data_dir>/ca.crt.
// kInvalidArgument when no token or CA can be found, naming where it looked.
Result<ClientOptions> ResolveClientOptions(ClientOptions flags);

class OperatorClient {
 public:
  static Result<OperatorClient> Create(const ClientOptions& options);

  Result<nlohmann::json> GetJson(const std::string& path) const;
  Result<nlohmann::json> PostJson(const std::string& path, const nlohmann::json& body) const;
  Result<nlohmann::json> PutJson(const std::string& path, const nlohmann::json& body) const;
  Result<nlohmann::json> PostBytes(const std::string& path, const std::string& bytes,
                                   const std::string& content_type) const;
  // The raw body of a GET (exports, Markdown cards).
  Result<std::string> GetBytes(const std::string& path) const;

  const std::string& url() const { return url_; }

 private:
  OperatorClient() = default;
  Result<std::string> Send(const std::string& method, const std::string& path,
                           const std::string& body, const std::string& content_type) const;
  Result<nlohmann::json> ParseAnswer(const std::string& path,
                                     const Result<std::string>& body) const;

  std::string url_, host_, token_, ca_file_;
  int port_ = 0;
};

}  // namespace edgeloop::cloud
