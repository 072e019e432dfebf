// `edgeloop server`: the cloud control plane in one process. Embedded defaults: SQLite and
// a data folder; `--db postgresql://...` puts the metadata on PostgreSQL instead.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <map>
#include <set>
#include <sstream>
#include <thread>
#include <variant>
#include <vector>

#include "cli/command.hpp"
#include "cloud/server.hpp"
#include "common/config_reader.hpp"
#include "common/file.hpp"
#include "common/log.hpp"

namespace edgeloop::cli {
namespace {

int RunServer(cloud::ServerOptions options, double deadline_s) {
  options.shutdown_deadline_ms = static_cast<int>(deadline_s * 1000);
  // Every connection is a descriptor: the soft limit is raised to the hard one, and a
  // connection limit the descriptors cannot hold is reported.
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 &&
      files.rlim_cur < static_cast<rlim_t>(options.connections.max_connections) + 256)
    log::Warn("server_descriptor_limit",
              {{"max_connections", options.connections.max_connections},
               {"open_files_limit", static_cast<int64_t>(files.rlim_cur)},
               {"hint", "raise ulimit -n or lower --max-connections"}});
  // SIGINT/SIGTERM are taken by a waiting thread (sigwait), which may call Stop() safely.
  sigset_t signals = BlockTerminationSignals();
  auto server = cloud::Server::Create(options);
  if (!server.ok()) return ReportError("server", server.error());
  Status st = (*server)->Start();
  if (!st.ok()) return ReportError("server", st.error());
  std::printf("edgeloop server listening on https://%s:%d (data %s)\n", options.host.c_str(),
              (*server)->port(), options.data_dir.c_str());
  std::printf("admin token in %s/admin.token, CA certificate in %s/ca.crt\n",
              options.data_dir.c_str(), options.data_dir.c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&signals, &sig);
  // Stop accepting, close idle connections, answer the requests in flight for up to the
  // deadline, then close everything: a client trickling bytes never keeps the process alive.
  log::Info("server_stopping",
            {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}, {"deadline_s", deadline_s}});
  auto started = std::chrono::steady_clock::now();
  std::promise<bool> stopped;
  auto done = stopped.get_future();
  std::thread stopper([&] { stopped.set_value((*server)->Stop()); });
  // A handler that does not return (a stuck database call) cannot be interrupted; the process
  // exits without it a little after the deadline. Committed data is durable either way.
  if (done.wait_for(std::chrono::duration<double>(deadline_s + 2.0)) ==
      std::future_status::timeout) {
    log::Warn("server_stopped", {{"clean", "false"}, {"reason", "a handler did not return"}});
    std::_Exit(kExitOk);
  }
  const bool clean = done.get();
  stopper.join();
  log::Info("server_stopped",
            {{"clean", clean ? "true" : "false"},
             {"seconds",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()}});
  return kExitOk;
}

// Every server setting, once: its section and key in server.yaml, its flag (--key with
// dashes) and its environment variable (EDGELOOP_KEY), its range. A value is taken from the
// flag, else the environment, else the file, else the embedded default.
struct Setting {
  const char* section;
  const char* key;
  const char* help;
  std::variant<std::string*, int*, double*, size_t*> field;  // uint64_t is size_t here
  double lo = 0, hi = 0;                                     // numbers: the allowed range
  std::set<std::string> one_of;  // text: the allowed values (empty: any)
  CLI::Option* option = nullptr;

  template <typename T>
  static Setting Number(const char* section, const char* key, const char* help, T* field, double lo,
                        double hi) {
    return Setting{section, key, help, field, lo, hi, {}, nullptr};
  }
  static Setting Text(const char* section, const char* key, const char* help, std::string* field,
                      std::set<std::string> one_of = {}) {
    return Setting{section, key, help, field, 0, 0, std::move(one_of), nullptr};
  }

  std::string Flag() const {
    std::string f = key;
    std::replace(f.begin(), f.end(), '_', '-');
    return "--" + f;
  }
  std::string Env() const {
    std::string e = key;
    for (char& c : e) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return "EDGELOOP_" + e;
  }
};

struct ServerSettings {
  cloud::ServerOptions options;
  double shutdown_deadline_s = 10.0;
  std::string log_level = "info", log_file;
  std::string config_file;
  bool print_config = false;
  std::vector<Setting> table;
};

