// The fleet's credentials over time: each device's certificate (the current serial, its
// expiry, and the serial it replaced, still accepted until a grace deadline so that uploads
// in flight during a renewal are not refused), and the chain of signed root metadata
// (root_metadata.hpp), one row per version. Tables: device_certificates and root_metadata
// (migrations.cpp). Revocation stays on the devices table (FleetStore::Revoke) and covers
// every serial of the device at once.
//
// Thread safety: as the Database (any thread); renewals are one transaction each.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cloud/database.hpp"

namespace edgeloop::cloud {

struct DeviceCertificate {
  std::string device_id;
  uint64_t serial = 0;
  int64_t not_after_ms = 0;  // 0: not recorded (enrolled before renewal existed)
  uint64_t previous_serial = 0;
  int64_t previous_valid_until_ms = 0;
};

class TrustStore {
 public:
  explicit TrustStore(Database& db) : db_(db) {}

  // The device's certificate record; nullopt when none was recorded (the devices row alone).
  Result<std::optional<DeviceCertificate>> Certificate(const std::string& device_id);
  // After an enrollment: the new serial and expiry, no previous serial.
  Status RecordEnrollment(const std::string& device_id, uint64_t serial, int64_t not_after_ms);
  // After a renewal authenticated with `presented_serial`: the device's current serial becomes
  // new_serial and presented_serial stays valid until grace_until_ms. (The presented serial,
  // not the stored current one, is kept: a device whose previous answer was lost renews again
  // with the certificate it still holds.)
  Status RecordRenewal(const std::string& device_id, uint64_t presented_serial, uint64_t new_serial,
                       int64_t not_after_ms, int64_t grace_until_ms);
  // True when the device is enrolled, not revoked, and `serial` is its current certificate or
  // the one it replaced, before the grace deadline.
  Result<bool> CertificateValid(const std::string& device_id, uint64_t serial, int64_t now_ms);

  // Root metadata: the newest version (0: none yet), one version's document, and a new one
  // (kMismatch when that version exists already: another replica published first).
  Result<uint64_t> NewestRootVersion();
  Result<std::optional<std::string>> Root(uint64_t version);
  Status PutRoot(uint64_t version, const std::string& document, int64_t created_ms);

  // Every deployment's (target, signed document), and one document replaced at the same
  // version: a targets key rotation re-signs what devices are given.
  Result<std::vector<std::pair<std::string, std::string>>> Deployments();
  Status ReplaceDeploymentDocument(const std::string& target, const std::string& document);

 private:
  Database& db_;
};

}  // namespace edgeloop::cloud
