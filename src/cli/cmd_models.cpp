// `edgeloop models list|show|register|promote|card`: the model registry of a running server.
#include <unistd.h>

#include <cstdio>
#include <map>

#include "cli/command.hpp"
#include "cli/server_client.hpp"
#include "common/file.hpp"

namespace edgeloop::cli {
namespace {

using Json = nlohmann::json;

struct RegisterArgs {
  std::string model, parent, snapshot, hyperparameters = "{}", metrics = "{}", code_version;
  std::vector<std::string> artifacts;  // variant=sha256 or variant=FILE
};

// A JSON object given inline or as @FILE.
Result<Json> JsonArg(const std::string& flag, const std::string& text) {
  std::string body = text;
  if (!text.empty() && text[0] == '@') {
    EDGELOOP_ASSIGN_OR_RETURN(body, ReadFile(text.substr(1), 1 << 20));
  }
  Json j = Json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return Error(Errc::kInvalidArgument, flag + " must be a JSON object (inline or @FILE)");
  return j;
}

Result<Json> Register(const cloud::OperatorClient& c, const RegisterArgs& a) {
  Json artifacts = Json::object();
  for (const auto& spec : a.artifacts) {
    size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0)
      return Error(Errc::kInvalidArgument,
                   "--artifact takes VARIANT=SHA256 or VARIANT=FILE, not '" + spec + "'");
    std::string value = spec.substr(eq + 1);
    // A file is uploaded first; anything else is taken as the sha256 of an uploaded artifact.
    if (::access(value.c_str(), R_OK) == 0) {
      EDGELOOP_ASSIGN_OR_RETURN(std::string bytes, ReadFile(value));
      EDGELOOP_ASSIGN_OR_RETURN(Json up,
                                c.PostBytes("/v1/artifacts", bytes, "application/octet-stream"));
      value = up["sha256"];
    }
    artifacts[spec.substr(0, eq)] = value;
  }
  EDGELOOP_ASSIGN_OR_RETURN(Json hyper, JsonArg("--hyperparameters", a.hyperparameters));
  EDGELOOP_ASSIGN_OR_RETURN(Json metrics, JsonArg("--metrics", a.metrics));
  return c.PostJson("/v1/models/" + a.model + "/versions", {{"artifacts", artifacts},
                                                            {"parent", a.parent},
                                                            {"dataset_snapshot", a.snapshot},
                                                            {"hyperparameters", hyper},
                                                            {"metrics", metrics},
                                                            {"code_version", a.code_version}});
}

std::string Artifacts(const Json& v) {
  std::string out;
  for (const auto& [name, sha] : v["artifacts"].items())
    out += (out.empty() ? "" : " ") + name + ":" + sha.get<std::string>().substr(0, 12);
  return out;
}

void VersionTable(const Json& versions) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& v : versions)
    rows.push_back({Cell(v["version"]), v["stage"],
                    v["parent"].get<std::string>().empty() ? "-" : Cell(v["parent"]),
                    Cell(v["metrics"]), Artifacts(v)});
  PrintTable({"VERSION", "STAGE", "PARENT", "METRICS", "ARTIFACTS"}, rows);
}

}  // namespace