std::vector<Setting> SettingsTable(ServerSettings& s) {
  auto& o = s.options;
  auto& c = o.connections;
  const double kMaxMs = 3600000;
  return {
      Setting::Text("server", "data", "Data folder (keys, samples, SQLite database)", &o.data_dir),
      Setting::Text(
          "server", "db",
          "Metadata database: sqlite:<path> or postgresql://... (default: SQLite in the data "
          "folder)",
          &o.db_url),
      Setting::Text("server", "host", "Address to listen on", &o.host),
      Setting::Number("server", "port", "Port (0: any free port)", &o.port, 0, 65535),
      Setting::Text("server", "ca_cert", "Use this fleet CA certificate (PEM)", &o.ca_cert_file),
      Setting::Text("server", "ca_key", "Use this fleet CA private key (PEM)", &o.ca_key_file),
      Setting::Text("server", "signing_key", "Use this Ed25519 update-signing key (PEM)",
                    &o.signing_key_file),
      Setting::Number("server", "device_cert_lifetime_s",
                      "Seconds a device certificate is issued for (enrollment and renewal)",
                      &o.device_cert_lifetime_s, 10, 3650.0 * 86400),
      Setting::Number("server", "cert_grace_s",
                      "Seconds a renewed device's previous certificate stays valid",
                      &o.cert_grace_s, 0, 365.0 * 86400),
      Setting::Text("server", "worker_executable",
                    "Program that runs pipeline steps (default: this edgeloop binary)",
                    &o.worker_executable),
      Setting::Text("server", "replica_id",
                    "This replica's name in logs, metrics and /v1/health (default: hostname:pid)",
                    &o.replica_id),
      Setting::Number("server", "background_interval_ms",
                      "How often pipeline triggers and rollouts are checked",
                      &o.background_interval_ms, 10, 600000),
      Setting::Number("server", "shutdown_deadline",
                      "Seconds to finish in-flight requests after SIGTERM/SIGINT, then exit anyway",
                      &s.shutdown_deadline_s, 0, 3600),
      Setting::Number("limits", "max_body_bytes", "Largest request body (413)", &o.max_body_bytes,
                      1024, 1024.0 * 1024 * 1024),
      Setting::Number("limits", "max_decompressed_bytes", "Largest ingest batch after zstd (413)",
                      &o.max_decompressed_bytes, 1024, 4096.0 * 1024 * 1024),
      Setting::Number("limits", "max_batch_samples", "Most samples per ingest batch (413)",
                      &o.max_batch_samples, 1, 1e6),
      Setting::Number("limits", "max_tensor_elements", "Most values in one sample's tensor (400)",
                      &o.max_tensor_elements, 1, 1 << 28),
      Setting::Number("limits", "device_rate", "Ingest batches per second per device (429 above)",
                      &o.device_batches_per_second, 0.001, 1e6),
      Setting::Number("limits", "device_burst", "Batch burst per device", &o.device_burst, 1, 1e7),
      Setting::Number("connections", "handler_threads",
                      "Threads that run request handlers (connections are held by one event loop)",
                      &c.handler_threads, 1, 1024),
      Setting::Number("connections", "max_connections",
                      "Connections open at once; more are closed at accept", &c.max_connections, 1,
                      1e6),
      Setting::Number("connections", "max_connections_per_ip",
                      "Connections open at once from one address (0: no limit)",
                      &c.max_connections_per_ip, 0, 1e6),
      Setting::Number("connections", "handshake_timeout_ms",
                      "From accept to a finished TLS handshake", &c.handshake_timeout_ms, 100,
                      kMaxMs),
      Setting::Number("connections", "header_timeout_ms",
                      "For a connection's first request line and headers", &c.header_timeout_ms,
                      100, kMaxMs),
      Setting::Number("connections", "body_timeout_ms",
                      "For a request body after its headers, and for writing an answer",
                      &c.body_timeout_ms, 100, kMaxMs),
      Setting::Number(
          "connections", "keepalive_timeout_ms",
          "Idle time allowed between requests on one connection (until the next request's "
          "headers are in)",
          &c.keepalive_timeout_ms, 100, kMaxMs),
      Setting::Number("connections", "keepalive_max_requests",
                      "Requests on one connection before it is closed", &c.keepalive_max_requests,
                      1, 1e8),
      Setting::Number("connections", "max_header_bytes", "Largest request line and headers (431)",
                      &c.max_header_bytes, 1024, 1 << 20),
      Setting::Text("mqtt", "mqtt_broker",
                    "MQTT broker host:port to take device samples from (docs/scale-out.md; "
                    "default: none)",
                    &o.mqtt_broker),
      Setting::Text("mqtt", "mqtt_cert",
                    "Client certificate for the broker, common name edgeloop-ingest (default: "
                    "issued from the fleet CA at start, <data>/mqtt-ingest.crt)",
                    &o.mqtt_cert_file),
      Setting::Text("mqtt", "mqtt_key", "Its private key (default: <data>/mqtt-ingest.key)",
                    &o.mqtt_key_file),
      Setting::Number("mqtt", "mqtt_workers",
                      "Ingest connections to the broker, each a share of the subscription",
                      &o.mqtt_workers, 1, 64),
      Setting::Number("mqtt", "mqtt_handlers",
                      "Samples messages stored at once (each waits for the group commit it "
                      "shares with the others)",
                      &o.mqtt_handlers, 1, 1024),
      Setting::Text("log", "log_level", "debug, info, warn or error", &s.log_level,
                    {"debug", "info", "warn", "error"}),
      Setting::Text("log", "log_file", "Append the structured log to this file (default: stderr)",
                    &s.log_file),
  };
}

