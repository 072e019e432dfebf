#include "common/root_metadata.hpp"

#include <nlohmann/json.hpp>
#include <set>

#include "common/bounded_parse.hpp"
#include "common/crypto.hpp"

namespace edgeloop {
namespace {

using Json = nlohmann::json;

Json RoleJson(const RoleKeys& r) {
  return {{"keyids", r.keyids}, {"threshold", r.threshold}};
}

Json SignedPart(const RootMetadata& r) {
  Json keys = Json::object();
  for (const auto& [id, pem] : r.keys) keys[id] = {{"keytype", "ed25519"}, {"public", pem}};
  return {{"_type", "root"},
          {"version", r.version},
          {"expires", r.expires_unix},
          {"keys", keys},
          {"roles", {{"root", RoleJson(r.root)}, {"targets", RoleJson(r.targets)}}}};
}

Result<Json> ParseSignedDocument(const std::string& document, const char* what) {
  if (document.size() > kMaxRootBytes)
    return Error(Errc::kFormat, std::string(what) + " larger than 64 KiB (endless data refused)");
  EDGELOOP_ASSIGN_OR_RETURN(Json doc, ParseJsonBounded(document, what));
  if (!doc.is_object() || !doc.contains("signed") || !doc["signed"].is_object() ||
      !doc.contains("signatures") || !doc["signatures"].is_array())
    return Error(Errc::kFormat, std::string(what) + " is not {signed, signatures}");
  return doc;
}

// How many distinct keys of `role` (as listed in `keys`) signed `canonical` validly.
size_t CountValid(const std::string& canonical, const Json& signatures,
                  const std::map<std::string, std::string>& keys, const RoleKeys& role) {
  std::set<std::string> valid;
  const std::set<std::string> allowed(role.keyids.begin(), role.keyids.end());
  for (const auto& s : signatures) {
    if (!s.is_object() || !s.contains("keyid") || !s.contains("sig") || !s["keyid"].is_string() ||
        !s["sig"].is_string())
      continue;
    const std::string id = s["keyid"];
    if (!allowed.count(id) || valid.count(id)) continue;
    auto key = keys.find(id);
    if (key == keys.end()) continue;
    auto sig = crypto::Base64Decode(s["sig"].get<std::string>());
    if (sig.ok() && crypto::Ed25519Verify(key->second, canonical, *sig).ok()) valid.insert(id);
  }
  return valid.size();
}

Status MeetsThreshold(const std::string& canonical, const Json& signatures,
                      const std::map<std::string, std::string>& keys, const RoleKeys& role,
                      const std::string& what) {
  const size_t n = CountValid(canonical, signatures, keys, role);
  if (n >= role.threshold) return Status::Ok();
  return Error(Errc::kPermission, what + " has " + std::to_string(n) +
                                      " valid signature(s), the threshold is " +
                                      std::to_string(role.threshold));
}

Result<RoleKeys> ParseRole(const Json& roles, const char* name,
                           const std::map<std::string, std::string>& keys) {
  if (!roles.contains(name) || !roles[name].is_object())
    return Error(Errc::kFormat, std::string("root metadata lacks the ") + name + " role");
  const Json& r = roles[name];
  RoleKeys out;
  try {
    out.keyids = r.at("keyids").get<std::vector<std::string>>();
    out.threshold = r.at("threshold").get<uint32_t>();
  } catch (const Json::exception&) {
    return Error(Errc::kFormat, std::string("root role ") + name + ": keyids and threshold");
  }
  std::set<std::string> distinct(out.keyids.begin(), out.keyids.end());
  if (distinct.size() != out.keyids.size())
    return Error(Errc::kFormat, std::string("root role ") + name + " lists a key twice");
  for (const auto& id : out.keyids)
    if (!keys.count(id))
      return Error(Errc::kFormat, std::string("root role ") + name + " names unknown key " + id);
  if (out.threshold < 1 || out.threshold > out.keyids.size())
    return Error(Errc::kFormat, std::string("root role ") + name + ": threshold " +
                                    std::to_string(out.threshold) + " for " +
                                    std::to_string(out.keyids.size()) + " key(s)");
  return out;
}

Result<std::string> SignWith(Json doc, const std::vector<std::string>& private_keys_pem) {
  const std::string canonical = doc["signed"].dump();
  for (const auto& pem : private_keys_pem) {
    EDGELOOP_ASSIGN_OR_RETURN(std::string pub, crypto::Ed25519PublicKeyPem(pem));
    EDGELOOP_ASSIGN_OR_RETURN(std::string id, crypto::KeyId(pub));
    EDGELOOP_ASSIGN_OR_RETURN(std::string sig, crypto::Ed25519Sign(pem, canonical));
    Json kept = Json::array();
    for (const auto& s : doc["signatures"])
      if (!s.is_object() || s.value("keyid", "") != id) kept.push_back(s);
    kept.push_back({{"keyid", id}, {"sig", crypto::Base64Encode(sig)}});
    doc["signatures"] = std::move(kept);
  }
  return doc.dump(2);
}

}  // namespace

Result<RootMetadata> ImplicitRoot(const std::string& update_public_key_pem) {
  RootMetadata r;
  EDGELOOP_ASSIGN_OR_RETURN(std::string id, crypto::KeyId(update_public_key_pem));
  r.version = 1;
  r.keys[id] = update_public_key_pem;
  r.root = {{id}, 1};
  r.targets = {{id}, 1};
  return r;
}

Result<std::string> SignRootMetadata(const RootMetadata& root,
                                     const std::vector<std::string>& private_keys_pem) {
  return SignWith(Json{{"signed", SignedPart(root)}, {"signatures", Json::array()}},
                  private_keys_pem);
}

Result<std::string> AddRootSignatures(const std::string& document,
                                      const std::vector<std::string>& private_keys_pem) {
  EDGELOOP_ASSIGN_OR_RETURN(Json doc, ParseSignedDocument(document, "root metadata"));
  return SignWith(std::move(doc), private_keys_pem);
}

Result<RootMetadata> ParseRootMetadata(const std::string& document) {
  EDGELOOP_ASSIGN_OR_RETURN(Json doc, ParseSignedDocument(document, "root metadata"));
  const Json& sp = doc["signed"];
  if (sp.value("_type", "") != "root") return Error(Errc::kFormat, "not root metadata (_type)");
  RootMetadata r;
  r.document = document;
  try {
    r.version = sp.at("version").get<uint64_t>();
    r.expires_unix = sp.at("expires").get<int64_t>();
    const Json& keys = sp.at("keys");
    if (!keys.is_object() || keys.size() > kMaxRootKeys)
      return Error(Errc::kFormat, "root metadata keys: an object of at most 32 keys");
    for (const auto& [id, k] : keys.items()) {
      if (!k.is_object() || k.value("keytype", "") != "ed25519" || !k.contains("public") ||
          !k["public"].is_string())
        return Error(Errc::kFormat, "root key " + id + " is not an ed25519 public key");
      const std::string pem = k["public"];
      auto computed = crypto::KeyId(pem);
      if (!computed.ok() || *computed != id)
        return Error(Errc::kFormat, "root key " + id + " does not match its keyid");
      r.keys[id] = pem;
    }
    if (!sp.contains("roles") || !sp["roles"].is_object())
      return Error(Errc::kFormat, "root metadata lacks roles");
    EDGELOOP_ASSIGN_OR_RETURN(r.root, ParseRole(sp["roles"], "root", r.keys));
    EDGELOOP_ASSIGN_OR_RETURN(r.targets, ParseRole(sp["roles"], "targets", r.keys));
  } catch (const Json::exception& e) {
    return Error(Errc::kFormat, std::string("root metadata fields: ") + e.what());
  }
  if (r.version < 1) return Error(Errc::kFormat, "root metadata version must be at least 1");
  if (r.expires_unix <= 0) return Error(Errc::kFormat, "root metadata needs an expiry");
  return r;
}

Result<RootMetadata> VerifyNextRoot(const RootMetadata& trusted, const std::string& document) {
  EDGELOOP_ASSIGN_OR_RETURN(RootMetadata next, ParseRootMetadata(document));
  if (next.version != trusted.version + 1)
    return Error(Errc::kPermission,
                 "root version " + std::to_string(next.version) +
                     " is not the next after the trusted " + std::to_string(trusted.version) +
                     (next.version <= trusted.version ? " (rollback)" : " (skips a version)"));
  EDGELOOP_ASSIGN_OR_RETURN(Json doc, ParseSignedDocument(document, "root metadata"));
  const std::string canonical = doc["signed"].dump();
  EDGELOOP_RETURN_IF_ERROR(MeetsThreshold(canonical, doc["signatures"], trusted.keys, trusted.root,
                                          "root version " + std::to_string(next.version) +
                                              " by the keys of root " +
                                              std::to_string(trusted.version)));
  EDGELOOP_RETURN_IF_ERROR(
      MeetsThreshold(canonical, doc["signatures"], next.keys, next.root,
                     "root version " + std::to_string(next.version) + " by its own root keys"));
  return next;
}

Status CheckRootFresh(const RootMetadata& root, int64_t now_unix) {
  if (root.expires_unix != 0 && root.expires_unix <= now_unix)
    return Error(Errc::kPermission, "root metadata version " + std::to_string(root.version) +
                                        " expired (freeze): a newer root is needed");
  return Status::Ok();
}

Result<UpdateMetadata> VerifyTargetsWithRoot(const std::string& json_text, const RootMetadata& root,
                                             int64_t now_unix, uint64_t min_version) {
  EDGELOOP_RETURN_IF_ERROR(CheckRootFresh(root, now_unix));
  auto check = [&](const std::string& canonical, const std::string& signatures) -> Status {
    Json list = Json::parse(signatures, nullptr, false);
    return MeetsThreshold(
        canonical, list, root.keys, root.targets,
        "update metadata (targets role of root " + std::to_string(root.version) + ")");
  };
  return VerifyUpdateMetadataWith(json_text, check, now_unix, min_version);
}

Result<std::string> SignServerTime(int64_t now_unix, const std::string& nonce,
                                   const std::string& private_key_pem) {
  Json doc = {{"signed", {{"_type", "timestamp"}, {"time", now_unix}, {"nonce", nonce}}},
              {"signatures", Json::array()}};
  return SignWith(std::move(doc), {private_key_pem});
}

Result<int64_t> VerifyServerTime(const std::string& document, const RootMetadata& root,
                                 const std::string& nonce) {
  EDGELOOP_ASSIGN_OR_RETURN(Json doc, ParseSignedDocument(document, "signed time"));
  const Json& sp = doc["signed"];
  if (sp.value("_type", "") != "timestamp" || !sp.contains("time") ||
      !sp["time"].is_number_integer() || sp.value("nonce", "") != nonce)
    return Error(Errc::kPermission, "signed time is not a timestamp for this request's nonce");
  EDGELOOP_RETURN_IF_ERROR(
      MeetsThreshold(sp.dump(), doc["signatures"], root.keys, root.targets, "signed time"));
  return sp["time"].get<int64_t>();
}

Result<std::vector<std::string>> SplitPrivateKeys(const std::string& pem_text) {
  static const std::string kBegin = "-----BEGIN PRIVATE KEY-----";
  static const std::string kEnd = "-----END PRIVATE KEY-----";
  std::vector<std::string> out;
  for (size_t at = pem_text.find(kBegin); at != std::string::npos;
       at = pem_text.find(kBegin, at + 1)) {
    size_t end = pem_text.find(kEnd, at);
    if (end == std::string::npos) return Error(Errc::kFormat, "unterminated PEM private key");
    std::string pem = pem_text.substr(at, end + kEnd.size() - at) + "\n";
    auto pub = crypto::Ed25519PublicKeyPem(pem);
    if (!pub.ok()) return pub.error().WithContext("key " + std::to_string(out.size() + 1));
    out.push_back(std::move(pem));
    if (out.size() > kMaxRootKeys) return Error(Errc::kFormat, "more than 32 keys in the file");
  }
  if (out.empty()) return Error(Errc::kFormat, "no PEM private key in the file");
  return out;
}

}  // namespace edgeloop
