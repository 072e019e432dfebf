// edgeloop inspect: what an ONNX model takes and gives, which ops it uses (each with its node
// count, the ones the runtime lacks marked), how many parameters it has, its metadata, and
// the memory and arithmetic the runtime plans for it. Exit 3 when any op is not supported.
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/command.hpp"
#include "common/file.hpp"
#include "runtime/model.hpp"

namespace edgeloop::cli {
namespace {

std::string Dims(const runtime::ValueInfo& v) {
  if (!v.has_shape) return "?";
  std::string s = "[";
  for (size_t i = 0; i < v.dims.size(); ++i)
    s += (i ? "," : "") + (v.dims[i] ? std::to_string(*v.dims[i]) : std::string("?"));
  return s + "]";
}

// Every op with its count; the unsupported ones marked.
nlohmann::json OpTable(const std::vector<runtime::OpUse>& uses) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& u : uses)
    a.push_back({{"op", u.op_type}, {"count", u.count}, {"supported", u.supported}});
  return a;
}

void PrintOps(const std::vector<runtime::OpUse>& uses, size_t nodes) {
  std::printf("  %zu nodes, %zu op types (* = not supported by the edgeloop runtime):\n", nodes,
              uses.size());
  for (const auto& u : uses)
    std::printf("    %c %-24s x%lld\n", u.supported ? ' ' : '*', u.op_type.c_str(),
                static_cast<long long>(u.count));
}

// QDQ patterns: how many became integer kernels, and each one left in float with its reason.
nlohmann::json QdqJson(const std::vector<runtime::QdqPattern>& ps) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& p : ps)
    a.push_back({{"node", p.node},
                 {"op", p.op_type},
                 {"fused", !p.fused_into.empty()},
                 {"fused_into", p.fused_into},
                 {"reason", p.reason}});
  return a;
}

void PrintQdq(const std::vector<runtime::QdqPattern>& ps) {
  if (ps.empty()) return;
  std::map<std::string, int> into;
  size_t fused = 0;
  for (const auto& p : ps)
    if (!p.fused_into.empty()) ++fused, ++into[p.op_type + " -> " + p.fused_into];
  std::printf(
      "  QDQ: %zu of %zu nodes between DequantizeLinear and QuantizeLinear fused into "
      "integer kernels",
      fused, ps.size());
  const char* sep = " (";
  for (const auto& [k, n] : into) std::printf("%s%s x%d", sep, k.c_str(), n), sep = ", ";
  std::printf("%s\n", fused ? ")" : "");
  for (const auto& p : ps)
    if (p.fused_into.empty())
      std::printf("    float: %s '%s': %s\n", p.op_type.c_str(), p.node.c_str(), p.reason.c_str());
}

int Run(const std::string& path, bool json) {
  // The graph first: its ops are reported even when the runtime cannot load it.
  const runtime::LoadLimits limits;
  auto bytes = ReadFile(path, limits.max_file_bytes);
  if (!bytes.ok()) return ReportError("inspect", bytes.error());
  auto graph = runtime::ParseOnnxModel(*bytes, path, limits);
  if (!graph.ok()) return ReportError("inspect", graph.error());
  const auto uses = runtime::OpSupport(*graph);
  std::vector<std::string> missing;
  for (const auto& u : uses)
    if (!u.supported) missing.push_back(u.op_type);
  if (!missing.empty()) {
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
    if (json) {
      std::printf("%s\n", nlohmann::json{{"file", path},
                                         {"opset", graph->opset},
                                         {"nodes", graph->nodes.size()},
                                         {"ops", OpTable(uses)},
                                         {"unsupported", missing}}
                              .dump(2)
                              .c_str());
    } else {
      std::printf("%s: ONNX ir %lld, opset %lld, producer '%s'\n", path.c_str(),
                  static_cast<long long>(graph->ir_version), static_cast<long long>(graph->opset),
                  graph->producer.c_str());
      PrintOps(uses, graph->nodes.size());
    }
    std::fprintf(stderr, "edgeloop inspect: %zu op type(s) not supported by the runtime: %s\n",
                 missing.size(), list.c_str());
    return kExitBadInput;
  }
  auto model = runtime::Model::Load(path);
  if (!model.ok()) return ReportError("inspect", model.error());
  const auto& g = model->graph();
  auto values = [](const std::vector<runtime::ValueInfo>& list) {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& v : list)
      a.push_back({{"name", v.name}, {"type", runtime::DTypeName(v.dtype)}, {"shape", Dims(v)}});
    return a;
  };
  const auto plan = model->plan_stats();
  nlohmann::json j = {{"file", path},
                      {"bytes", std::filesystem::file_size(path)},
                      {"ir_version", g.ir_version},
                      {"opset", g.opset},
                      {"producer", g.producer},
                      {"inputs", values(model->inputs())},
                      {"outputs", values(model->outputs())},
                      {"nodes", graph->nodes.size()},
                      {"ops", OpTable(uses)},
                      {"unsupported", nlohmann::json::array()},
                      {"qdq", QdqJson(model->qdq_patterns())},
                      {"planned_flops", plan.flops},
                      {"parameters", model->ParameterCount()},
                      {"parameter_bytes", model->ParameterBytes()},
                      {"planned_arena_bytes", plan.arena_bytes},
                      {"metadata", g.metadata}};
  if (json) {
    std::printf("%s\n", j.dump(2).c_str());
    return kExitOk;
  }
  std::printf("%s: ONNX ir %lld, opset %lld, producer '%s', %llu bytes\n", path.c_str(),
              static_cast<long long>(g.ir_version), static_cast<long long>(g.opset),
              g.producer.c_str(),
              static_cast<unsigned long long>(std::filesystem::file_size(path)));
  for (const auto& v : model->inputs())
    std::printf("  input  %-16s %-8s %s\n", v.name.c_str(), runtime::DTypeName(v.dtype),
                Dims(v).c_str());
  for (const auto& v : model->outputs())
    std::printf("  output %-16s %-8s %s\n", v.name.c_str(), runtime::DTypeName(v.dtype),
                Dims(v).c_str());
  PrintOps(uses, graph->nodes.size());
  PrintQdq(model->qdq_patterns());
  std::printf(
      "  parameters %lld (%zu bytes); planned activation memory %zu bytes, %.3g MFLOP per "
      "inference (batch 1)\n",
      static_cast<long long>(model->ParameterCount()), model->ParameterBytes(), plan.arena_bytes,
      plan.flops / 1e6);
  for (const auto& [k, v] : g.metadata) std::printf("  %s = %s\n", k.c_str(), v.c_str());
  return kExitOk;
}

}  // namespace

void RegisterInspect(CLI::App& root) {
  auto path = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  auto* sub = root.add_subcommand(
      "inspect",
      "Show an ONNX model's inputs, outputs, ops (marking those the runtime lacks: exit 3), "
      "parameters and metadata");
  sub->add_option("model", *path, "ONNX model file")->required();
  sub->add_flag("--json", *json, "print as JSON");
  SetAction(sub, [path, json] { return Run(*path, *json); });
}

}  // namespace edgeloop::cli