void RegisterModels(CLI::App& root) {
  auto* models = root.add_subcommand("models", "The model registry of a running server");
  models->require_subcommand(1);

  auto* list = models->add_subcommand("list",
                                      "List models with their latest and production "
                                      "versions");
  auto lf = AddServerFlags(list);
  SetAction(list, [lf] {
    return RunServerRequest(
        "models list", *lf, [](const auto& c) { return c.GetJson("/v1/models"); },
        [](const Json& j) {
          std::vector<std::vector<std::string>> rows;
          for (const auto& m : j["models"])
            rows.push_back({m["name"], Cell(m["latest_version"]), Cell(m["production_version"])});
          PrintTable({"MODEL", "LATEST", "PRODUCTION"}, rows);
        });
  });

  auto* show = models->add_subcommand("show", "Show a model's versions, or one version");
  auto sf = AddServerFlags(show);
  auto name = std::make_shared<std::string>();
  auto version = std::make_shared<std::string>();
  show->add_option("model", *name, "model name")->required();
  show->add_option("version", *version, "a version number, latest, or a stage");
  SetAction(show, [sf, name, version] {
    return RunServerRequest(
        "models show", *sf,
        [&](const auto& c) {
          return c.GetJson("/v1/models/" + *name +
                           (version->empty() ? "" : "/versions/" + *version));
        },
        [](const Json& j) {
          VersionTable(j.contains("versions") ? j["versions"] : Json::array({j}));
        });
  });

  auto* reg = models->add_subcommand("register", "Register a new version of a model");
  auto rf = AddServerFlags(reg);
  auto ra = std::make_shared<RegisterArgs>();
  reg->add_option("model", ra->model, "model name (created on its first version)")->required();
  reg->add_option("--artifact", ra->artifacts,
                  "VARIANT=SHA256 of an uploaded artifact, or VARIANT=FILE to upload (e.g. "
                  "fp32=model.onnx); repeatable")
      ->required();
  reg->add_option("--parent", ra->parent, "parent version as MODEL:VERSION");
  reg->add_option("--snapshot", ra->snapshot, "id of the dataset snapshot it was trained on");
  reg->add_option("--hyperparameters", ra->hyperparameters, "JSON object or @FILE");
  reg->add_option("--metrics", ra->metrics, "JSON object or @FILE");
  reg->add_option("--code-version", ra->code_version, "code version that trained it");
  SetAction(reg, [rf, ra] {
    return RunServerRequest(
        "models register", *rf, [&](const auto& c) { return Register(c, *ra); },
        [](const Json& j) {
          std::printf("registered %s version %lld (%s)\n", j["model"].get<std::string>().c_str(),
                      static_cast<long long>(j["version"].get<int64_t>()),
                      j["stage"].get<std::string>().c_str());
        });
  });

  auto* promote = models->add_subcommand(
      "promote", "Move a version to a stage (production archives the previous one)");
  auto pf = AddServerFlags(promote);
  auto pname = std::make_shared<std::string>();
  auto pversion = std::make_shared<std::string>();
  auto stage = std::make_shared<std::string>("production");
  promote->add_option("model", *pname, "model name")->required();
  promote->add_option("version", *pversion, "version number")->required();
  promote->add_option("--stage", *stage, "candidate, staging, production or archived")
      ->check(CLI::IsMember({"candidate", "staging", "production", "archived"}))
      ->capture_default_str();
  SetAction(promote, [pf, pname, pversion, stage] {
    return RunServerRequest(
        "models promote", *pf,
        [&](const auto& c) {
          return c.PostJson("/v1/models/" + *pname + "/versions/" + *pversion + "/stage",
                            {{"stage", *stage}});
        },
        [](const Json& j) {
          std::printf("%s version %lld is now %s\n", j["model"].get<std::string>().c_str(),
                      static_cast<long long>(j["version"].get<int64_t>()),
                      j["stage"].get<std::string>().c_str());
        });
  });

  auto* card = models->add_subcommand("card", "Print a version's model card (Markdown or JSON)");
  auto cf = AddServerFlags(card);
  auto cname = std::make_shared<std::string>();
  auto cversion = std::make_shared<std::string>();
  card->add_option("model", *cname, "model name")->required();
  card->add_option("version", *cversion, "a version number, latest, or a stage")->required();
  SetAction(card, [cf, cname, cversion] {
    std::string path = "/v1/models/" + *cname + "/versions/" + *cversion + "/card";
    if (cf->json)
      return RunServerRequest(
          "models card", *cf, [&](const auto& c) { return c.GetJson(path); }, [](const Json&) {});
    auto client = ConnectToServer(*cf);
    if (!client.ok()) return ReportError("models card", client.error());
    auto md = client->GetBytes(path + "?format=md");
    if (!md.ok()) return ReportError("models card", md.error());
    std::fwrite(md->data(), 1, md->size(), stdout);
    return static_cast<int>(kExitOk);
  });
}

}  // namespace edgeloop::cli
