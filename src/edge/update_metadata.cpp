#include "edge/update_metadata.hpp"

#include <openssl/evp.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "common/hash.hpp"

namespace edgeloop::edge {
namespace {

using Json = nlohmann::json;

std::string ToHex(const unsigned char* p, size_t n) {
  static const char* kDigits = "0123456789abcdef";
  std::string s(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = kDigits[p[i] >> 4];
    s[2 * i + 1] = kDigits[p[i] & 15];
  }
  return s;
}

bool FromHex(const std::string& hex, std::string& out) {
  if (hex.size() % 2 != 0) return false;
  out.clear();
  for (size_t i = 0; i < hex.size(); i += 2) {
    auto nib = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    int hi = nib(hex[i]), lo = nib(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return true;
}

struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

bool VerifyEd25519(const std::string& pub_raw, const std::string& msg, const std::string& sig) {
  PkeyPtr key(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                          reinterpret_cast<const unsigned char*>(pub_raw.data()),
                                          pub_raw.size()));
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!key || !ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1)
    return false;
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                          reinterpret_cast<const unsigned char*>(msg.data()), msg.size()) == 1;
}

}  // namespace

Result<UpdateMetadata> ParseAndVerify(const std::string& document, const VerifyPolicy& policy) {
  if (document.size() > (1u << 20))
    return Error(Errc::kResourceExhausted, "update metadata larger than 1 MiB refused");
  Json doc = Json::parse(document, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("signed") ||
      !doc["signed"].is_object() || !doc.contains("signatures") || !doc["signatures"].is_array())
    return Error(Errc::kFormat, "update metadata: not a {signed, signatures} JSON document");

  std::string pub_raw;
  if (!FromHex(policy.root_public_key_hex, pub_raw) || pub_raw.size() != 32)
    return Error(Errc::kInvalidArgument, "pinned root key is not a 32-byte hex Ed25519 key");
  std::string keyid = Sha256Hex(pub_raw);
  std::string canonical = doc["signed"].dump();
  bool verified = false;
  for (const auto& s : doc["signatures"]) {
    if (!s.is_object() || !s.contains("sig") || !s["sig"].is_string()) continue;
    if (s.contains("keyid") && s["keyid"] != keyid) continue;
    std::string sig;
    if (FromHex(s["sig"].get<std::string>(), sig) && VerifyEd25519(pub_raw, canonical, sig)) {
      verified = true;
      break;
    }
  }
  if (!verified)
    return Error(Errc::kPermission,
                 "update metadata: signature does not verify against the pinned root key");

  UpdateMetadata m;
  try {
    const Json& sj = doc["signed"];
    if (sj.value("type", "") != "model")
      return Error(Errc::kFormat, "update metadata: type is not \"model\"");
    m.version = sj.at("version").get<uint64_t>();
    m.expires = sj.at("expires").get<int64_t>();
    const Json& a = sj.at("artifact");
    m.url = a.at("url").get<std::string>();
    m.length = a.at("length").get<uint64_t>();
    m.sha256 = a.at("sha256").get<std::string>();
    if (sj.contains("golden")) {
      for (const auto& g : sj["golden"]) {
        GoldenCase c;
        c.input = g.at("input").get<std::vector<float>>();
        c.output = g.at("output").get<std::vector<float>>();
        c.tolerance = g.value("tolerance", 1e-3);
        m.golden.push_back(std::move(c));
      }
    }
  } catch (const std::exception& e) {
    return Error(Errc::kFormat, std::string("update metadata: ") + e.what());
  }
  if (m.sha256.size() != 64)
    return Error(Errc::kFormat, "update metadata: artifact sha256 is not 64 hex digits");
  if (m.expires <= policy.now)
    return Error(Errc::kPermission, "update metadata expired at " + std::to_string(m.expires) +
                                        " (now " + std::to_string(policy.now) + ")");
  if (m.version < policy.installed_version)
    return Error(Errc::kPermission, "update metadata offers version " + std::to_string(m.version) +
                                        ", lower than installed version " +
                                        std::to_string(policy.installed_version) +
                                        " (rollback refused)");
  if (m.length == 0 || m.length > policy.max_artifact_bytes)
    return Error(Errc::kResourceExhausted, "update metadata: artifact length " +
                                               std::to_string(m.length) + " outside 1.." +
                                               std::to_string(policy.max_artifact_bytes));
  m.raw = document;
  return m;
}

Result<std::string> SignMetadata(const std::string& signed_json,
                                 const std::string& private_key_hex) {
  Json sj = Json::parse(signed_json, nullptr, false);
  if (sj.is_discarded() || !sj.is_object())
    return Error(Errc::kFormat, "signed part is not a JSON object");
  std::string priv;
  if (!FromHex(private_key_hex, priv) || priv.size() != 32)
    return Error(Errc::kInvalidArgument, "private key is not a 32-byte hex Ed25519 key");
  PkeyPtr key(EVP_PKEY_new_raw_private_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(priv.data()), priv.size()));
  MdCtxPtr ctx(EVP_MD_CTX_new());
  std::string canonical = sj.dump();
  unsigned char sig[64];
  size_t sig_len = sizeof(sig);
  unsigned char pub[32];
  size_t pub_len = sizeof(pub);
  if (!key || !ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), sig, &sig_len,
                     reinterpret_cast<const unsigned char*>(canonical.data()),
                     canonical.size()) != 1 ||
      EVP_PKEY_get_raw_public_key(key.get(), pub, &pub_len) != 1)
    return Error(Errc::kInternal, "Ed25519 signing failed");
  Json doc;
  doc["signed"] = sj;
  doc["signatures"] =
      Json::array({{{"keyid", Sha256Hex(std::string_view(reinterpret_cast<char*>(pub), pub_len))},
                    {"sig", ToHex(sig, sig_len)}}});
  return doc.dump();
}

Result<std::pair<std::string, std::string>> GenerateEd25519KeyPair() {
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(
      EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr), &EVP_PKEY_CTX_free);
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 || EVP_PKEY_keygen(ctx.get(), &raw) != 1)
    return Error(Errc::kInternal, "Ed25519 key generation failed");
  PkeyPtr key(raw);
  unsigned char priv[32], pub[32];
  size_t pl = 32, ql = 32;
  if (EVP_PKEY_get_raw_private_key(key.get(), priv, &pl) != 1 ||
      EVP_PKEY_get_raw_public_key(key.get(), pub, &ql) != 1)
    return Error(Errc::kInternal, "Ed25519 key export failed");
  return std::make_pair(ToHex(priv, pl), ToHex(pub, ql));
}

}  // namespace edgeloop::edge
