// Small helpers shared by the benchmark programs: machine description and JSON output.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace edgeloop::bench {

// CPU model, core count, memory, compiler and build type, for the JSON header.
nlohmann::json MachineInfo();
// Writes JSON (pretty) to path, creating parent folders; exits with a message on failure.
void WriteJson(const std::string& path, const nlohmann::json& j);

}  // namespace edgeloop::bench
