// edgeloop inspect: what an ONNX model takes and gives, which ops it uses, how many
// parameters it has, its metadata, and the memory the runtime plans for it.
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/command.hpp"
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

int Run(const std::string& path, bool json) {
  auto model = runtime::Model::Load(path);
  if (!model.ok()) return ReportError("inspect", model.error());
  const auto& g = model->graph();
  std::map<std::string, int> ops;
  for (const auto& n : g.nodes) ++ops[n.op_type];
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
                      {"nodes", g.nodes.size()},
                      {"ops", ops},
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
  std::printf("  %zu nodes:", g.nodes.size());
  for (const auto& [op, n] : ops) std::printf(" %s x%d", op.c_str(), n);
  std::printf("\n  parameters %lld (%zu bytes); planned activation memory %zu bytes (batch 1)\n",
              static_cast<long long>(model->ParameterCount()), model->ParameterBytes(),
              plan.arena_bytes);
  for (const auto& [k, v] : g.metadata) std::printf("  %s = %s\n", k.c_str(), v.c_str());
  return kExitOk;
}

}  // namespace

void RegisterInspect(CLI::App& root) {
  auto path = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  auto* sub = root.add_subcommand(
      "inspect", "Show an ONNX model's inputs, outputs, ops, parameters and metadata");
  sub->add_option("model", *path, "ONNX model file")->required();
  sub->add_flag("--json", *json, "print as JSON");
  SetAction(sub, [path, json] { return Run(*path, *json); });
}

}  // namespace edgeloop::cli
