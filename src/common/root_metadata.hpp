// The TUF root role of the fleet's update keys: signed root metadata that lists the Ed25519
// keys of the root role and of the targets role (the update metadata, update_metadata.hpp),
// each with a threshold, and the root's own version and expiry.
//
// Wire form (JSON): {"signed": {"_type": "root", "version": N, "expires": unix seconds,
//   "keys": {keyid: {"keytype": "ed25519", "public": PEM}},
//   "roles": {"root": {"keyids": [...], "threshold": t}, "targets": {...}}},
//  "signatures": [{"keyid": hex, "sig": base64}]}
// keyid is the sha256 of the key's DER (crypto::KeyId) and is checked against the key, so one
// key listed under two ids cannot count twice towards a threshold. Signatures cover the
// canonical "signed" text, as for the update metadata.
//
// A device enrolled before the root role existed holds one pinned update key: ImplicitRoot()
// makes it root version 1, with that key as both the root and the targets role (threshold 1),
// which is exactly the root version 1 a server creates for itself on first start. The first
// explicit rotation (version 2) is then signed by that key and by the new root keys.
//
// Every function is pure and thread-safe; errors are values: kFormat (malformed, over a
// limit), kPermission (a threshold not met, a version that is not the next, expired).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "common/update_metadata.hpp"

namespace edgeloop {

struct RoleKeys {
  std::vector<std::string> keyids;
  uint32_t threshold = 1;
};

struct RootMetadata {
  uint64_t version = 0;
  int64_t expires_unix = 0;                 // 0: never (only the implicit root of ImplicitRoot)
  std::map<std::string, std::string> keys;  // keyid -> Ed25519 public key (PEM)
  RoleKeys root, targets;
  std::string document;  // the signed JSON it was read from; empty for the implicit root
};

// Limits on root metadata: a document is at most 64 KiB and lists at most 32 keys.
constexpr size_t kMaxRootBytes = 64 * 1024;
constexpr size_t kMaxRootKeys = 32;

// Root version 1 of a fleet whose only key is update_public_key_pem.
Result<RootMetadata> ImplicitRoot(const std::string& update_public_key_pem);

// The signed document of `root` (version, expiry, keys and roles as given), signed by each of
// private_keys_pem (Ed25519 PKCS#8 PEM). The document is also stored in the result.
Result<std::string> SignRootMetadata(const RootMetadata& root,
                                     const std::vector<std::string>& private_keys_pem);
// Adds the signatures of private_keys_pem to a signed root document (a second holder of root
// keys countersigning). Signatures by the same key are replaced.
Result<std::string> AddRootSignatures(const std::string& document,
                                      const std::vector<std::string>& private_keys_pem);

// Parses a root document and checks its shape (keyids match their keys, roles name listed
// keys, 1 <= threshold <= keys in the role); no signature is checked.
Result<RootMetadata> ParseRootMetadata(const std::string& document);

// TUF 5.3 for one step: `document` is accepted as the next root when its version is exactly
// trusted.version + 1 and it is signed by a threshold of trusted's root keys AND by a
// threshold of its own root keys. Expiry is not checked here (an intermediate root may have
// expired); check the final root with CheckRootFresh().
Result<RootMetadata> VerifyNextRoot(const RootMetadata& trusted, const std::string& document);
// The freeze check of the newest trusted root: kPermission once now_unix reaches its expiry.
Status CheckRootFresh(const RootMetadata& root, int64_t now_unix);

// Update metadata signed by a threshold of the root's targets keys (plus every check of
// VerifyUpdateMetadata: expiry, rollback, shape, limits).
Result<UpdateMetadata> VerifyTargetsWithRoot(const std::string& json_text, const RootMetadata& root,
                                             int64_t now_unix, uint64_t min_version);

// The server's signed time: {"signed": {"_type": "timestamp", "time": unix seconds, "nonce":
// the device's nonce}, "signatures": [...]}, signed with the targets key. The nonce (8-64 hex
// characters, the device's fresh random) makes an old answer useless to a replaying attacker.
Result<std::string> SignServerTime(int64_t now_unix, const std::string& nonce,
                                   const std::string& private_key_pem);
// The time in a signed-time answer, when signed by a threshold of the root's targets keys and
// carrying `nonce`.
Result<int64_t> VerifyServerTime(const std::string& document, const RootMetadata& root,
                                 const std::string& nonce);

// Private Ed25519 keys from a text of PEM blocks (a root keys file: one or more
// "-----BEGIN PRIVATE KEY-----" blocks). kFormat when there is none or one does not parse.
Result<std::vector<std::string>> SplitPrivateKeys(const std::string& pem_text);

}  // namespace edgeloop
