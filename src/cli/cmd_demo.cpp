// `edgeloop demo`: the whole loop on one machine. Starts a server and N agent processes, each
// device replaying Fashion-MNIST through its own camera domain (a corruption); the base model
// (pre-trained on clean data, cached) loses accuracy there; the devices' uploaded, labelled
// samples trigger a transfer-learning fine-tune; the candidate passes the quality gates and
// rolls out canary first; the fleet's accuracy recovers. Ends with report/index.html and
// report/report.json. `--scenario bad` runs the same loop with a deliberately bad training
// recipe: the gates or the canary must stop it, leaving the fleet on the old model.
// `--scenario camera` closes the same loop on colour: each device watches a folder its camera
// fills with 64x64 RGB JPEG frames (own colour cast, zoom and JPEG quality, demo_camera.hpp),
// and the base model is a MobileNetV2 trained on clean frames.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cli/command.hpp"
#include "cli/demo_camera.hpp"
#include "cloud/client.hpp"
#include "cloud/report.hpp"
#include "common/file.hpp"
#include "common/free_port.hpp"
#include "common/hash.hpp"
#include "common/process.hpp"
#include "common/version.hpp"
#include "data/dataset.hpp"

namespace edgeloop::cli {
namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

struct DemoOptions {
  std::string dir = "demo-run";
  std::string report_dir = "report";
  std::string cache_dir = ".cache/edgeloop";
  int devices = 4;
  double rate_hz = 20;
  int base_epochs = 3;
  int timeout_s = 600;
  int finetune_epochs = 6;
  int64_t trigger_samples = 1200;
  std::string scenario = "good";
  std::string pipeline_file;
  // camera: the base MobileNetV2's width multiplier and the side of its input (the frames are
  // resized to it, as its input spec says).
  double width_mult = 0.25;
  int input_side = 32;
  // The base model's training images (0 = all 60000); -1: the scenario's own, 6000 for the
  // camera scenario and all for the others.
  int base_samples = -1;
  // Soak: keep the loop running this long (0: stop once the first rollout completes), with a
  // second drift phase once the first retrained model is on every device.
  int soak_minutes = 0;
  // The device's latency budget, a gate of every run (batch-1 p95 on the edge runtime).
  int latency_budget_us = 5000;
  // How the devices reach the cloud: https (the device API only) or mqtt (a Mosquitto broker
  // the demo configures and starts: samples, telemetry and update events through it, update
  // metadata pushed by it; artifacts still over HTTPS).
  std::string transport = "https";
  // After the report, keep the server and the agents running (until Ctrl-C or SIGTERM), so
  // a person can watch the fleet in the dashboard.
  bool keep_running = false;

  bool mqtt() const { return transport == "mqtt"; }
  bool camera() const { return scenario == "camera"; }
  int BaseSamples() const { return base_samples >= 0 ? base_samples : camera() ? 6000 : 0; }
  std::string model() const { return camera() ? "camera-mnv2" : "fashion-cnn"; }
};

// The device domains: each device sees Fashion-MNIST through its own corruption.
const std::vector<std::pair<std::string, int>> kDomains = {
    {"contrast", 4},  {"gaussian_noise", 4}, {"blur", 3},     {"brightness", 4},
    {"occlusion", 4}, {"rotation", 2},       {"contrast", 3}, {"gaussian_noise", 3}};

std::atomic<bool>* g_interrupted = nullptr;  // set by the SIGINT/SIGTERM handler

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// The device domains in use: devices beyond the list reuse it.
std::vector<std::pair<std::string, int>> DomainsInUse(int devices) {
  std::vector<std::pair<std::string, int>> out;
  for (int i = 0; i < devices && i < static_cast<int>(kDomains.size()); ++i)
    if (std::find(out.begin(), out.end(), kDomains[i]) == out.end()) out.push_back(kDomains[i]);
  return out;
}

// The evaluation sets of the camera scenario: image folders of test frames written by the
// demo (clean, and each device's camera), as `name: folder`.
using EvalFolders = std::vector<std::pair<std::string, std::string>>;

std::string PipelineYaml(const DemoOptions& o, bool bad, const EvalFolders& folders) {
  // The bad recipe: a learning rate that wrecks the backbone, trained briefly. Its gates keep
  // only the latency bound, so what stops it must be the canary's accuracy check.
  // Devices replay Fashion-MNIST's training images through their domains; the gates judge on
  // the test images (never uploaded): clean, and each device domain's test set; and on the
  // uploaded test split under the corruption suite (the new model must be no less robust).
  // The camera scenario judges on its frame folders instead, and has no corruption suite: its
  // domains are the cameras themselves.
  std::string sets;
  if (o.camera()) {
    for (const auto& [name, dir] : folders)
      sets += "    - {name: " + name + ", data: \"" + dir + "\"}\n";
  } else {
    sets = "    - {name: clean, data: \"fashion-mnist:test\"}\n";
    for (const auto& [c, s] : DomainsInUse(o.devices))
      sets += "    - {name: " + c + std::to_string(s) +
              ", data: \"fashion-mnist:test\", corrupt: " + c + ", severity: " + std::to_string(s) +
              "}\n";
  }
  const std::string model = o.model();
  // A soak's later runs are judged on snapshots that are mostly the domains the champion
  // already learned; the new domain is a third of the test split, so the margin is smaller.
  const std::string margin = o.soak_minutes > 0 ? "0.02" : "0.05";
  const std::string good_gates = o.camera() ? "  - \"accuracy >= champion + 0.05\"\n"
                                              "  - \"clean.accuracy >= champion - 0.15\"\n"
                                            : "  - \"accuracy >= champion + " + margin +
                                                  "\"\n  - \"clean.accuracy >= 0.70\"\n"
                                                  "  - \"mean_corruption_accuracy >= champion\"\n";
  char buf[4096];
  std::snprintf(
      buf, sizeof buf,
      "name: retrain\n"
      "trigger: {new_labelled_samples: %lld, drift_alarm: true, "
      "min_labelled_samples: %lld}\n"
      "dataset: {labelled_only: true, split: {train: 0.8, val: 0.0, test: 0.2, seed: 0}}\n"
      "train: {parent: %s@production, strategy: full, epochs: %d, lr: %s, "
      "backbone_lr_scale: %s, min_epoch_samples: 2048, patience: 3}\n"
      "evaluate:\n"
      "  sets:\n%s"
      "  robustness: %s\n"
      "  latency: true\n"
      "gates:\n%s"
      "  - \"latency_p95_us <= %d\"\n"
      "package: {int8: true, calib_samples: 300}\n"
      "register: {model: %s, stage: candidate}\n"
      "rollout:\n"
      "  target: \"group:demo\"\n"
      "  canary: 1\n"
      "  waves: [\"100%%\"]\n"
      "  criteria: {window_seconds: 8, stage_timeout_seconds: 120, "
      "min_accuracy_delta: -0.02, min_labelled: 20, max_latency_p95_ms: 50}\n",
      // A soak retrains on drift alone: the labelled-sample trigger would also fire, on
      // schedule, every few minutes of a long run.
      // It also waits for more samples of the new domain, so that the test split holds
      // enough of them to show the gain.
      static_cast<long long>(o.soak_minutes > 0 ? 0 : o.trigger_samples * 20),
      static_cast<long long>(o.soak_minutes > 0 ? o.trigger_samples * 5 : o.trigger_samples),
      model.c_str(), bad ? 1 : o.finetune_epochs, bad ? "0.5" : "0.001", bad ? "1.0" : "0.1",
      sets.c_str(), o.camera() ? "false" : "true", bad ? "" : good_gates.c_str(),
      o.latency_budget_us, model.c_str());
  return buf;
}

class Demo {
 public:
  explicit Demo(DemoOptions o) : o_(std::move(o)), exe_(SelfExecutable()) {}

