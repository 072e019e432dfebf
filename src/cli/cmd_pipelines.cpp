// `edgeloop pipelines apply|list|run|runs|show|logs` and `edgeloop rollout
// start|list|status|pause|resume|abort`: retraining pipelines and staged rollouts of a running
// server.
#include <cstdio>

#include "cli/command.hpp"
#include "cli/server_client.hpp"
#include "common/file.hpp"

namespace edgeloop::cli {
namespace {

using Json = nlohmann::json;
constexpr auto Run = RunServerRequest;

void PrintRun(const Json& r) {
  std::printf("run %s of %s (trigger %s): %s\n", Cell(r["id"]).c_str(), Cell(r["pipeline"]).c_str(),
              Cell(r["trigger"]).c_str(), Cell(r["status"]).c_str());
  const Json& res = r["result"];
  if (!res.is_object()) return;
  std::vector<std::vector<std::string>> rows;
  for (const auto& s : res.value("steps", Json::array())) {
    char d[32];
    std::snprintf(d, sizeof d, "%.1f s", s.value("duration_s", 0.0));
    rows.push_back({Cell(s["name"]), Cell(s["status"]), d, Cell(s["detail"])});
  }
  PrintTable({"STEP", "STATUS", "TIME", "DETAIL"}, rows);
  rows.clear();
  for (const auto& g : res.value("gates", Json::array()))
    rows.push_back({Cell(g["expr"]), Cell(g["value"]), Cell(g["threshold"]),
                    g.value("passed", false) ? "pass" : "FAIL"});
  if (!rows.empty()) {
    std::printf("\n");
    PrintTable({"GATE", "VALUE", "THRESHOLD", "RESULT"}, rows);
  }
  if (!res.value("reason", "").empty())
    std::printf("\n%s: %s\n", Cell(res["failed_step"]).c_str(), Cell(res["reason"]).c_str());
}

void PrintRollout(const Json& r) {
  std::printf("rollout %s of %s to %s: %s\n", Cell(r["id"]).c_str(),
              Cell(r["model_version"]).c_str(), Cell(r.value("target", Json())).c_str(),
              Cell(r["status"]).c_str());
  std::vector<std::vector<std::string>> rows;
  for (const auto& s : r["stages"]) {
    std::string devices;
    for (const auto& d : s["devices"]) devices += (devices.empty() ? "" : ",") + Cell(d);
    std::string result = s["result"].get<std::string>();
    if (result.empty()) result = s["started_ms"].get<int64_t>() < 0 ? "pending" : "running";
    rows.push_back({Cell(s["name"]), result, devices});
  }
  PrintTable({"STAGE", "RESULT", "DEVICES"}, rows);
}

}  // namespace

void RegisterPipelines(CLI::App& root) {
  auto* p = root.add_subcommand("pipelines", "Retraining pipelines of a running server");
  p->require_subcommand(1);

  auto* apply = p->add_subcommand("apply", "Upload (or replace) a pipeline from its YAML file");
  auto af = AddServerFlags(apply);
  auto file = std::make_shared<std::string>();
  apply->add_option("file", *file, "pipeline YAML")->required();
  SetAction(apply, [af, file] {
    auto yaml = ReadFile(*file, 1 << 20);
    if (!yaml.ok()) return ReportError("pipelines apply", yaml.error());
    return Run(
        "pipelines apply", *af,
        [&](const auto& c) { return c.PostBytes("/v1/pipelines", *yaml, "application/yaml"); },
        [](const Json& j) { std::printf("pipeline %s stored\n", Cell(j["name"]).c_str()); });
  });

  auto* list = p->add_subcommand("list", "List pipelines");
  auto lf = AddServerFlags(list);
  SetAction(list, [lf] {
    return Run(
        "pipelines list", *lf, [](const auto& c) { return c.GetJson("/v1/pipelines"); },
        [](const Json& j) {
          std::vector<std::vector<std::string>> rows;
          for (const auto& x : j["pipelines"])
            rows.push_back({Cell(x["name"]), Cell(x["labelled_seen"])});
          PrintTable({"PIPELINE", "LABELLED_SEEN"}, rows);
        });
  });

  auto* run = p->add_subcommand("run", "Start a run now (a person's trigger)");
  auto rf = AddServerFlags(run);
  auto name = std::make_shared<std::string>();
  run->add_option("pipeline", *name, "pipeline name")->required();
  SetAction(run, [rf, name] {
    return Run(
        "pipelines run", *rf,
        [&](const auto& c) {
          return c.PostJson("/v1/pipelines/" + *name + "/runs", Json::object());
        },
        [](const Json& j) { std::printf("queued %s\n", Cell(j["id"]).c_str()); });
  });

  auto* runs = p->add_subcommand("runs", "List runs");
  auto nf = AddServerFlags(runs);
  auto of = std::make_shared<std::string>();
  runs->add_option("--pipeline", *of, "only this pipeline's runs");
  SetAction(runs, [nf, of] {
    return Run(
        "pipelines runs", *nf,
        [&](const auto& c) {
          return c.GetJson("/v1/runs" + (of->empty() ? std::string() : "?pipeline=" + *of));
        },
        [](const Json& j) {
          std::vector<std::vector<std::string>> rows;
          for (const auto& r : j["runs"])
            rows.push_back(
                {Cell(r["id"]), Cell(r["pipeline"]), Cell(r["trigger"]), Cell(r["status"]),
                 r["result"].is_object() ? Cell(r["result"].value("model_version", "")) : "-"});
          PrintTable({"RUN", "PIPELINE", "TRIGGER", "STATUS", "MODEL"}, rows);
        });
  });

  auto* show = p->add_subcommand("show", "A run's steps, gates and outcome");
  auto sf = AddServerFlags(show);
  auto id = std::make_shared<std::string>();
  show->add_option("run", *id, "run id")->required();
  SetAction(show, [sf, id] {
    return Run(
        "pipelines show", *sf, [&](const auto& c) { return c.GetJson("/v1/runs/" + *id); },
        PrintRun);
  });

  auto* logs = p->add_subcommand("logs", "Print a run step's log");
  auto gf = AddServerFlags(logs, false);
  auto lid = std::make_shared<std::string>();
  auto step = std::make_shared<std::string>();
  logs->add_option("run", *lid, "run id")->required();
  logs->add_option("step", *step, "snapshot, train, export, evaluate, package, ...")->required();
  SetAction(logs, [gf, lid, step] {
    auto c = ConnectToServer(*gf);
    if (!c.ok()) return ReportError("pipelines logs", c.error());
    auto text = c->GetBytes("/v1/runs/" + *lid + "/logs/" + *step);
    if (!text.ok()) return ReportError("pipelines logs", text.error());
    std::fwrite(text->data(), 1, text->size(), stdout);
    return static_cast<int>(kExitOk);
  });
}

void RegisterRollout(CLI::App& root) {
  auto* r = root.add_subcommand("rollout", "Staged rollouts: canary, waves, automatic rollback");
  r->require_subcommand(1);

  auto* start = r->add_subcommand("start", "Roll a registered model version out");
  auto sf = AddServerFlags(start);
  struct StartArgs {
    std::string model, target = "all", canary = "1", variant = "fp32";
    int64_t version = 0;
    std::vector<std::string> waves = {"100%"};
    double window = 20;
  };
  auto a = std::make_shared<StartArgs>();
  start->add_option("--model", a->model, "registry model")->required();
  start->add_option("--version", a->version, "model version number")->required();
  start->add_option("--target", a->target, "all, group:<name>, label:<name> or a device id")
      ->capture_default_str();
  start->add_option("--canary", a->canary, "canary size: N devices or P%")->capture_default_str();
  start->add_option("--waves", a->waves, "cumulative wave sizes after the canary")
      ->capture_default_str();
  start->add_option("--variant", a->variant, "artifact to ship: fp32 or int8")
      ->check(CLI::IsMember({"fp32", "int8"}))
      ->capture_default_str();
  start->add_option("--window", a->window, "seconds each stage is observed")->capture_default_str();
  SetAction(start, [sf, a] {
    return Run(
        "rollout start", *sf,
        [&](const auto& c) {
          return c.PostJson("/v1/rollouts", {{"model", a->model},
                                             {"version", a->version},
                                             {"target", a->target},
                                             {"canary", a->canary},
                                             {"waves", a->waves},
                                             {"variant", a->variant},
                                             {"criteria", {{"window_seconds", a->window}}}});
        },
        [](const Json& j) { std::printf("rollout %s started\n", Cell(j["id"]).c_str()); });
  });

  auto* list = r->add_subcommand("list", "List rollouts");
  auto lf = AddServerFlags(list);
  SetAction(list, [lf] {
    return Run(
        "rollout list", *lf, [](const auto& c) { return c.GetJson("/v1/rollouts"); },
        [](const Json& j) {
          std::vector<std::vector<std::string>> rows;
          for (const auto& x : j["rollouts"])
            rows.push_back(
                {Cell(x["id"]), Cell(x["model"]) + ":" + Cell(x["version"]), Cell(x["status"])});
          PrintTable({"ROLLOUT", "MODEL", "STATUS"}, rows);
        });
  });

  for (const char* cmd : {"status", "pause", "resume", "abort"}) {
    std::string c = cmd;
    auto* sub = r->add_subcommand(c, c == "status"   ? "A rollout's stages and state"
                                     : c == "pause"  ? "Hold a rollout where it is"
                                     : c == "resume" ? "Carry on with a paused rollout"
                                                     : "Stop a rollout and revert its devices");
    auto f = AddServerFlags(sub);
    auto id = std::make_shared<std::string>();
    sub->add_option("rollout", *id, "rollout id")->required();
    SetAction(sub, [f, id, c] {
      return Run(
          "rollout " + c, *f,
          [&](const auto& cl) {
            return c == "status" ? cl.GetJson("/v1/rollouts/" + *id)
                                 : cl.PostJson("/v1/rollouts/" + *id + "/" + c, Json::object());
          },
          PrintRollout);
    });
  }
}

}  // namespace edgeloop::cli
