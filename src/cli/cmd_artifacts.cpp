// `edgeloop artifacts push <file>` and `edgeloop deploy <target> --sha256 ...`: content-
// addressed artifacts and signed deployments on a running server.
#include <cstdio>

#include "cli/command.hpp"
#include "cli/server_client.hpp"
#include "common/file.hpp"

namespace edgeloop::cli {

using Json = nlohmann::json;

void RegisterArtifacts(CLI::App& root) {
  auto* artifacts = root.add_subcommand("artifacts", "Content-addressed artifacts on a server");
  artifacts->require_subcommand(1);
  auto* push = artifacts->add_subcommand("push", "Upload a file; prints its sha256");
  auto pf = AddServerFlags(push);
  auto file = std::make_shared<std::string>();
  push->add_option("file", *file, "the file to upload (an ONNX model, ...)")->required();
  SetAction(push, [pf, file] {
    auto bytes = ReadFile(*file);
    if (!bytes.ok()) return ReportError("artifacts push", bytes.error());
    return RunServerRequest(
        "artifacts push", *pf,
        [&](const auto& c) {
          return c.PostBytes("/v1/artifacts", *bytes, "application/octet-stream");
        },
        [](const Json& j) {
          std::printf("%s  %s bytes\n", j["sha256"].get<std::string>().c_str(),
                      Cell(j["length"]).c_str());
        });
  });

  auto* deploy = root.add_subcommand(
      "deploy", "Sign and publish update metadata for a device or group:<name>");
  auto df = AddServerFlags(deploy);
  auto target = std::make_shared<std::string>();
  auto sha = std::make_shared<std::string>();
  auto name = std::make_shared<std::string>("model.onnx");
  auto model_version = std::make_shared<std::string>();
  auto ttl = std::make_shared<int64_t>(7 * 86400);
  deploy->add_option("target", *target, "a device id or group:<name>")->required();
  deploy->add_option("--sha256", *sha, "sha256 of an uploaded artifact")->required();
  deploy->add_option("--name", *name, "artifact name devices see")->capture_default_str();
  deploy->add_option("--model-version", *model_version, "model version text, e.g. clf:3");
  deploy->add_option("--ttl", *ttl, "seconds until the metadata expires")->capture_default_str();
  SetAction(deploy, [df, target, sha, name, model_version, ttl] {
    return RunServerRequest(
        "deploy", *df,
        [&](const auto& c) {
          return c.PostJson("/v1/deployments/" + *target, {{"sha256", *sha},
                                                           {"name", *name},
                                                           {"model_version", *model_version},
                                                           {"ttl_seconds", *ttl}});
        },
        [&](const Json& j) {
          const Json& signed_part = j.contains("signed") ? j["signed"] : j;
          std::printf("deployed %s to %s (metadata version %s)\n", sha->c_str(), target->c_str(),
                      Cell(signed_part.value("version", Json())).c_str());
        });
  });
}

}  // namespace edgeloop::cli