  int Run() {
    // Ctrl-C or SIGTERM: stop the server and agents (each in its own process group, so the
    // terminal's signal does not reach them) and write what was seen so far. A handler, not a
    // sigwait thread: libraries may have started threads that would take the signal first.
    g_interrupted = &interrupted_;
    struct sigaction sa {};
    sa.sa_handler = [](int) {
      if (g_interrupted) g_interrupted->store(true);
    };
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
    t0_ = Now();
    started_unix_ = std::time(nullptr);
    wall0_ =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    std::error_code ec;
    fs::remove_all(o_.dir, ec);
    if (auto st = MakeDirs(o_.dir + "/logs"); !st.ok()) return ReportError("demo", st.error());
    double base_start = Now();
    Status st = BaseModel();
    base_model_s_ = Now() - base_start;
    if (st.ok() && o_.mqtt()) st = StartBroker();
    if (st.ok()) st = StartServer();
    if (st.ok()) st = Seed();
    if (st.ok()) st = StartAgents();
    int code = kExitOk;
    if (st.ok()) {
      auto closed = Watch();
      if (!closed.ok()) {
        st = closed.error();
      } else if (!*closed) {
        code = kExitFailure;
      }
    }
    if (interrupted_) {
      code = kExitInterrupted;
      Say("interrupted: stopping the server and the agents");
    } else if (!st.ok()) {
      code = ReportError("demo", st.error());
    }
    Status rep = WriteReport();
    if (!rep.ok() && code == kExitOk) code = ReportError("demo", rep.error());
    if (o_.keep_running && client_ && !interrupted_) {
      Say("report written; keeping the server and the agents up (--keep-running): dashboard " +
          url_ + "/ui/, Ctrl-C stops them");
      while (!interrupted_) std::this_thread::sleep_for(std::chrono::milliseconds(200));
      Say("interrupted: stopping the server and the agents");
    }
    Shutdown();
    return code;
  }

 private:
  void Say(const std::string& line) {
    std::printf("[%6.1f s] %s\n", Now() - t0_, line.c_str());
    std::fflush(stdout);
  }

  void Event(const std::string& kind, const std::string& detail, const std::string& device = "",
             const std::string& version = "") {
    Json e = {{"t_s", Now() - t0_}, {"kind", kind}, {"detail", detail}};
    if (!device.empty()) e["device"] = device;
    if (!version.empty()) e["model_version"] = version;
    events_.push_back(e);
    Say(kind + ": " + detail + (device.empty() ? "" : " (" + device + ")"));
  }

  Status Worker(const std::vector<std::string>& args, const std::string& log) {
    std::vector<std::string> argv = {exe_};
    argv.insert(argv.end(), args.begin(), args.end());
    RunOptions ro;
    ro.log_path = log;
    ro.cancel = &interrupted_;
    EDGELOOP_ASSIGN_OR_RETURN(ProcessResult r, RunProcess(argv, ro));
    if (r.exit_code != 0 || r.signal != 0)
      return Error(Errc::kInternal,
                   "edgeloop " + args[0] + " " + r.Describe() + " (see " + log + ")");
    return Status::Ok();
  }

