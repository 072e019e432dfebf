// `edgeloop keys show|rotate-root|rotate-targets`: the update keys of a running server, under
// the TUF root role (common/root_metadata.hpp, docs/edge.md "Update keys").
//
// Root keys are offline: they live in files on the operator's machine (PEM private keys, one
// or more per file), are read only by these commands, and never reach the server. The server
// holds only the targets key it signs update metadata with. Every new root is signed here and
// checked by the server exactly as a device checks it (a threshold of the old root's keys and
// of its own), before it is published at GET /v1/root/<N>.
#include <sys/stat.h>

#include <cstdio>

#include "cli/command.hpp"
#include "cli/server_client.hpp"
#include "common/crypto.hpp"
#include "common/file.hpp"
#include "common/root_metadata.hpp"

namespace edgeloop::cli {
namespace {

using Json = nlohmann::json;

Result<std::vector<std::string>> ReadKeysFile(const std::string& path) {
  auto text = ReadFile(path, 1 << 20);
  if (!text.ok()) return text.error();
  auto keys = SplitPrivateKeys(*text);
  if (!keys.ok()) return keys.error().WithContext(path);
  return keys;
}

// The root keys file at `path`, created with `generate` fresh keys (mode 0600) when missing.
Result<std::vector<std::string>> LoadOrCreateKeys(const std::string& path, int generate) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) return ReadKeysFile(path);
  if (generate < 1)
    return Error(Errc::kNotFound, path + " does not exist (--generate N creates N keys in it)");
  std::string text;
  std::vector<std::string> keys;
  for (int i = 0; i < generate; ++i) {
    EDGELOOP_ASSIGN_OR_RETURN(std::string pem, crypto::GenerateEd25519KeyPem());
    text += pem;
    keys.push_back(pem);
  }
  EDGELOOP_RETURN_IF_ERROR(WriteFileAtomic(path, text, 0600));
  std::fprintf(stderr, "edgeloop keys: wrote %d new root key(s) to %s; keep it offline\n", generate,
               path.c_str());
  return keys;
}

Result<RootMetadata> CurrentRoot(const cloud::OperatorClient& c) {
  EDGELOOP_ASSIGN_OR_RETURN(Json doc, c.GetJson("/v1/root"));
  return ParseRootMetadata(doc.dump());
}

// Keeps only the keys a role names.
void DropUnusedKeys(RootMetadata& r) {
  std::map<std::string, std::string> used;
  for (const auto* role : {&r.root, &r.targets})
    for (const auto& id : role->keyids) used[id] = r.keys.at(id);
  r.keys = std::move(used);
}

Result<Json> Publish(const cloud::OperatorClient& c, RootMetadata next,
                     const std::vector<std::string>& signing_keys, const std::string& out) {
  DropUnusedKeys(next);
  EDGELOOP_ASSIGN_OR_RETURN(std::string doc, SignRootMetadata(next, signing_keys));
  if (!out.empty()) EDGELOOP_RETURN_IF_ERROR(WriteFileAtomic(out, doc + "\n"));
  return c.PostJson("/v1/root", Json::parse(doc));
}

// --expires-days and --out, which every command that publishes a root takes.
struct PublishOptions {
  double days = 365;
  std::string out;
};
std::shared_ptr<PublishOptions> AddPublishOptions(CLI::App* sub) {
  auto o = std::make_shared<PublishOptions>();
  sub->add_option("--expires-days", o->days, "days until the new root expires")
      ->capture_default_str()
      ->check(CLI::Range(0.0001, 3650.0));
  sub->add_option("--out", o->out, "also write the signed root here");
  return o;
}

void PrintPublished(const Json& j) {
  std::printf(
      "root version %s published (expires %s)%s\n", Cell(j["version"]).c_str(),
      Cell(j["expires"]).c_str(),
      j.value("targets_key_changed", false)
          ? (", new targets key; " + Cell(j["deployments_resigned"]) + " deployment(s) re-signed")
                .c_str()
          : "");
}

}  // namespace

