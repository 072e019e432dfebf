// edgeloop mqtt-config: the Mosquitto broker of the MQTT device plane, configured from the
// fleet CA in a server's data folder (docs/scale-out.md): mosquitto.conf, the ACL file, the
// broker's certificate and an edgeloop-ingest client certificate.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli/command.hpp"
#include "cloud/mqtt_broker_config.hpp"
#include "common/process.hpp"

namespace edgeloop::cli {
namespace {

constexpr char kPluginName[] = "edgeloop_mosquitto_acl.so";

struct MqttConfigArgs {
  cloud::BrokerConfigOptions o;
  std::string acl_plugin;  // empty: look beside the executable; "none": no plugin
};

// The plugin is built beside the edgeloop executable and installed in ../lib/edgeloop/.
std::string FindAclPlugin() {
  const std::filesystem::path exe = std::filesystem::path(SelfExecutable()).parent_path();
  for (const auto& p : {exe / kPluginName, exe / ".." / "lib" / "edgeloop" / kPluginName})
    if (access(p.c_str(), R_OK) == 0) return std::filesystem::weakly_canonical(p).string();
  return "";
}

int Run(MqttConfigArgs a) {
  if (a.acl_plugin == "none") {
    a.o.acl_plugin.clear();
  } else if (a.acl_plugin.empty()) {
    a.o.acl_plugin = FindAclPlugin();
    if (a.o.acl_plugin.empty())
      std::fprintf(stderr,
                   "edgeloop mqtt-config: note: no %s beside this executable; the broker will "
                   "grant every subscription (the ACL still filters what it delivers)\n",
                   kPluginName);
  } else {
    if (access(a.acl_plugin.c_str(), R_OK) != 0)
      return ReportError("mqtt-config",
                         Error(Errc::kNotFound, "--acl-plugin " + a.acl_plugin + ": no such file"));
    a.o.acl_plugin = a.acl_plugin;
  }
  auto files = cloud::WriteBrokerConfig(a.o);
  if (!files.ok()) return ReportError("mqtt-config", files.error());
  std::printf("broker configuration in %s (fleet CA of %s)\n", a.o.out_dir.c_str(),
              a.o.data_dir.c_str());
  std::printf("  %s\n  %s\n  %s, %s (broker, from the fleet CA)\n  %s, %s (ingest client)\n",
              files->conf.c_str(), files->acl.c_str(), files->cert.c_str(), files->key.c_str(),
              files->ingest_cert.c_str(), files->ingest_key.c_str());
  std::printf("start it:   mosquitto -c %s\n", files->conf.c_str());
  std::printf("then:       edgeloop server --data %s --mqtt-broker %s:%d\n", a.o.data_dir.c_str(),
              a.o.host == "0.0.0.0" ? "127.0.0.1" : a.o.host.c_str(), a.o.port);
  std::printf("agents:     upload: {transport: mqtt, mqtt_broker: %s:%d}\n",
              a.o.host == "0.0.0.0" ? "<this host>" : a.o.host.c_str(), a.o.port);
  return kExitOk;
}

}  // namespace

void RegisterMqttConfig(CLI::App& root) {
  auto a = std::make_shared<MqttConfigArgs>();
  CLI::App* sub = root.add_subcommand(
      "mqtt-config", "Write a Mosquitto broker configuration for the MQTT device plane");
  sub->footer(
      "Uses (or on first use creates) the fleet CA in --data, so run it on the server's data "
      "folder. Writes mosquitto.conf (TLS listener, client certificates from the fleet CA, "
      "certificate name as user name, no anonymous clients, persistence), the ACL file (each "
      "device only its own edgeloop/devices/<id>/ topics, edgeloop-ingest all of edgeloop/#), "
      "the broker's certificate and an edgeloop-ingest client certificate; keys with mode "
      "0600. Running it again reissues the certificates. See docs/scale-out.md.");
  sub->add_option("--data", a->o.data_dir, "The server's data folder (its fleet CA)")->required();
  sub->add_option("--out", a->o.out_dir, "Folder to write the broker's files into")->required();
  sub->add_option("--host", a->o.host, "Address the broker listens on (and a certificate name)")
      ->capture_default_str();
  sub->add_option("--port", a->o.port, "Port the broker listens on")
      ->check(CLI::Range(1, 65535))
      ->capture_default_str();
  sub->add_option("--name", a->o.names,
                  "More DNS names or addresses for the broker's certificate (repeatable)");
  sub->add_option("--ca-cert", a->o.ca_cert_file,
                  "The fleet CA certificate, if the server has "
                  "it outside its data folder (--ca-cert)");
  sub->add_option("--ca-key", a->o.ca_key_file, "Its private key (the server's --ca-key)");
  sub->add_option("--acl-plugin", a->acl_plugin,
                  std::string("Subscribe-ACL plugin to load (default: ") + kPluginName +
                      " beside this executable; \"none\": without)");
  sub->add_option("--max-packet-bytes", a->o.max_packet_bytes,
                  "Largest MQTT packet the broker takes (a batch: the server's max_body_bytes)")
      ->check(CLI::Range(size_t{1024}, size_t{268435455}))
      ->capture_default_str();
  sub->add_option("--log-file", a->o.log_file, "Broker log file (default: stdout)");
  SetAction(sub, [a] { return Run(*a); });
}

}  // namespace edgeloop::cli