  // The base model, pre-trained on clean Fashion-MNIST; cached between runs.
  Status BaseModel() {
    base_dir_ = o_.cache_dir + "/base-cnn-e" + std::to_string(o_.base_epochs);
    if (o_.BaseSamples() > 0) base_dir_ += "-n" + std::to_string(o_.BaseSamples());
    if (o_.camera()) {
      char b[96];
      std::snprintf(b, sizeof b, "/base-mnv2-w%03d-s%d-e%d-n%d",
                    static_cast<int>(o_.width_mult * 100), o_.input_side, o_.base_epochs,
                    o_.BaseSamples());
      base_dir_ = o_.cache_dir + b;
    }
    base_onnx_ = base_dir_ + ".onnx";
    profile_ = base_dir_ + ".profile.json";
    if (fs::exists(base_dir_ + "/weights.pt") && fs::exists(base_onnx_) && fs::exists(profile_)) {
      base_model_cached_ = true;
      Say("base model: cached at " + base_dir_);
      return Status::Ok();
    }
    EDGELOOP_RETURN_IF_ERROR(MakeDirs(o_.cache_dir));
    Say("base model: training " +
        (o_.camera() ? "a MobileNetV2 (" + std::to_string(o_.input_side) + "x" +
                           std::to_string(o_.input_side) + " RGB) on clean frames of"
                     : std::string("on clean")) +
        " Fashion-MNIST (" + std::to_string(o_.base_epochs) + " epochs, once; cached in " +
        o_.cache_dir + ")");
    std::string tmp = base_dir_ + ".tmp";
    std::error_code ec;
    fs::remove_all(tmp, ec);
    std::vector<std::string> train = {"train",
                                      "--data",
                                      "fashion-mnist:train",
                                      "--out",
                                      tmp,
                                      "--name",
                                      o_.model(),
                                      "--version",
                                      "1",
                                      "--epochs",
                                      std::to_string(o_.base_epochs)};
    if (o_.camera()) {
      // What a clean camera delivers, at the model's input size: its 64x64 frames are the
      // grey image upsampled (demo::RenderFrame), resized here to the model's side.
      char wm[32];
      std::snprintf(wm, sizeof wm, "%g", o_.width_mult);
      train.insert(train.end(),
                   {"--arch", "mobilenet_v2", "--width-mult", wm, "--input-size",
                    std::to_string(o_.input_side) + "x" + std::to_string(o_.input_side),
                    "--channels", "3", "--lr", "0.002"});
    }
    if (o_.BaseSamples() > 0)
      train.insert(train.end(), {"--max-samples", std::to_string(o_.BaseSamples())});
    EDGELOOP_RETURN_IF_ERROR(Worker(train, o_.dir + "/logs/base-train.log"));
    EDGELOOP_RETURN_IF_ERROR(Worker({"export", "--model", tmp, "--out", base_onnx_ + ".tmp"},
                                    o_.dir + "/logs/base-export.log"));
    // The drift reference: what the model sees on clean data like its training data.
    EDGELOOP_RETURN_IF_ERROR(
        Worker({"profile", "--model", base_onnx_ + ".tmp", "--data", "fashion-mnist:train",
                "--max-samples", "2000", "--out", profile_},
               o_.dir + "/logs/base-profile.log"));
    fs::rename(base_onnx_ + ".tmp", base_onnx_, ec);
    fs::remove_all(base_dir_, ec);
    fs::rename(tmp, base_dir_, ec);
    if (ec) return Error(Errc::kIo, base_dir_ + ": " + ec.message());
    Say("base model: trained");
    return Status::Ok();
  }

