// The Mosquitto broker of the MQTT device plane, configured from the fleet's keys
// (`edgeloop mqtt-config`, docs/scale-out.md). Written into one folder:
//
//   mosquitto.conf        a TLS listener on host:port that requires a client certificate
//                         from the fleet CA and takes its common name as the user name; no
//                         anonymous clients; the ACL file; persistence in persistence/
//   acl                   a device (user = its certificate's CN = its id) may write only
//                         edgeloop/devices/<id>/{samples,telemetry,events} and read only
//                         edgeloop/devices/<id>/{acks,update}; edgeloop-ingest reads and
//                         writes edgeloop/#
//   ca.crt                the fleet CA (clients' certificates are checked against it)
//   broker.crt, .key      the broker's certificate from the fleet CA, for localhost,
//                         127.0.0.1, host and the extra names
//   edgeloop-ingest.crt, .key  a client certificate for the ingest identity, for ingest
//                         workers outside `edgeloop server` and for mosquitto_sub
//   persistence/          Mosquitto's database (sessions, queued QoS 1 messages)
//
// Private keys are written with mode 0600. Running it again reissues the certificates and
// rewrites the files (the persistence folder is kept).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace edgeloop::cloud {

struct BrokerConfigOptions {
  std::string data_dir;                   // the server's data folder: its fleet CA
  std::string ca_cert_file, ca_key_file;  // the server's --ca-cert/--ca-key, if it has them
  std::string out_dir;
  std::string host = "127.0.0.1";  // the listener's address
  int port = 8883;
  std::vector<std::string> names;  // more DNS names or addresses for the certificate
  // The subscribe-ACL plugin (src/broker/): Mosquitto's ACL file grants every SUBSCRIBE and
  // only filters what is delivered; the plugin refuses a subscription outside the client's
  // own topics (SUBACK 0x80). Empty: no plugin.
  std::string acl_plugin;
  size_t max_packet_bytes = (8u << 20) + 4096;  // the server's max_body_bytes and a topic
  std::string log_file;                         // empty: log to stdout
};

struct BrokerConfigFiles {
  std::string conf, acl, ca, cert, key, ingest_cert, ingest_key, persistence_dir;
};

// Errors: the fleet keys cannot be read or made (kNotFound, kMismatch), the folder cannot be
// written (kIo), bad options (kInvalidArgument).
Result<BrokerConfigFiles> WriteBrokerConfig(const BrokerConfigOptions& options);

// The ACL file's text (exposed for tests).
std::string BrokerAclText();

}  // namespace edgeloop::cloud
