// What the operator commands share: the flags that say which server to talk to and with what
// token, the connection built from them, and plain-text tables.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cloud/client.hpp"

namespace edgeloop::cli {

struct ServerFlags {
  cloud::ClientOptions client;
  bool json = false;
};

// Adds --server, --token, --ca, --data and (with_json) --json to sub.
std::shared_ptr<ServerFlags> AddServerFlags(CLI::App* sub, bool with_json = true);
Result<cloud::OperatorClient> ConnectToServer(const ServerFlags& flags);

// Connects, runs one request and prints its answer: JSON with --json, else through `table`.
// Returns the exit code (errors reported as "edgeloop <cmd>: error: ...").
int RunServerRequest(
    const std::string& cmd, const ServerFlags& flags,
    const std::function<Result<nlohmann::json>(const cloud::OperatorClient&)>& request,
    const std::function<void(const nlohmann::json&)>& table);

// Left-aligned columns separated by two spaces, header first.
void PrintTable(const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows);
// Prints j indented when --json, and returns whether it did.
bool PrintJsonIfAsked(const ServerFlags& flags, const nlohmann::json& j);
// A JSON value as table text: strings bare, null as "-", the rest as JSON.
std::string Cell(const nlohmann::json& v);

}  // namespace edgeloop::cli