  // Transport mqtt: `edgeloop mqtt-config` on the server's data folder (which makes the fleet
  // CA the server then uses), and Mosquitto on that configuration, on a free loopback port.
  Status StartBroker() {
    data_ = o_.dir + "/server";
    broker_port_ = FreeLoopbackPort();
    const std::string dir = fs::absolute(o_.dir + "/mqtt").string();
    EDGELOOP_RETURN_IF_ERROR(Worker(
        {"mqtt-config", "--data", data_, "--out", dir, "--port", std::to_string(broker_port_),
         "--log-file", fs::absolute(o_.dir + "/logs/mosquitto.log").string()},
        o_.dir + "/logs/mqtt-config.log"));
    std::string mosquitto = "mosquitto";
    for (const char* p : {"/usr/sbin/mosquitto", "/usr/bin/mosquitto"})
      if (access(p, X_OK) == 0) mosquitto = p;
    RunOptions ro;
    ro.log_path = o_.dir + "/logs/mosquitto.out";
    auto child = ChildProcess::Start({mosquitto, "-c", dir + "/mosquitto.conf"}, ro);
    if (!child.ok())
      return Error(
          Errc::kNotFound,
          "--transport mqtt needs Mosquitto (apt-get install mosquitto): " + child.error().message);
    broker_ = std::move(*child);
    for (int i = 0; i < 100 && !interrupted_; ++i) {
      if (!broker_.running())
        return Error(Errc::kInternal,
                     "mosquitto exited at start (see " + o_.dir + "/logs/mosquitto.log)");
      if (Accepts(broker_port_)) {
        Say("broker: Mosquitto on 127.0.0.1:" + std::to_string(broker_port_) +
            " (mutual TLS from the fleet CA, per-device ACL; configuration in " + dir + ")");
        return Status::Ok();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return Error(Errc::kInternal, "mosquitto did not accept connections within 10 s");
  }

  static bool Accepts(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return false;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    close(fd);
    return ok;
  }

  Status StartServer() {
    port_ = FreeLoopbackPort();
    data_ = o_.dir + "/server";
    RunOptions ro;
    ro.log_path = o_.dir + "/logs/server.log";
    std::vector<std::string> argv = {exe_,     "server",    "--data", data_,
                                     "--host", "127.0.0.1", "--port", std::to_string(port_)};
    if (o_.mqtt()) argv.insert(argv.end(), {"--mqtt-broker", BrokerAddress()});
    EDGELOOP_ASSIGN_OR_RETURN(server_, ChildProcess::Start(argv, ro));
    url_ = "https://127.0.0.1:" + std::to_string(port_);
    for (int i = 0; i < 300 && !interrupted_; ++i) {
      if (!server_.running())
        return Error(Errc::kInternal, "the server exited at start (see " + ro.log_path + ")");
      if (fs::exists(data_ + "/admin.token") && fs::exists(data_ + "/ca.crt")) {
        cloud::ClientOptions co;
        co.server = url_;
        co.data_dir = data_;
        auto resolved = cloud::ResolveClientOptions(co);
        if (resolved.ok()) {
          auto c = cloud::OperatorClient::Create(*resolved);
          if (c.ok() && c->GetJson("/v1/health").ok()) {
            client_.emplace(std::move(*c));
            Say("server: listening on " + url_ + " (data in " + data_ + ")" +
                (o_.mqtt() ? "; ingest workers on the broker" : ""));
            // The browser does not know the fleet CA: it warns once about the certificate
            // (or import <data>/ca.crt). The token is the admin token of this demo's server.
            Say("dashboard: " + url_ + "/ui/ (sign in with the token in " + data_ +
                "/admin.token; the certificate is the demo's own fleet CA, " + data_ + "/ca.crt)");
            return Status::Ok();
          }
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return Error(Errc::kInternal, "the server did not come up within 30 s");
  }

  Result<std::string> Push(const std::string& path) {
    EDGELOOP_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
    EDGELOOP_ASSIGN_OR_RETURN(
        Json j, client_->PostBytes("/v1/artifacts", bytes, "application/octet-stream"));
    return j["sha256"].get<std::string>();
  }

  // The registry's first version (production), its deployment, and the pipeline.
  Status Seed() {
    EDGELOOP_ASSIGN_OR_RETURN(base_sha_, Push(base_onnx_));
    EDGELOOP_ASSIGN_OR_RETURN(std::string meta, Push(base_dir_ + "/model.json"));
    EDGELOOP_ASSIGN_OR_RETURN(std::string weights, Push(base_dir_ + "/weights.pt"));
    Json version = {
        {"artifacts", {{"fp32", base_sha_}, {"torch_meta", meta}, {"torch_weights", weights}}},
        {"code_version", CodeVersionString()},
        {"hyperparameters", {{"epochs", o_.base_epochs}, {"data", "fashion-mnist:train"}}}};
    const std::string model = o_.model();
    EDGELOOP_ASSIGN_OR_RETURN(Json v,
                              client_->PostJson("/v1/models/" + model + "/versions", version));
    int64_t n = v["version"].get<int64_t>();
    base_version_ = model + ":" + std::to_string(n);
    EDGELOOP_RETURN_IF_ERROR(
        client_->PostJson("/v1/models/" + model + "/versions/" + std::to_string(n) + "/stage",
                          {{"stage", "production"}}));
    // The devices start on this model as their factory model (agent.yaml model.path), so
    // nothing is deployed yet: the first deployment is the pipeline's rollout.
    EvalFolders folders;
    if (o_.camera()) {
      EDGELOOP_ASSIGN_OR_RETURN(folders, WriteEvalFolders());
    }
    std::string yaml = PipelineYaml(o_, o_.scenario == "bad", folders);
    if (!o_.pipeline_file.empty()) {
      EDGELOOP_ASSIGN_OR_RETURN(yaml, ReadFile(o_.pipeline_file));
    }
    EDGELOOP_RETURN_IF_ERROR(WriteFileAtomic(o_.dir + "/pipeline.yaml", yaml));
    EDGELOOP_RETURN_IF_ERROR(client_->PostBytes("/v1/pipelines", yaml, "application/yaml"));
    Say("registry: " + base_version_ + " in production on every device; pipeline " +
        "'retrain' waits for " +
        std::to_string(o_.soak_minutes > 0 ? o_.trigger_samples * 5 : o_.trigger_samples) +
        " labelled samples");
    return Status::Ok();
  }

  // The camera scenario's test frames: the first 1000 test images through the clean camera and
  // through each device's, never uploaded (the devices film the training images).
  Result<EvalFolders> WriteEvalFolders() {
    EDGELOOP_ASSIGN_OR_RETURN(data::Dataset test, data::LoadDataset("fashion-mnist:test"));
    std::vector<demo::CameraDomain> cams = {demo::CleanCamera()};
    for (int i = 0; i < o_.devices && i < static_cast<int>(demo::CameraDomains().size()); ++i)
      cams.push_back(demo::CameraDomains()[static_cast<size_t>(i)]);
    EvalFolders out;
    double start = Now();
    for (const auto& cam : cams) {
      std::string dir = fs::absolute(o_.dir + "/eval/" + cam.name).string();
      EDGELOOP_RETURN_IF_ERROR(demo::WriteFrameFolder(dir, test, 1000, cam, 7));
      out.emplace_back(cam.name, dir);
    }
    eval_sets_s_ = Now() - start;
    Say("camera: test frames for the gates in " + o_.dir + "/eval (" + std::to_string(cams.size()) +
        " cameras x 1000)");
    return out;
  }

  // The agent's configuration; replay devices see Fashion-MNIST through corruption:severity.
  Status WriteAgentConfig(const std::string& id, const std::string& dir, const std::string& token,
                          const std::string& corruption, int severity) {
    char source[1024];
    if (o_.camera())
      std::snprintf(source, sizeof source,
                    "source: {kind: watch, dir: %s/frames, delete_after_read: true}\n",
                    dir.c_str());
    else
      std::snprintf(source, sizeof source,
                    "source: {kind: replay, dataset: \"fashion-mnist:train\", rate_hz: %g, "
                    "loop: true, corruption: %s, severity: %d}\n",
                    o_.rate_hz, corruption.c_str(), severity);
    char yaml[3072];
    std::snprintf(
        yaml, sizeof yaml,
        "device: {id: %s, data_dir: %s}\n"
        "server: {url: \"%s\", enrollment_token: %s, ca_file: %s}\n"
        "model: {path: %s, version: \"%s\", profile: %s}\n"
        "%s"
        "sampling: {policy: all}\n"
        "upload: {batch_records: 64, base_delay_ms: 200, max_delay_ms: 5000%s}\n"
        "telemetry: {interval_s: 2}\n"
        "drift: {window: 300, min_samples: 100, psi_raise: 0.25, psi_clear: 0.1}\n"
        "update: {poll_s: %d, probation_samples: 40, max_error_rate: 0.05, max_latency_ms: 200}\n",
        id.c_str(), dir.c_str(), url_.c_str(), token.c_str(),
        fs::absolute(data_ + "/ca.crt").c_str(), fs::absolute(base_onnx_).c_str(),
        base_version_.c_str(), fs::absolute(profile_).c_str(), source,
        o_.mqtt() ? (", transport: mqtt, mqtt_broker: \"" + BrokerAddress() + "\"").c_str() : "",
        // Over MQTT updates are pushed; the poll is the fallback when the broker is away.
        o_.mqtt() ? 120 : 2);
    return WriteFileAtomic(dir + "/agent.yaml", yaml);
  }

  Status StartAgents() {
    if (o_.camera()) {
      EDGELOOP_ASSIGN_OR_RETURN(data::Dataset scenes, data::LoadDataset("fashion-mnist:train"));
      scenes_.emplace(std::move(scenes));
    }
    for (int i = 0; i < o_.devices; ++i) {
      std::string id = "dev-" + std::to_string(i + 1);
      auto [corruption, severity] = kDomains[static_cast<size_t>(i) % kDomains.size()];
      const demo::CameraDomain& cam =
          demo::CameraDomains()[static_cast<size_t>(i) % demo::CameraDomains().size()];
      EDGELOOP_ASSIGN_OR_RETURN(
          Json tok,
          client_->PostJson("/v1/enrollment-tokens", {{"device_id", id}, {"group", "demo"}}));
      std::string dir = fs::absolute(o_.dir + "/" + id).string();
      EDGELOOP_RETURN_IF_ERROR(MakeDirs(dir));
      EDGELOOP_RETURN_IF_ERROR(
          WriteAgentConfig(id, dir, tok["token"].get<std::string>(), corruption, severity));
      RunOptions ro;
      ro.log_path = o_.dir + "/logs/" + id + ".log";
      EDGELOOP_ASSIGN_OR_RETURN(
          ChildProcess c,
          ChildProcess::Start({exe_, "agent", "--config", dir + "/agent.yaml"}, ro));
      agents_.push_back(std::move(c));
      Json device = {
          {"id", id},
          {"domain", o_.camera() ? cam.name : corruption + ":" + std::to_string(severity)},
          {"model_version_before", base_version_}};
      if (o_.camera()) {
        device["camera"] = cam.Describe();
        EDGELOOP_RETURN_IF_ERROR(MakeDirs(dir + "/frames"));
        // Each camera films its own stretch of the training images.
        cameras_.push_back(std::make_unique<demo::FrameWriter>(
            *scenes_, cam, dir + "/frames", o_.rate_hz,
            static_cast<size_t>(i) * (scenes_->size() / static_cast<size_t>(o_.devices)),
            static_cast<uint64_t>(i + 1)));
        cameras_.back()->Start();
      }
      devices_.push_back(device);
    }
    agents_started_s_ = Now() - t0_;
    Say("fleet: " + std::to_string(o_.devices) + " agents started, each with its own domain");
    return Status::Ok();
  }

  // Samples the fleet, runs and rollouts until the loop has closed (or was stopped by the
  // gates or the canary, in the bad scenario). Returns whether it ended as expected.
  Result<bool> Watch() {
    std::set<std::string> seen_runs, seen_rollout_events;
    std::map<std::string, std::string> run_status;
    double deadline = t0_ + o_.timeout_s;
    double closed_at = -1;
    while (Now() < deadline && !interrupted_) {
      for (auto& a : agents_)
        if (!a.running())
          return Error(Errc::kInternal, "an agent exited (see " + o_.dir + "/logs)");
      if (!server_.running()) return Error(Errc::kInternal, "the server exited (see its log)");
      for (const auto& cam : cameras_)
        if (!cam->status().ok()) return cam->status().error();
      auto runs = client_->GetJson("/v1/runs");
      if (runs.ok()) {
        for (const auto& r : (*runs)["runs"]) {
          std::string id = r["id"], status = r["status"];
          if (!seen_runs.count(id)) {
            seen_runs.insert(id);
            Event("trigger", "pipeline retrain fired by " + r["trigger"].get<std::string>());
            Event("run_started", id);
          }
          if (run_status[id] != status) {
            run_status[id] = status;
            if (status == "succeeded" || status == "failed" || status == "rejected") {
              Json res = r["result"].is_object() ? r["result"] : Json::object();
              Event(status == "succeeded" ? "run_finished" : "rejected",
                    id + " " + status +
                        (res.value("reason", "").empty() ? "" : ": " + res.value("reason", "")),
                    "", res.value("model_version", ""));
              runs_[id] = r;
            }
          }
          runs_[id] = r;
        }
      }
      auto rollouts = client_->GetJson("/v1/rollouts");
      std::string final_status;
      int completed_rollouts = 0;
      if (rollouts.ok()) {
        for (const auto& r : (*rollouts)["rollouts"]) {
          auto full = client_->GetJson("/v1/rollouts/" + r["id"].get<std::string>());
          if (!full.ok()) continue;
          rollouts_[r["id"]] = *full;
          for (const auto& e : (*full)["events"]) {
            std::string key = r["id"].get<std::string>() + e.dump();
            if (seen_rollout_events.insert(key).second)
              Event(e["kind"] == "rolled_back" ? "rollback" : "rollout_stage",
                    e["kind"].get<std::string>() + " " + e.value("detail", ""), "",
                    (*full)["model_version"]);
          }
          final_status = (*full)["status"];
          if (final_status == "completed") ++completed_rollouts;
        }
      }
      SampleFleet();  // after the rollouts, so a stage is announced before its devices update
      bool bad = o_.scenario == "bad";
      bool done = false;
      if (!bad && final_status == "completed") done = true;
      if (bad && (final_status == "rolled_back" || final_status == "aborted")) done = true;
      if (bad) {
        for (const auto& [id, s] : run_status)
          if (s == "rejected" || s == "failed") done = true;
      } else {
        // A soak's second run may be rejected by its gates (the drift trigger then waits for
        // the next parent): only a run that failed ends it.
        for (const auto& [id, s] : run_status)
          if (s == "failed" || (s == "rejected" && o_.soak_minutes == 0))
            return Error(Errc::kInternal, "run " + id + " " + s + ": " +
                                              (runs_[id]["result"].is_object()
                                                   ? runs_[id]["result"].value("reason", "")
                                                   : ""));
        if (final_status == "rolled_back" || final_status == "aborted")
          return Error(Errc::kInternal, "the rollout was " + final_status);
      }
      if (o_.soak_minutes > 0 && (done || closed_at > 0)) {
        // The soak: a second drift phase a minute after the first retrained model is on
        // every device, then the loop runs on until the time is up.
        if (closed_at < 0) closed_at = Now();
        if (phase_ == 1 && Now() - closed_at > 60) EDGELOOP_RETURN_IF_ERROR(SwitchDomains());
        if (Now() - t0_ >= o_.soak_minutes * 60.0) {
          const size_t runs = seen_runs.size();
          Say("soak: " + std::to_string(runs) + " retraining runs and " +
              std::to_string(completed_rollouts) + " completed rollouts in " +
              std::to_string(o_.soak_minutes) + " minutes with 2 drift phases");
          soak_ = {{"minutes", o_.soak_minutes},
                   {"drift_phases", phase_},
                   {"runs", runs},
                   {"completed_rollouts", completed_rollouts}};
          return runs == 2 && phase_ == 2;
        }
        std::this_thread::sleep_for(std::chrono::seconds(2));
        continue;
      }
      if (done && closed_at < 0) {
        closed_at = Now();
        Say(bad ? "loop stopped the bad model; observing the fleet for 10 s"
                : "rollout completed; observing the fleet for 15 s");
      }
      if (closed_at > 0 && Now() - closed_at > (bad ? 10 : 15)) return true;
      std::this_thread::sleep_for(std::chrono::seconds(2));
    }
    if (interrupted_) return false;
    Say("timed out after " + std::to_string(o_.timeout_s) + " s before the loop closed");
    return false;
  }

  // The second drift phase: every device's domain moves to one the fleet has not seen (its
  // agent restarts on the new configuration, keeping its identity and installed model).
  Status SwitchDomains() {
    phase_ = 2;
    drift_alarmed_.clear();  // the new phase's alarms are events of their own
    for (int i = 0; i < o_.devices; ++i) {
      const std::string id = "dev-" + std::to_string(i + 1);
      // The domains no device has seen: occlusion and rotation, alternately.
      auto [corruption, severity] = kDomains[4 + static_cast<size_t>(i % 2)];
      const std::string dir = fs::absolute(o_.dir + "/" + id).string();
      agents_[static_cast<size_t>(i)].Stop();
      EDGELOOP_RETURN_IF_ERROR(WriteAgentConfig(id, dir, "", corruption, severity));
      RunOptions ro;
      ro.log_path = o_.dir + "/logs/" + id + ".log";
      EDGELOOP_ASSIGN_OR_RETURN(
          agents_[static_cast<size_t>(i)],
          ChildProcess::Start({exe_, "agent", "--config", dir + "/agent.yaml"}, ro));
      devices_[static_cast<size_t>(i)]["domain_phase2"] =
          corruption + ":" + std::to_string(severity);
      Event("drift_phase", "domain now " + corruption + ":" + std::to_string(severity), id);
    }
    return Status::Ok();
  }

  void SampleFleet() {
    auto fleet = client_->GetJson("/v1/fleet");
    if (!fleet.ok()) return;
    double t = Now() - t0_;
    for (const auto& d : (*fleet)["devices"]) {
      std::string id = d.value("device_id", "");
      std::string version = d.value("model_version", "");
      int64_t seen = d.value("last_seen_ms", int64_t{0});
      if (id.empty() || seen == 0 || seen == last_seen_[id]) continue;  // nothing new
      last_seen_[id] = seen;
      bool changed = !last_version_[id].empty() && last_version_[id] != version;
      if (changed)
        Event(version == base_version_ ? "rollback" : "device_updated",
              last_version_[id] + " -> " + version, id, version);
      last_version_[id] = version;
      // The first period after a change may mix samples of both models: not counted.
      if (changed) continue;
      if (d["accuracy"].is_number()) {
        double acc = d["accuracy"].get<double>();
        double n = static_cast<double>(d.value("labelled", int64_t{0}));
        series_acc_.push_back(
            {{"device", id}, {"t_s", t}, {"accuracy", acc}, {"model_version", version}});
        auto& [sum, count] = acc_by_version_[id][version];
        sum += acc * n;
        count += n;
      }
      series_lat_.push_back({{"device", id},
                             {"t_s", t},
                             {"p50_us", d.value("latency_p50_ms", 0.0) * 1000},
                             {"p95_us", d.value("latency_p95_ms", 0.0) * 1000}});
      double drift = d.value("drift_score", 0.0);
      bool alarm = d.value("drift_alarm", false);
      series_drift_.push_back({{"device", id}, {"t_s", t}, {"score", drift}, {"alarm", alarm}});
      if (alarm && !drift_alarmed_.count(id)) {
        drift_alarmed_.insert(id);
        if (drift_onset_s_ < 0) drift_onset_s_ = t;
        char b[64];
        std::snprintf(b, sizeof b, "PSI %.2f", drift);
        Event("drift_alarm", b, id);
      }
      for (const char* k : {"bytes_up", "model_bytes", "model_bytes_full"})
        if (d.contains(k) && d[k].is_number()) bytes_[id][k] = d[k].get<double>();
    }
  }

  Status WriteReport() {
    Json devices = Json::array();
    double before_sum = 0, after_sum = 0;
    int counted = 0;
    std::string new_version;
    for (const auto& [id, r] : rollouts_)
      if (r.value("status", "") == "completed") new_version = r["model_version"];
    for (auto d : devices_) {
      std::string id = d["id"];
      auto mean = [&](const std::string& v) {
        auto it = acc_by_version_[id].find(v);
        return it == acc_by_version_[id].end() || it->second.second <= 0
                   ? NAN
                   : it->second.first / it->second.second;
      };
      double before = mean(base_version_);
      std::string now = last_version_[id];
      double after = mean(now);
      d["accuracy_before"] = std::isnan(before) ? Json() : Json(before);
      d["accuracy_after"] = std::isnan(after) ? Json() : Json(after);
      d["model_version_after"] = now;
      auto bytes = [&](const char* k) {
        auto it = bytes_[id].find(k);
        return it == bytes_[id].end() ? Json() : Json(static_cast<int64_t>(it->second));
      };
      d["bytes_up"] = bytes("bytes_up");
      d["bytes_down_full"] = bytes("model_bytes_full");
      d["bytes_down_delta"] = bytes("model_bytes");
      if (!std::isnan(before) && !std::isnan(after)) {
        before_sum += before;
        after_sum += after;
        ++counted;
      }
      devices.push_back(d);
    }
    Json runs = Json::array();
    for (const auto& [id, r] : runs_) {
      Json res = r["result"].is_object() ? r["result"] : Json::object();
      Json steps = Json::array();
      for (const auto& s : res.value("steps", Json::array()))
        steps.push_back({{"name", s["name"]},
                         {"status", s["status"]},
                         {"duration_s", s["duration_s"]},
                         {"detail", s["detail"]}});
      auto rel_ms = [&](const Json& ms) {
        return ms.is_number() && ms.get<int64_t>() > 0
                   ? Json(static_cast<double>(ms.get<int64_t>()) / 1000.0 - wall0_)
                   : Json();
      };
      runs.push_back({{"id", id},
                      {"pipeline", r["pipeline"]},
                      {"trigger", r["trigger"]},
                      {"status", r["status"]},
                      {"steps", steps},
                      {"started_s", rel_ms(r["created_ms"])},
                      {"finished_s", rel_ms(r["finished_ms"])},
                      {"gates", res.value("gates", Json::array())},
                      {"model_version", res.value("model_version", "")},
                      {"metrics", res.value("metrics", Json::object())},
                      {"champion_metrics", res.value("champion_metrics", Json::object())}});
    }
    Json rollouts = Json::array();
    double fleet_updated_s = -1;
    for (const auto& [id, r] : rollouts_) {
      Json stages = Json::array();
      for (const auto& s : r["stages"]) {
        auto rel = [&](const char* k) {
          int64_t ms = s.value(k, int64_t{-1});
          return ms < 0 ? Json() : Json(static_cast<double>(ms) / 1000.0 - wall0_);
        };
        stages.push_back({{"name", s["name"]},
                          {"started_s", rel("started_ms")},
                          {"finished_s", rel("finished_ms")},
                          {"devices", s["devices"]},
                          {"result", s["result"]}});
      }
      rollouts.push_back({{"id", id},
                          {"model_version", r["model_version"]},
                          {"status", r["status"]},
                          {"stages", stages}});
    }
    for (const auto& e : events_)
      if (e["kind"] == "device_updated" && e.value("model_version", "") == new_version &&
          !new_version.empty())
        fleet_updated_s = std::max(fleet_updated_s, e["t_s"].get<double>());
    double first_trigger = -1;
    for (const auto& e : events_)
      if (e["kind"] == "trigger" && first_trigger < 0) first_trigger = e["t_s"];
    double onset = drift_onset_s_ >= 0 ? drift_onset_s_ : agents_started_s_;
    Json summary = {
        {"drift_onset_s", onset},
        {"first_trigger_s", first_trigger},
        {"fleet_updated_s", fleet_updated_s < 0 ? Json() : Json(fleet_updated_s)},
        {"time_to_fleet_s", fleet_updated_s < 0 ? Json() : Json(fleet_updated_s - onset)},
        {"accuracy_before_mean", counted ? Json(before_sum / counted) : Json()},
        {"accuracy_after_mean", counted ? Json(after_sum / counted) : Json()},
        {"scenario", o_.scenario},
        {"new_model_version", new_version},
        // Where the time before the loop went: getting the base model (its pre-training, or
        // next to nothing from the cache), the camera scenario's test frames, and when the
        // agents started.
        {"base_model_s", base_model_s_},
        {"base_model_cached", base_model_cached_},
        {"eval_sets_s", eval_sets_s_ < 0 ? Json() : Json(eval_sets_s_)},
        {"agents_started_s", agents_started_s_},
        {"transport", o_.transport}};
    if (o_.mqtt()) summary["mqtt"] = MqttCounters();
    Json report = {
        {"started_unix", started_unix_},
        {"finished_unix", std::time(nullptr)},
        {"edgeloop_version", CodeVersionString()},
        {"config",
         {{"devices", o_.devices},
          {"rate_hz", o_.rate_hz},
          {"base_epochs", o_.base_epochs},
          {"base_samples", o_.BaseSamples()},
          {"finetune_epochs", o_.finetune_epochs},
          {"trigger_samples", o_.trigger_samples},
          {"soak_minutes", o_.soak_minutes},
          {"scenario", o_.scenario},
          {"transport", o_.transport}}},
        {"devices", devices},
        {"series", {{"accuracy", series_acc_}, {"latency", series_lat_}, {"drift", series_drift_}}},
        {"events", events_},
        {"runs", runs},
        {"rollouts", rollouts},
        {"summary", summary}};
    if (!soak_.is_null()) report["soak"] = soak_;
    EDGELOOP_RETURN_IF_ERROR(MakeDirs(o_.report_dir));
    EDGELOOP_RETURN_IF_ERROR(
        WriteFileAtomic(o_.report_dir + "/report.json", report.dump(2) + "\n"));
    EDGELOOP_RETURN_IF_ERROR(cloud::WriteHtmlReport(report, o_.report_dir + "/index.html"));
    std::printf("\n%-8s %-18s %-16s %10s %10s\n", "device", "domain", "model now", "before",
                "after");
    for (const auto& d : devices) {
      auto f = [](const Json& v) {
        char b[16];
        if (v.is_number())
          std::snprintf(b, sizeof b, "%.3f", v.get<double>());
        else
          std::snprintf(b, sizeof b, "-");
        return std::string(b);
      };
      std::printf("%-8s %-18s %-16s %10s %10s\n", d["id"].get<std::string>().c_str(),
                  d["domain"].get<std::string>().c_str(),
                  d["model_version_after"].get<std::string>().c_str(),
                  f(d["accuracy_before"]).c_str(), f(d["accuracy_after"]).c_str());
    }
    std::printf("\nreport: %s/index.html (data: %s/report.json)\n", o_.report_dir.c_str(),
                o_.report_dir.c_str());
    return Status::Ok();
  }

  void Shutdown() {
    for (auto& cam : cameras_) cam->Stop();
    for (auto& a : agents_) a.Stop(std::chrono::seconds(5));
    server_.Stop(std::chrono::seconds(10));
    broker_.Stop(std::chrono::seconds(5));
  }

  std::string BrokerAddress() const { return "127.0.0.1:" + std::to_string(broker_port_); }

  // What went through the broker, from the server's metrics: samples messages, telemetry
  // and events by outcome, update metadata pushed.
  Json MqttCounters() {
    Json out = Json::object();
    if (!client_) return out;
    auto text = client_->GetBytes("/v1/metrics");
    if (!text.ok()) return out;
    for (const char* name :
         {"edgeloop_mqtt_ingest_messages_total", "edgeloop_mqtt_control_messages_total",
          "edgeloop_update_pushes_total"}) {
      size_t at = 0;
      const std::string key = std::string("\n") + name + "{";
      while ((at = text->find(key, at)) != std::string::npos) {
        size_t eol = text->find('\n', at + 1), space = text->rfind(' ', eol);
        if (eol == std::string::npos || space == std::string::npos || space < at) break;
        out[text->substr(at + 1, space - at - 1)] = std::atof(text->c_str() + space + 1);
        at = eol;
      }
    }
    return out;
  }

  DemoOptions o_;
  std::string exe_, base_dir_, base_onnx_, base_sha_, base_version_, data_, url_;
  int port_ = 0, broker_port_ = 0;
  double t0_ = 0, wall0_ = static_cast<double>(std::time(nullptr)), agents_started_s_ = 0,
         drift_onset_s_ = -1, base_model_s_ = 0, eval_sets_s_ = -1;
  bool base_model_cached_ = false;
  int64_t started_unix_ = 0;
  int phase_ = 1;  // drift phases so far (soak)
  Json soak_;      // the soak's outcome, for the report
  ChildProcess server_, broker_;
  std::vector<ChildProcess> agents_;
  std::optional<cloud::OperatorClient> client_;
  Json devices_ = Json::array(), events_ = Json::array(), series_acc_ = Json::array(),
       series_lat_ = Json::array(), series_drift_ = Json::array();
  std::map<std::string, Json> runs_, rollouts_;
  std::map<std::string, std::string> last_version_;
  // Per device and model version: sum of accuracy x labelled samples, and the samples.
  std::map<std::string, std::map<std::string, std::pair<double, double>>> acc_by_version_;
  std::map<std::string, std::map<std::string, double>> bytes_;
  std::map<std::string, int64_t> last_seen_;
  std::string profile_;
  std::atomic<bool> interrupted_{false};
  std::set<std::string> drift_alarmed_;
  std::optional<data::Dataset> scenes_;  // camera: what the cameras film
  std::vector<std::unique_ptr<demo::FrameWriter>> cameras_;
};

}  // namespace

void RegisterDemo(CLI::App& root) {
  auto o = std::make_shared<DemoOptions>();
  CLI::App* sub = root.add_subcommand(
      "demo",
      "Run the whole loop on this machine: server, agents with shifted domains, "
      "retraining, gated canary rollout, report");
  sub->add_option("--dir", o->dir, "Working folder (server data, agent state, logs); replaced")
      ->capture_default_str();
  sub->add_option("--report", o->report_dir, "Where report/index.html and report.json go")
      ->capture_default_str();
  sub->add_option("--cache", o->cache_dir, "Cache for the pre-trained base model")
      ->capture_default_str();
  sub->add_option("--devices", o->devices, "Agent processes, one domain each")
      ->check(CLI::Range(1, 16))
      ->capture_default_str();
  sub->add_option("--rate", o->rate_hz, "Samples per second per device")
      ->check(CLI::Range(1.0, 1000.0))
      ->capture_default_str();
  sub->add_option("--base-epochs", o->base_epochs, "Epochs of the base model's pre-training")
      ->check(CLI::Range(1, 50))
      ->capture_default_str();
  sub->add_option("--finetune-epochs", o->finetune_epochs, "Epochs of the retraining run")
      ->check(CLI::Range(1, 50))
      ->capture_default_str();
  sub->add_option("--trigger-samples", o->trigger_samples,
                  "New labelled samples that trigger retraining")
      ->check(CLI::Range(int64_t{50}, int64_t{1000000}))
      ->capture_default_str();
  sub->add_option("--timeout", o->timeout_s, "Give up after this many seconds")
      ->check(CLI::Range(30, 7200))
      ->capture_default_str();
  sub->add_option("--scenario", o->scenario,
                  "good: the loop closes; bad: a broken model must be stopped by the gates or "
                  "the canary; camera: the loop on 64x64 RGB JPEG frames from each device's own "
                  "camera, with a MobileNetV2")
      ->check(CLI::IsMember({"good", "bad", "camera"}))
      ->capture_default_str();
  sub->add_option("--width-mult", o->width_mult, "camera: the base MobileNetV2's width multiplier")
      ->check(CLI::Range(0.25, 2.0))
      ->capture_default_str();
  sub->add_option("--camera-input", o->input_side,
                  "camera: the side of the base model's input; frames (64x64) are resized to it")
      ->check(CLI::Range(16, 64))
      ->capture_default_str();
  sub->add_option("--base-samples", o->base_samples,
                  "Training images of the base model (0 = all 60000; by default 6000 for the "
                  "camera scenario, all for the others)")
      ->check(CLI::Range(0, 60000));
  sub->add_option("--soak-minutes", o->soak_minutes,
                  "good: keep the loop running this long, with a second drift phase after the "
                  "first rollout; the demo fails unless it retrained exactly twice")
      ->check(CLI::Range(0, 600))
      ->capture_default_str();
  sub->add_option("--latency-budget-us", o->latency_budget_us,
                  "The devices' latency budget: a run whose model's batch-1 p95 on the edge "
                  "runtime exceeds it is rejected")
      ->check(CLI::Range(100, 10000000))
      ->capture_default_str();
  sub->add_option("--transport", o->transport,
                  "https: devices use the HTTPS device API; mqtt: a Mosquitto broker (started "
                  "here) carries samples, telemetry and update events, and pushes update "
                  "metadata")
      ->check(CLI::IsMember({"https", "mqtt"}))
      ->capture_default_str();
  sub->add_option("--pipeline", o->pipeline_file,
                  "Use this pipeline YAML instead of the built-in one");
  sub->add_flag("--keep-running", o->keep_running,
                "After the report, keep the server and the agents up to watch in the dashboard "
                "(its address is printed at the start); Ctrl-C stops them");
  SetAction(sub, [o] {
    if (o->soak_minutes > 0 && o->scenario != "good") {
      std::fprintf(stderr, "demo: --soak-minutes needs --scenario good\n");
      return static_cast<int>(kExitUsage);
    }
    // The loop must fit in the soak, and the soak in the timeout.
    if (o->soak_minutes > 0) o->timeout_s = std::max(o->timeout_s, o->soak_minutes * 60 + 300);
    return Demo(*o).Run();
  });
}

}  // namespace edgeloop::cli