void RegisterKeys(CLI::App& root) {
  auto* keys = root.add_subcommand(
      "keys", "Update keys under the TUF root role: show the root, rotate root or targets keys");
  keys->require_subcommand(1);

  auto* show = keys->add_subcommand("show", "The server's newest root metadata: roles and keys");
  auto sf = AddServerFlags(show);
  SetAction(show, [sf] {
    return RunServerRequest(
        "keys show", *sf, [](const auto& c) { return c.GetJson("/v1/root"); },
        [](const Json& j) {
          const Json& sp = j["signed"];
          std::printf("root version %s, expires %s\n", Cell(sp["version"]).c_str(),
                      Cell(sp["expires"]).c_str());
          std::vector<std::vector<std::string>> rows;
          for (const char* role : {"root", "targets"})
            for (const auto& id : sp["roles"][role]["keyids"])
              rows.push_back({role, Cell(sp["roles"][role]["threshold"]), Cell(id)});
          PrintTable({"ROLE", "THRESHOLD", "KEYID"}, rows);
        });
  });

  auto* rr = keys->add_subcommand(
      "rotate-root",
      "Publish root N+1 with new root keys, signed by the current root keys and the new ones");
  auto rf = AddServerFlags(rr);
  auto old_keys = std::make_shared<std::string>();
  auto new_keys = std::make_shared<std::string>();
  auto generate = std::make_shared<int>(0);
  auto threshold = std::make_shared<uint32_t>(1);
  rr->add_option("--root-keys", *old_keys,
                 "PEM file with the current root's private keys (at least its threshold; for "
                 "root 1 that is the server's update.key)")
      ->required();
  rr->add_option("--new-root-keys", *new_keys, "PEM file with the new root keys")->required();
  rr->add_option("--generate", *generate,
                 "create --new-root-keys with this many fresh keys when it does not exist");
  rr->add_option("--threshold", *threshold, "signatures the new root role needs")
      ->capture_default_str()
      ->check(CLI::Range(1, 32));
  auto rp = AddPublishOptions(rr);
  SetAction(rr, [=] {
    auto signing = ReadKeysFile(*old_keys);
    if (!signing.ok()) return ReportError("keys rotate-root", signing.error());
    auto fresh = LoadOrCreateKeys(*new_keys, *generate);
    if (!fresh.ok()) return ReportError("keys rotate-root", fresh.error());
    return RunServerRequest(
        "keys rotate-root", *rf,
        [&](const cloud::OperatorClient& c) -> Result<Json> {
          EDGELOOP_ASSIGN_OR_RETURN(RootMetadata next, CurrentRoot(c));
          next.version += 1;
          next.expires_unix = static_cast<int64_t>(std::time(nullptr) + rp->days * 86400);
          next.root = {};
          for (const auto& pem : *fresh) {
            EDGELOOP_ASSIGN_OR_RETURN(std::string pub, crypto::Ed25519PublicKeyPem(pem));
            EDGELOOP_ASSIGN_OR_RETURN(std::string id, crypto::KeyId(pub));
            next.keys[id] = pub;
            next.root.keyids.push_back(id);
          }
          if (*threshold > next.root.keyids.size())
            return Error(Errc::kInvalidArgument, "--threshold is more than the new root keys");
          next.root.threshold = *threshold;
          std::vector<std::string> all = *signing;
          all.insert(all.end(), fresh->begin(), fresh->end());
          return Publish(c, next, all, rp->out);
        },
        PrintPublished);
  });

  auto* rt = keys->add_subcommand(
      "rotate-targets",
      "Publish root N+1 whose targets role is a new key the server makes; the server signs "
      "with it from then on");
  auto tf = AddServerFlags(rt);
  auto root_keys = std::make_shared<std::string>();
  rt->add_option("--root-keys", *root_keys, "PEM file with the root's private keys")->required();
  auto tp = AddPublishOptions(rt);
  SetAction(rt, [=] {
    auto signing = ReadKeysFile(*root_keys);
    if (!signing.ok()) return ReportError("keys rotate-targets", signing.error());
    return RunServerRequest(
        "keys rotate-targets", *tf,
        [&](const cloud::OperatorClient& c) -> Result<Json> {
          EDGELOOP_ASSIGN_OR_RETURN(RootMetadata next, CurrentRoot(c));
          EDGELOOP_ASSIGN_OR_RETURN(Json pending, c.PostJson("/v1/keys/targets", Json::object()));
          const std::string id = pending.value("keyid", "");
          next.keys[id] = pending.value("public_key", "");
          next.version += 1;
          next.expires_unix = static_cast<int64_t>(std::time(nullptr) + tp->days * 86400);
          next.targets = {{id}, 1};
          return Publish(c, next, *signing, tp->out);
        },
        PrintPublished);
  });
}

}  // namespace edgeloop::cli
