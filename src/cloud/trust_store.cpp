#include "cloud/trust_store.hpp"

namespace edgeloop::cloud {

Result<std::optional<DeviceCertificate>> TrustStore::Certificate(const std::string& device_id) {
  EDGELOOP_ASSIGN_OR_RETURN(
      auto rows, db_.Query("SELECT serial, not_after_ms, previous_serial, previous_valid_until_ms "
                           "FROM device_certificates WHERE device_id = ?",
                           {device_id}));
  if (rows.empty()) return std::optional<DeviceCertificate>();
  const std::string where = "device " + device_id + " certificate ";
  DeviceCertificate c;
  c.device_id = device_id;
  EDGELOOP_ASSIGN_OR_RETURN(c.serial, ColumnUint64(rows[0].at(0), where + "serial"));
  EDGELOOP_ASSIGN_OR_RETURN(c.not_after_ms, ColumnInt64(rows[0].at(1), where + "not_after_ms"));
  EDGELOOP_ASSIGN_OR_RETURN(c.previous_serial,
                            ColumnUint64(rows[0].at(2), where + "previous_serial"));
  EDGELOOP_ASSIGN_OR_RETURN(c.previous_valid_until_ms,
                            ColumnInt64(rows[0].at(3), where + "previous_valid_until_ms"));
  return std::optional<DeviceCertificate>(c);
}

Status TrustStore::RecordEnrollment(const std::string& device_id, uint64_t serial,
                                    int64_t not_after_ms) {
  return db_.Transaction([&]() -> Status {
    EDGELOOP_RETURN_IF_ERROR(
        db_.Exec("DELETE FROM device_certificates WHERE device_id = ?", {device_id}));
    return db_.Exec(
        "INSERT INTO device_certificates (device_id, serial, not_after_ms, previous_serial, "
        "previous_valid_until_ms) VALUES (?, ?, ?, '0', 0)",
        {device_id, std::to_string(serial), std::to_string(not_after_ms)});
  });
}

Status TrustStore::RecordRenewal(const std::string& device_id, uint64_t presented_serial,
                                 uint64_t new_serial, int64_t not_after_ms,
                                 int64_t grace_until_ms) {
  return db_.Transaction([&]() -> Status {
    EDGELOOP_RETURN_IF_ERROR(db_.Exec("UPDATE devices SET serial = ? WHERE device_id = ?",
                                      {std::to_string(new_serial), device_id}));
    EDGELOOP_RETURN_IF_ERROR(
        db_.Exec("DELETE FROM device_certificates WHERE device_id = ?", {device_id}));
    return db_.Exec(
        "INSERT INTO device_certificates (device_id, serial, not_after_ms, previous_serial, "
        "previous_valid_until_ms) VALUES (?, ?, ?, ?, ?)",
        {device_id, std::to_string(new_serial), std::to_string(not_after_ms),
         std::to_string(presented_serial), std::to_string(grace_until_ms)});
  });
}

Result<bool> TrustStore::CertificateValid(const std::string& device_id, uint64_t serial,
                                          int64_t now_ms) {
  const std::string s = std::to_string(serial);
  EDGELOOP_ASSIGN_OR_RETURN(
      auto rows,
      db_.Query("SELECT 1 FROM devices d LEFT JOIN device_certificates c ON c.device_id = "
                "d.device_id WHERE d.device_id = ? AND d.revoked = 0 AND (d.serial = ? OR "
                "(c.previous_serial = ? AND c.previous_valid_until_ms > ?))",
                {device_id, s, s, std::to_string(now_ms)}));
  return !rows.empty();
}

Result<uint64_t> TrustStore::NewestRootVersion() {
  EDGELOOP_ASSIGN_OR_RETURN(auto rows,
                            db_.Query("SELECT COALESCE(MAX(version), 0) FROM root_metadata"));
  return ColumnUint64(rows.at(0).at(0), "root_metadata's newest version");
}

Result<std::optional<std::string>> TrustStore::Root(uint64_t version) {
  EDGELOOP_ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT document FROM root_metadata WHERE "
                                                 "version = ?",
                                                 {std::to_string(version)}));
  if (rows.empty()) return std::optional<std::string>();
  return std::optional<std::string>(rows[0].at(0));
}

Status TrustStore::PutRoot(uint64_t version, const std::string& document, int64_t created_ms) {
  return db_.Transaction([&]() -> Status {
    EDGELOOP_ASSIGN_OR_RETURN(auto existing, Root(version));
    if (existing)
      return Error(Errc::kMismatch, "root version " + std::to_string(version) + " exists already");
    return db_.Exec("INSERT INTO root_metadata (version, document, created_ms) VALUES (?, ?, ?)",
                    {std::to_string(version), document, std::to_string(created_ms)});
  });
}

Result<std::vector<std::pair<std::string, std::string>>> TrustStore::Deployments() {
  EDGELOOP_ASSIGN_OR_RETURN(auto rows,
                            db_.Query("SELECT target, metadata FROM deployments ORDER BY 1"));
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& r : rows) out.emplace_back(r.at(0), r.at(1));
  return out;
}

Status TrustStore::ReplaceDeploymentDocument(const std::string& target,
                                             const std::string& document) {
  return db_.Exec("UPDATE deployments SET metadata = ? WHERE target = ?", {document, target});
}

}  // namespace edgeloop::cloud
