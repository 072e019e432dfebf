#include "cli/server_client.hpp"

#include <algorithm>
#include <cstdio>

#include "cli/command.hpp"

namespace edgeloop::cli {

std::shared_ptr<ServerFlags> AddServerFlags(CLI::App* sub, bool with_json) {
  auto f = std::make_shared<ServerFlags>();
  sub->add_option("--server", f->client.server,
                  "server URL (default: $EDGELOOP_SERVER or https://127.0.0.1:8443)");
  sub->add_option("--token", f->client.token,
                  "operator token (default: $EDGELOOP_TOKEN or <data>/admin.token)");
  sub->add_option("--ca", f->client.ca_file, "fleet CA certificate, PEM (default: <data>/ca.crt)");
  sub->add_option("--data", f->client.data_dir,
                  "the server's data folder, for the default token and CA (default: "
                  "edgeloop-data)");
  if (with_json) sub->add_flag("--json", f->json, "print JSON instead of a table");
  return f;
}

Result<cloud::OperatorClient> ConnectToServer(const ServerFlags& flags) {
  EDGELOOP_ASSIGN_OR_RETURN(auto options, cloud::ResolveClientOptions(flags.client));
  return cloud::OperatorClient::Create(options);
}

int RunServerRequest(
    const std::string& cmd, const ServerFlags& flags,
    const std::function<Result<nlohmann::json>(const cloud::OperatorClient&)>& request,
    const std::function<void(const nlohmann::json&)>& table) {
  auto client = ConnectToServer(flags);
  if (!client.ok()) return ReportError(cmd, client.error());
  auto answer = request(*client);
  if (!answer.ok()) return ReportError(cmd, answer.error());
  if (!PrintJsonIfAsked(flags, *answer)) table(*answer);
  return kExitOk;
}

void PrintTable(const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(header.size());
  for (size_t c = 0; c < header.size(); ++c) width[c] = header[c].size();
  for (const auto& r : rows)
    for (size_t c = 0; c < r.size() && c < width.size(); ++c)
      width[c] = std::max(width[c], r[c].size());
  auto print = [&](const std::vector<std::string>& r) {
    std::string line;
    for (size_t c = 0; c < r.size() && c < width.size(); ++c) {
      line += r[c];
      if (c + 1 < r.size()) line += std::string(width[c] - r[c].size() + 2, ' ');
    }
    std::printf("%s\n", line.c_str());
  };
  print(header);
  for (const auto& r : rows) print(r);
}

bool PrintJsonIfAsked(const ServerFlags& flags, const nlohmann::json& j) {
  if (flags.json) std::printf("%s\n", j.dump(2).c_str());
  return flags.json;
}

std::string Cell(const nlohmann::json& v) {
  if (v.is_null()) return "-";
  return v.is_string() ? v.get<std::string>() : v.dump();
}

}  // namespace edgeloop::cli
