#include "common/update_metadata.hpp"

#include "common/bounded_parse.hpp"

#include <nlohmann/json.hpp>

#include "common/crypto.hpp"

namespace edgeloop {
namespace {

nlohmann::json GoldenJson(const std::vector<GoldenCase>& cases) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& c : cases) {
    nlohmann::json j = {{"input", c.input}, {"output", c.output}, {"tolerance", c.tolerance}};
    if (!c.shape.empty()) j["shape"] = c.shape;
    out.push_back(std::move(j));
  }
  return out;
}

Result<std::vector<GoldenCase>> GoldenFromJson(const nlohmann::json& j) {
  if (!j.is_array()) return Error(Errc::kFormat, "golden must be an array of cases");
  std::vector<GoldenCase> cases;
  for (size_t i = 0; i < j.size(); ++i) {
    const auto& c = j[i];
    const std::string where = "golden case " + std::to_string(i);
    if (!c.is_object() || !c.contains("input") || !c["input"].is_array() || !c.contains("output") ||
        !c["output"].is_array())
      return Error(Errc::kFormat, where + ": needs input and output arrays");
    GoldenCase g;
    try {
      g.input = c["input"].get<std::vector<float>>();
      g.output = c["output"].get<std::vector<float>>();
      if (c.contains("shape")) g.shape = c["shape"].get<std::vector<int64_t>>();
      if (c.contains("tolerance")) g.tolerance = c["tolerance"].get<double>();
    } catch (const nlohmann::json::exception&) {
      return Error(Errc::kFormat, where + ": input, output and shape must be numbers");
    }
    if (g.input.empty() || g.output.empty() || !(g.tolerance >= 0))
      return Error(Errc::kFormat, where + ": empty input or output, or a negative tolerance");
    int64_t elements = 1;
    for (int64_t d : g.shape) {
      if (d <= 0 || d > (int64_t{1} << 24)) return Error(Errc::kFormat, where + ": bad shape");
      elements *= d;
      if (elements > (int64_t{1} << 24)) return Error(Errc::kFormat, where + ": shape too large");
    }
    if (!g.shape.empty() && elements != static_cast<int64_t>(g.input.size()))
      return Error(Errc::kFormat, where + ": shape does not match the input's length");
    cases.push_back(std::move(g));
  }
  return cases;
}

nlohmann::json SignedPart(const UpdateMetadata& m) {
  nlohmann::json j = {{"_type", "targets"},
                      {"deployment_target", m.deployment_target},
                      {"version", m.version},
                      {"expires", m.expires_unix},
                      {"target",
                       {{"name", m.target.artifact_name},
                        {"model_version", m.target.model_version},
                        {"sha256", m.target.sha256},
                        {"length", m.target.length}}}};
  if (!m.golden.empty()) j["golden"] = GoldenJson(m.golden);
  return j;
}

}  // namespace

Result<std::vector<GoldenCase>> GoldenCasesFromJson(const std::string& json_text) {
  EDGELOOP_ASSIGN_OR_RETURN(nlohmann::json j, ParseJsonBounded(json_text, "golden cases"));
  return GoldenFromJson(j);
}

Result<std::string> SignUpdateMetadata(const UpdateMetadata& meta,
                                       const std::string& private_key_pem) {
  nlohmann::json signed_part = SignedPart(meta);
  std::string canonical = signed_part.dump();
  EDGELOOP_ASSIGN_OR_RETURN(std::string sig, crypto::Ed25519Sign(private_key_pem, canonical));
  EDGELOOP_ASSIGN_OR_RETURN(std::string pub, crypto::Ed25519PublicKeyPem(private_key_pem));
  EDGELOOP_ASSIGN_OR_RETURN(std::string keyid, crypto::KeyId(pub));
  nlohmann::json doc = {{"signed", signed_part},
                        {"signatures", {{{"keyid", keyid}, {"sig", crypto::Base64Encode(sig)}}}}};
  return doc.dump(2);
}

Result<UpdateMetadata> VerifyUpdateMetadata(const std::string& json_text,
                                            const std::string& public_key_pem, int64_t now_unix,
                                            uint64_t min_version) {
  EDGELOOP_ASSIGN_OR_RETURN(std::string keyid, crypto::KeyId(public_key_pem));
  auto one_key = [&](const std::string& canonical, const std::string& signatures) -> Status {
    nlohmann::json list = nlohmann::json::parse(signatures, nullptr, false);
    for (const auto& s : list) {
      if (!s.is_object() || !s.contains("keyid") || !s.contains("sig") || !s["keyid"].is_string() ||
          !s["sig"].is_string() || s["keyid"].get<std::string>() != keyid)
        continue;
      auto sig = crypto::Base64Decode(s["sig"].get<std::string>());
      if (sig.ok() && crypto::Ed25519Verify(public_key_pem, canonical, *sig).ok())
        return Status::Ok();
    }
    return Error(Errc::kPermission, "update metadata has no valid signature");
  };
  return VerifyUpdateMetadataWith(json_text, one_key, now_unix, min_version);
}

Result<UpdateMetadata> VerifyUpdateMetadataWith(const std::string& json_text,
                                                const SignatureCheck& signatures_ok,
                                                int64_t now_unix, uint64_t min_version) {
  // Metadata is small (golden cases included); anything larger is an endless-data attack or a
  // mistake.
  constexpr size_t kMaxMetadataBytes = 1 << 20;
  if (json_text.size() > kMaxMetadataBytes)
    return Error(Errc::kResourceExhausted, "update metadata larger than 1 MiB");
  auto parsed = ParseJsonBounded(json_text, "update metadata");
  if (!parsed.ok()) return parsed.error();
  nlohmann::json doc = std::move(*parsed);
  if (!doc.is_object() || !doc.contains("signed") || !doc["signed"].is_object() ||
      !doc.contains("signatures") || !doc["signatures"].is_array())
    return Error(Errc::kFormat, "update metadata is not {signed, signatures}");
  if (doc["signed"].value("_type", "") != "targets")
    return Error(Errc::kFormat, "update metadata is not of _type targets");
  EDGELOOP_RETURN_IF_ERROR(signatures_ok(doc["signed"].dump(), doc["signatures"].dump()));
  UpdateMetadata m;
  try {
    const auto& sp = doc["signed"];
    m.deployment_target = sp.at("deployment_target").get<std::string>();
    m.version = sp.at("version").get<uint64_t>();
    m.expires_unix = sp.at("expires").get<int64_t>();
    const auto& t = sp.at("target");
    m.target.artifact_name = t.at("name").get<std::string>();
    m.target.model_version = t.at("model_version").get<std::string>();
    m.target.sha256 = t.at("sha256").get<std::string>();
    m.target.length = t.at("length").get<uint64_t>();
    if (sp.contains("golden")) {
      auto golden = GoldenFromJson(sp["golden"]);
      if (!golden.ok()) return golden.error().WithContext("update metadata");
      m.golden = std::move(*golden);
    }
  } catch (const nlohmann::json::exception& e) {
    return Error(Errc::kFormat, std::string("update metadata fields: ") + e.what());
  }
  if (m.expires_unix <= now_unix) return Error(Errc::kPermission, "update metadata expired");
  if (m.version < min_version)
    return Error(Errc::kPermission, "update metadata version " + std::to_string(m.version) +
                                        " is older than the trusted " +
                                        std::to_string(min_version) + " (rollback)");
  return m;
}

}  // namespace edgeloop