// The file's values for every setting not given by a flag or the environment.
Status ApplyConfigFile(ServerSettings& s) {
  auto text = ReadFile(s.config_file, 1 << 20);
  if (!text.ok()) return text.error();
  std::set<std::string> sections;
  for (const auto& st : s.table) sections.insert(st.section);
  EDGELOOP_ASSIGN_OR_RETURN(YAML::Node root, config::LoadDocument(*text, s.config_file, sections));
  std::map<std::string, config::Section> by_name;
  for (const auto& name : sections) {
    by_name.emplace(name, config::Section(root, name, s.config_file));
    EDGELOOP_RETURN_IF_ERROR(by_name.at(name).CheckShape());
  }
  try {
    for (auto& st : s.table) {
      config::Section& sec = by_name.at(st.section);
      const bool from_command_line = st.option->count() > 0;
      Status read = std::visit(
          [&](auto* field) -> Status {
            using T = std::remove_pointer_t<decltype(field)>;
            T value = *field;
            Status got = Status::Ok();
            if constexpr (std::is_same_v<T, std::string>) {
              got = st.one_of.empty() ? sec.Get(st.key, value)
                                      : sec.GetOneOf(st.key, value, st.one_of);
            } else {
              got = sec.GetInRange<T>(st.key, value, static_cast<T>(st.lo), static_cast<T>(st.hi));
            }
            if (got.ok() && !from_command_line) *field = value;
            return got;
          },
          st.field);
      EDGELOOP_RETURN_IF_ERROR(read);
    }
  } catch (const YAML::Exception& e) {
    return Error(Errc::kFormat,
                 s.config_file + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  for (const auto& [name, sec] : by_name) EDGELOOP_RETURN_IF_ERROR(sec.CheckNoUnknownKeys());
  return Status::Ok();
}

// The settings in effect, as a server.yaml that gives the same server.
std::string EffectiveConfig(const ServerSettings& s) {
  std::string out, section;
  for (const auto& st : s.table) {
    if (section != st.section) {
      section = st.section;
      out += section + ":\n";
    }
    std::string value = std::visit(
        [](auto* field) -> std::string {
          using T = std::remove_pointer_t<decltype(field)>;
          if constexpr (std::is_same_v<T, std::string>) {
            return "\"" + *field + "\"";
          } else {
            std::ostringstream os;
            os << *field;
            return os.str();
          }
        },
        st.field);
    out += "  " + std::string(st.key) + ": " + value + "\n";
  }
  return out;
}

}  // namespace

void RegisterServer(CLI::App& root) {
  auto s = std::make_shared<ServerSettings>();
  CLI::App* sub = root.add_subcommand("server", "Run the cloud control plane (HTTPS, mTLS)");
  sub->footer(
      "Every setting is also read from the --config file (server.yaml: sections server, limits, "
      "connections, mqtt, log) and from the environment (EDGELOOP_<SETTING>, e.g. EDGELOOP_DB); a "
      "flag wins over the environment, the environment over the file.");
  s->table = SettingsTable(*s);
  sub->add_option("--config", s->config_file, "Read settings from this YAML file (server.yaml)")
      ->envname("EDGELOOP_CONFIG");
  sub->add_flag("--print-config", s->print_config,
                "Print the settings in effect as server.yaml and exit");
  for (auto& st : s->table) {
    st.option = std::visit([&](auto* field) { return sub->add_option(st.Flag(), *field, st.help); },
                           st.field);
    st.option->envname(st.Env())->capture_default_str();
    if (std::holds_alternative<std::string*>(st.field)) {
      if (!st.one_of.empty()) st.option->check(CLI::IsMember(st.one_of));
    } else {
      st.option->check(CLI::Range(st.lo, st.hi));
    }
  }
  SetAction(sub, [s] {
    if (!s->config_file.empty()) {
      if (Status st = ApplyConfigFile(*s); !st.ok()) {
        std::fprintf(stderr, "edgeloop server: %s\n", st.error().message.c_str());
        return static_cast<int>(kExitUsage);
      }
    }
    if (s->print_config) {
      std::fputs(EffectiveConfig(*s).c_str(), stdout);
      return static_cast<int>(kExitOk);
    }
    log::Options lo;
    lo.level = *log::ParseLevel(s->log_level);
    lo.file = s->log_file;
    if (Status st = log::Configure(lo); !st.ok()) return ReportError("server", st.error());
    return RunServer(s->options, s->shutdown_deadline_s);
  });
}

}  // namespace edgeloop::cli
