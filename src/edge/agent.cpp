#include "edge/agent.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <deque>
#include <functional>
#include <iostream>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/crypto.hpp"
#include "common/file.hpp"
#include "common/hash.hpp"
#include "edge/cloud_client.hpp"
#include "edge/device_clock.hpp"
#include "edge/drift.hpp"
#include "edge/inference_loop.hpp"
#ifdef EDGELOOP_HAS_MQTT
#include "edge/mqtt_upload_transport.hpp"
#endif
#include "edge/root_trust.hpp"
#include "edge/runtime_classifier.hpp"
#include "edge/sampler.hpp"
#include "edge/sources.hpp"
#include "edge/spool.hpp"
#include "edge/telemetry.hpp"
#include "edge/updater.hpp"
#include "edge/uploader.hpp"

namespace edgeloop::edge {
namespace {

using Clock = std::chrono::steady_clock;

void Log(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void Log(const char* fmt, ...) {
  char line[1024];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(line, sizeof(line), fmt, args);
  va_end(args);
  std::fprintf(stderr, "edgeloop-agent: %s\n", line);
}

int64_t UnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Clock::duration Seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

// Image sources convert to the model's input spec, so the device feeds what training saw.
Result<std::unique_ptr<Source>> OpenSource(const AgentConfig& c,
                                           const std::optional<data::InputSpec>& input) {
  if (c.source_kind == "replay") {
    ReplayOptions options = c.replay;
    options.input = input;
    EDGELOOP_ASSIGN_OR_RETURN(auto src, ReplaySource::Open(c.dataset, options));
    return std::unique_ptr<Source>(std::move(src));
  }
  std::unique_ptr<Source> src;
  if (c.source_kind == "watch")
    src = std::make_unique<WatchedDirectorySource>(c.watch_dir, c.delete_after_read);
  else
    src = std::make_unique<JsonLinesSource>(std::cin);
  src->SetInputSpec(input);
  return src;
}

}  // namespace

struct Agent::Impl {
  AgentConfig cfg;
  DeviceIdentity id;
  std::shared_ptr<CloudClient> control, upload;
  // The uploader's bytes when it does not go through `upload` (transport mqtt).
  std::function<uint64_t()> mqtt_bytes_up = [] { return uint64_t{0}; };
  std::function<uint64_t()> mqtt_bytes_down = [] { return uint64_t{0}; };
#ifdef EDGELOOP_HAS_MQTT
  // Transport mqtt: the broker connection, which also carries telemetry, update events and
  // the pushed update metadata (mqtt_upload_transport.hpp).
  std::shared_ptr<MqttUploadTransport> mqtt;
#endif
  // The event in flight over MQTT: its id and when it was published.
  uint64_t next_event_id = 0, event_in_flight = 0;
  Clock::time_point event_sent_at;
  std::shared_ptr<CloudArtifactFetcher> fetcher;
  std::unique_ptr<Spool> spool;
  std::unique_ptr<Uploader> uploader;
  std::unique_ptr<Updater> updater;
  std::unique_ptr<RuntimeClassifier> model;
  SlotInfo loaded;  // the slot and version `model` was loaded from
  bool announced = false;
  bool drift_learning = false;  // the drift reference is being re-learned after an update
  std::unique_ptr<Source> source;
  std::unique_ptr<Sampler> sampler;
  Telemetry telemetry;
  std::unique_ptr<DriftMonitor> drift;
  std::unique_ptr<InferenceLoop> loop;
  // Update events wait here until the server took them (the server may be away).
  std::deque<std::pair<UpdateEvent, int64_t>> events;
  std::string refused_sha;  // metadata refused for good: not offered again
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::condition_variable cv;
  uint64_t errors_logged = 0;

  // Credentials over time: the trusted root, the server's signed time, the certificate and
  // its renewal (docs/edge.md, "Credentials").
  DeviceClock clock;
  std::optional<TrustedRoot> root;
  crypto::CertificateInfo cert;
  uint64_t renewal_failures = 0;
  std::string renewal_error;
  double renew_backoff_s = 0;
  Clock::time_point next_renewal = Clock::now();
  bool waiting_for_time_logged = false;
  int64_t skew_logged = 0;

  Status Init();
  Result<std::shared_ptr<UploadTransport>> OpenUploadTransport();
  Status LoadActiveModel();
  runtime::ModelOptions ModelLimits() const {
    runtime::ModelOptions o;
    o.max_flops = cfg.model_max_gflops * 1e9;
    o.max_arena_bytes = static_cast<size_t>(cfg.model_max_arena_mib) << 20;
    return o;
  }
  void Infer(const Sample& s);
  void SendTelemetry();
  void PollDeployment();
  void OfferDeployment(const std::string& doc);
  void FlushEvents();
  // Newer roots (N -> N+1 -> ...), then the server's signed time.
  void RefreshTrust();
  // Renews the certificate once renew_at of its lifetime has passed (by the trusted time).
  void MaybeRenewCertificate();
  Status InstallRenewedCertificate(const std::string& key_pem, const std::string& cert_pem);
  Status LoadCertificateInfo();
  // FlushEvents over MQTT, for the front event: settled (stored, or refused for good: popped),
  // waiting (for its answer, or for the link to come back), or over HTTPS (no MQTT, or the
  // broker away).
  enum class EventOverMqtt { kSettled, kWaiting, kUseHttps };
  EventOverMqtt FlushFrontEventOverMqtt();
};

Status Agent::Impl::Init() {
  EDGELOOP_RETURN_IF_ERROR(MakeDirs(cfg.data_dir));
  EDGELOOP_ASSIGN_OR_RETURN(id, LoadOrEnroll({cfg.server_url, cfg.data_dir, cfg.device_id,
                                              cfg.enrollment_token, cfg.ca_file}));
  if (!cfg.device_id.empty() && cfg.device_id != id.device_id)
    return Error(Errc::kInvalidArgument, cfg.data_dir + " holds the identity of device " +
                                             id.device_id + ", not " + cfg.device_id);
  Log("device %s (group '%s') at %s", id.device_id.c_str(), id.group.c_str(),
      cfg.server_url.c_str());
  control = std::make_shared<CloudClient>(cfg.server_url, id);
  upload = std::make_shared<CloudClient>(cfg.server_url, id);
  EDGELOOP_RETURN_IF_ERROR(LoadCertificateInfo());
  renew_backoff_s = cfg.renew_retry_s;
  {
    auto trusted = TrustedRoot::Load(id.identity_dir, id.root_json, id.update_public_key_pem);
    if (!trusted.ok()) return trusted.error();
    root = std::move(*trusted);
  }
  if (clock.offset_s() != 0)
    Log("device clock shifted by %lld s (EDGELOOP_AGENT_CLOCK_OFFSET_S, for tests)",
        static_cast<long long>(clock.offset_s()));

  EDGELOOP_ASSIGN_OR_RETURN(spool, Spool::Open(cfg.data_dir + "/spool", cfg.spool));
  UploaderOptions uo = cfg.upload;
  uo.device_id = id.device_id;
  EDGELOOP_ASSIGN_OR_RETURN(auto transport, OpenUploadTransport());
  uploader = std::make_unique<Uploader>(*spool, std::move(transport), uo);

  UpdaterOptions opt;
  opt.update_public_key_pem = id.update_public_key_pem;
  opt.trusted_time = [this] { return clock.trusted(); };
  opt.accepted_targets = {id.device_id};
  if (!id.group.empty()) opt.accepted_targets.push_back("group:" + id.group);
  opt.probation = cfg.probation;
  opt.health_check = [limits = ModelLimits()](const std::string& path, const UpdateMetadata& md) {
    return CheckModelHealth(path, md, limits);
  };
  opt.reporter = [this](const UpdateEvent& e) {
    Log("update: %s version %llu (model %s)%s%s", UpdatePhaseName(e.phase),
        static_cast<unsigned long long>(e.version), e.model_version.c_str(),
        e.reason.empty() ? "" : ": ", e.reason.c_str());
    if (events.size() < 1000) events.emplace_back(e, UnixMs());
  };
  // Event ids only need to differ from those of earlier runs whose answers may still wait in
  // the broker session: start from the clock.
  next_event_id = static_cast<uint64_t>(UnixMs()) * 1000;
  fetcher = std::make_shared<CloudArtifactFetcher>(control);
  EDGELOOP_ASSIGN_OR_RETURN(updater, Updater::Open(cfg.data_dir + "/models", opt, fetcher));
  updater->SetRoot(root->root());
  Log("trusted root metadata version %llu%s", static_cast<unsigned long long>(root->root().version),
      id.root_json.empty() ? " (the pinned update key)" : "");
  if (!updater->installed()) {
    if (cfg.model_path.empty())
      return Error(Errc::kInvalidArgument, "no model installed yet and no model.path configured");
    EDGELOOP_ASSIGN_OR_RETURN(std::string bytes, ReadFile(cfg.model_path));
    // Checked before it becomes the factory model: a device must start on a model that runs.
    auto factory = RuntimeClassifier::Load(cfg.model_path, ModelLimits());
    if (!factory.ok()) return factory.error().WithContext("model.path");
    EDGELOOP_RETURN_IF_ERROR(updater->Bootstrap(bytes, 0, "{}", cfg.model_version));
  }

  sampler = std::make_unique<Sampler>(cfg.sampling);
  if (!cfg.model_profile.empty()) {
    EDGELOOP_ASSIGN_OR_RETURN(std::string text, ReadFile(cfg.model_profile, 16 << 20));
    auto profile = ReferenceProfile::FromJson(text);
    if (!profile.ok()) return profile.error().WithContext(cfg.model_profile);
    // A reference re-learned after an update (see LoadActiveModel) replaces the shipped one
    // while the device runs that model.
    auto learned = ReadFile(cfg.data_dir + "/drift-reference.json", 16 << 20);
    if (learned.ok()) {
      auto j = nlohmann::json::parse(*learned, nullptr, false);
      if (j.is_object() && j.value("model_version", "") == updater->active().model_version) {
        auto p = ReferenceProfile::FromJson(j.value("profile", ""));
        if (p.ok()) profile = std::move(p);
      }
    }
    drift = std::make_unique<DriftMonitor>(std::move(*profile), cfg.drift);
  }
  InferenceLoopParts parts;
  parts.spool = spool.get();
  parts.sampler = sampler.get();
  parts.telemetry = &telemetry;
  parts.drift = drift.get();
  parts.updater = updater.get();
  loop = std::make_unique<InferenceLoop>(parts);
  EDGELOOP_RETURN_IF_ERROR(LoadActiveModel());
  EDGELOOP_ASSIGN_OR_RETURN(source, OpenSource(cfg, model->input_spec()));
  Log("source %s", source->Describe().c_str());
  return Status::Ok();
}

Result<std::shared_ptr<UploadTransport>> Agent::Impl::OpenUploadTransport() {
  if (cfg.upload_transport != "mqtt")
    return std::shared_ptr<UploadTransport>(std::make_shared<CloudUploadTransport>(upload));
#ifdef EDGELOOP_HAS_MQTT
  MqttUploadOptions o;
  o.broker = cfg.mqtt_broker;
  o.ack_timeout = cfg.mqtt_ack_timeout;
  o.log = [](const std::string& line) { Log("%s", line.c_str()); };
  auto t = MqttUploadTransport::Connect(id, std::move(o));
  if (!t.ok()) return t.error();
  mqtt = std::move(*t);
  mqtt_bytes_up = [m = mqtt] { return m->bytes_up(); };
  mqtt_bytes_down = [m = mqtt] { return m->bytes_down(); };
  Log("samples, telemetry and update events over MQTT to %s; update metadata pushed by it",
      cfg.mqtt_broker.ToString().c_str());
  return std::shared_ptr<UploadTransport>(mqtt);
#else
  return Error(Errc::kInvalidArgument,
               "upload.transport: mqtt, but this agent was built without MQTT "
               "(EDGELOOP_WITH_MQTT=OFF: libmosquitto was not found)");
#endif
}

Status Agent::Impl::LoadActiveModel() {
  const SlotInfo& a = updater->active();
  if (model && a.slot == loaded.slot && a.version == loaded.version) return Status::Ok();
  auto m = RuntimeClassifier::Load(updater->ActiveModelPath(), ModelLimits());
  if (!m.ok()) return m.error().WithContext("active model");
  // A new model (not the first load): its inputs are the device's current inputs, so the
  // drift reference is re-learned from the next window of samples.
  if (model && drift && a.model_version != loaded.model_version) {
    drift->Rebaseline(cfg.drift.window);
    drift_learning = true;
  }
  model = std::move(*m);
  if (source) source->SetInputSpec(model->input_spec());
  loaded = a;
  announced = false;
  loop->SetModel(model.get(), a.model_version);
  telemetry.SetModelVersion(a.model_version);
  Log("model %s (metadata version %llu, slot %s) loaded", a.model_version.c_str(),
      static_cast<unsigned long long>(a.version), a.slot.c_str());
  return Status::Ok();
}

void Agent::Impl::Infer(const Sample& s) {
  double now_s = std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
  auto o = loop->Process(s, now_s);
  if (!o.ok()) {
    if (errors_logged++ < 20) Log("sample %s: %s", s.id.c_str(), o.error().message.c_str());
  } else if (!announced) {
    announced = true;
    Log("inferring with model %s: first prediction %d (confidence %.3f)",
        loaded.model_version.c_str(), o->prediction, o->confidence);
  }
}

void Agent::Impl::SendTelemetry() {
  SpoolStats st = spool->Stats();
  telemetry.SetSpool(st.depth_records, st.depth_bytes, st.dropped_records);
  if (drift) telemetry.SetDrift(drift->Scores());
  if (drift && drift_learning && !drift->rebaselining()) {
    drift_learning = false;
    nlohmann::json j = {{"model_version", loaded.model_version},
                        {"profile", drift->reference().ToJson()}};
    Status saved = WriteFileAtomic(cfg.data_dir + "/drift-reference.json", j.dump());
    Log("drift reference re-learned for model %s%s", loaded.model_version.c_str(),
        saved.ok() ? "" : (" (not saved: " + saved.error().message + ")").c_str());
  }
  telemetry.SetTransfer(upload->bytes_up() + control->bytes_up() + mqtt_bytes_up(),
                        upload->bytes_down() + control->bytes_down() + mqtt_bytes_down());
  telemetry.SetModelTransfer(fetcher->bytes_moved(), fetcher->bytes_full_equivalent());
  Telemetry::Credentials creds;
  creds.cert_not_after_ms = cert.not_after_unix * 1000;
  creds.renewal_failures = renewal_failures;
  creds.renewal_error = renewal_error;
  creds.root_version = root->root().version;
  creds.clock_skew_s = clock.skew();
  telemetry.SetCredentials(creds);
  std::string snapshot = telemetry.SnapshotJson(UnixMs() / 1000);
#ifdef EDGELOOP_HAS_MQTT
  if (mqtt) {
    Status over_mqtt = mqtt->PublishTelemetry(snapshot);
    if (over_mqtt.ok()) return;
    // Connecting or reconnecting: the next snapshot goes once the link is back.
    if (!mqtt->away()) return;
    Log("telemetry over MQTT: %s; sending it over HTTPS", over_mqtt.error().message.c_str());
  }
#endif
  Status sent = control->PostTelemetry(snapshot);
  if (!sent.ok()) Log("telemetry not sent: %s", sent.error().message.c_str());
}

Status Agent::Impl::LoadCertificateInfo() {
  auto pem = ReadFile(id.cert_file, 64 << 10);
  if (!pem.ok()) return pem.error();
  auto info = crypto::ParseCertificate(*pem);
  if (!info.ok()) return info.error().WithContext(id.cert_file);
  cert = *info;
  return Status::Ok();
}

void Agent::Impl::RefreshTrust() {
  auto newest = control->FetchNewestRootVersion();
  auto moved = newest.ok()
                   ? root->Update(*newest, [this](uint64_t v) { return control->FetchRoot(v); })
                   : Result<uint64_t>(newest.error());
  if (!moved.ok()) {
    // The device stays on the root it trusts (and on its model); the server's log and the
    // next poll tell the operator more. A transport failure is not a refusal.
    Log("root metadata %s: %s; keeping root version %llu",
        moved.error().code == Errc::kIo ? "not checked" : "refused", moved.error().message.c_str(),
        static_cast<unsigned long long>(root->root().version));
  } else if (*moved > 0) {
    updater->SetRoot(root->root());
    // Metadata refused under the old root (signed by a targets key it did not list, pushed
    // before this poll walked the roots) may verify now: offer it again.
    refused_sha.clear();
    Log("trusted root metadata now version %llu (%llu rotation(s) accepted)",
        static_cast<unsigned long long>(root->root().version),
        static_cast<unsigned long long>(*moved));
  }
  const std::string nonce = crypto::RandomHex(16);
  auto doc = control->FetchSignedTime(nonce);
  if (!doc.ok()) {
    if (!clock.trusted()) Log("signed time: %s", doc.error().message.c_str());
    return;
  }
  auto t = VerifyServerTime(*doc, root->root(), nonce);
  if (!t.ok()) {
    Log("signed time refused: %s", t.error().message.c_str());
    return;
  }
  const bool first = !clock.trusted();
  clock.SetServerTime(*t);
  int64_t skew = *clock.skew();
  if (first)
    Log("signed server time received (root %llu's targets key): updates and renewal may go ahead",
        static_cast<unsigned long long>(root->root().version));
  if ((skew > 300 || skew < -300) && (skew - skew_logged > 300 || skew_logged - skew > 300)) {
    skew_logged = skew;
    Log("device clock is %lld s off the server's signed time; the signed time is used",
        static_cast<long long>(skew));
  }
}

Status Agent::Impl::InstallRenewedCertificate(const std::string& key_pem,
                                              const std::string& cert_pem) {
  auto info = crypto::ParseCertificate(cert_pem);
  if (!info.ok()) return info.error().WithContext("renewed certificate");
  if (info->common_name != id.device_id)
    return Error(Errc::kMismatch, "renewed certificate is for " + info->common_name);
  auto ca = ReadFile(id.ca_file, 64 << 10);
  if (!ca.ok()) return ca.error();
  EDGELOOP_RETURN_IF_ERROR(crypto::VerifyIssuedBy(cert_pem, *ca));
  // The order LoadIdentity() recovers from: key.new, crt.new, then the two renames.
  const std::string dir = id.identity_dir;
  EDGELOOP_RETURN_IF_ERROR(WriteFileAtomic(dir + "/device.key.new", key_pem, 0600));
  EDGELOOP_RETURN_IF_ERROR(WriteFileAtomic(dir + "/device.crt.new", cert_pem));
  if (std::rename((dir + "/device.key.new").c_str(), id.key_file.c_str()) != 0 ||
      std::rename((dir + "/device.crt.new").c_str(), id.cert_file.c_str()) != 0)
    return Error(Errc::kIo, dir + ": renaming the renewed certificate into place failed");
  EDGELOOP_RETURN_IF_ERROR(FsyncDirectory(dir));
  cert = *info;
  control->ReloadCredentials();
  upload->ReloadCredentials();
  return Status::Ok();
}

void Agent::Impl::MaybeRenewCertificate() {
  auto now = clock.trusted();
  if (!now || Clock::now() < next_renewal) return;
  const int64_t lifetime = cert.not_after_unix - cert.not_before_unix;
  const int64_t due = cert.not_before_unix + static_cast<int64_t>(cfg.renew_at * lifetime);
  if (*now < due) return;
  auto fail = [this](const std::string& why) {
    ++renewal_failures;
    renewal_error = why;
    next_renewal = Clock::now() + Seconds(renew_backoff_s);
    Log("certificate renewal failed (%llu in a row): %s; next attempt in %.1f s",
        static_cast<unsigned long long>(renewal_failures), why.c_str(), renew_backoff_s);
    renew_backoff_s = std::min(renew_backoff_s * 2, cfg.renew_retry_max_s);
  };
  auto key = crypto::GenerateTlsKeyPem();
  if (!key.ok()) return fail(key.error().message);
  auto csr = crypto::CreateCsr(*key, id.device_id);
  if (!csr.ok()) return fail(csr.error().message);
  auto renewed = control->RenewCertificate(*csr);
  if (!renewed.ok()) return fail(renewed.error().message);
  Status installed = InstallRenewedCertificate(*key, renewed->certificate_pem);
  if (!installed.ok()) return fail(installed.error().message);
  renewal_failures = 0;
  renewal_error.clear();
  renew_backoff_s = cfg.renew_retry_s;
  Log("certificate renewed: serial %llu, valid until %lld (the previous one until %lld)",
      static_cast<unsigned long long>(cert.serial), static_cast<long long>(cert.not_after_unix),
      static_cast<long long>(renewed->previous_valid_until_ms / 1000));
}

void Agent::Impl::PollDeployment() {
  RefreshTrust();
  if (!clock.trusted()) {
    if (!waiting_for_time_logged)
      Log("update check waits: the time is not known yet (no signed server time); the "
          "installed model keeps running");
    waiting_for_time_logged = true;
    return;
  }
  auto doc = control->FetchDeployment();
  if (!doc.ok()) {
    Log("deployment poll: %s", doc.error().message.c_str());
    return;
  }
  if (doc->has_value()) OfferDeployment(**doc);
}

void Agent::Impl::OfferDeployment(const std::string& doc) {
  std::string sha = Sha256Hex(doc);
  if (sha == refused_sha) return;
  Status st = updater->Offer(doc);
  if (!st.ok()) {
    // A refusal is for good (until new metadata arrives); a paused download (network, disk
    // full) resumes at the next poll.
    if (st.error().code != Errc::kIo && st.error().code != Errc::kResourceExhausted &&
        st.error().code != Errc::kUnavailable)
      refused_sha = sha;
    Log("update not installed: %s", st.error().message.c_str());
  }
}

Agent::Impl::EventOverMqtt Agent::Impl::FlushFrontEventOverMqtt() {
#ifdef EDGELOOP_HAS_MQTT
  if (!mqtt) return EventOverMqtt::kUseHttps;
  const auto& [e, ts_ms] = events.front();
  if (event_in_flight != 0) {
    auto answer = mqtt->EventAnswer(event_in_flight);
    if (answer) {
      if (!answer->ok())
        Log("update event %s refused by the cloud (status %d): %s; dropped",
            UpdatePhaseName(e.phase), answer->status, answer->error.c_str());
      events.pop_front();
      event_in_flight = 0;
      return EventOverMqtt::kSettled;
    }
    if (Clock::now() - event_sent_at < cfg.mqtt_ack_timeout) return EventOverMqtt::kWaiting;
  }
  uint64_t id = ++next_event_id;
  nlohmann::json j = {{"id", id},
                      {"phase", UpdatePhaseName(e.phase)},
                      {"version", e.version},
                      {"model_version", e.model_version},
                      {"reason", e.reason},
                      {"ts_ms", ts_ms}};
  Status st = mqtt->PublishEvent(id, j.dump());
  if (!st.ok()) {
    event_in_flight = 0;
    return mqtt->away() ? EventOverMqtt::kUseHttps : EventOverMqtt::kWaiting;
  }
  event_in_flight = id;
  event_sent_at = Clock::now();
  return EventOverMqtt::kWaiting;
#else
  return EventOverMqtt::kUseHttps;
#endif
}

void Agent::Impl::FlushEvents() {
  while (!events.empty()) {
    // Over MQTT one event is in flight at a time, so they arrive in order; HTTPS takes over
    // while the broker is away.
    EventOverMqtt over_mqtt = FlushFrontEventOverMqtt();
    if (over_mqtt == EventOverMqtt::kSettled) continue;
    if (over_mqtt == EventOverMqtt::kWaiting) return;
    Status st = control->PostEvent(events.front().first, events.front().second);
    if (!st.ok()) return;  // the next round retries
    events.pop_front();
  }
}

Agent::Agent(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Agent::~Agent() = default;

Result<std::unique_ptr<Agent>> Agent::Create(const AgentConfig& config) {
  auto impl = std::make_unique<Impl>();
  impl->cfg = config;
  EDGELOOP_RETURN_IF_ERROR(impl->Init());
  return std::unique_ptr<Agent>(new Agent(std::move(impl)));
}

void Agent::Stop() {
  impl_->stop = true;
  impl_->cv.notify_all();
}

Status Agent::Run() {
  Impl& a = *impl_;
  std::thread upload_thread([&a] { a.uploader->Run(std::chrono::milliseconds(200)); });
  auto next_telemetry = Clock::now() + Seconds(a.cfg.telemetry_interval_s);
  auto next_poll = Clock::now();
  bool source_done = false;
  Status result;
  while (!a.stop) {
    if (!source_done) {
      auto s = a.source->Next(std::chrono::milliseconds(100));
      if (!s.ok()) {
        Log("source: %s", s.error().message.c_str());
        std::unique_lock<std::mutex> lock(a.mu);
        a.cv.wait_for(lock, std::chrono::milliseconds(500), [&a] { return a.stop.load(); });
      } else if (s->has_value()) {
        a.Infer(**s);
      } else if (a.source->Exhausted()) {
        source_done = true;
        Log("source exhausted; uploading and updating until stopped");
      }
    } else {
      std::unique_lock<std::mutex> lock(a.mu);
      a.cv.wait_for(lock, std::chrono::milliseconds(100), [&a] { return a.stop.load(); });
    }
    auto now = Clock::now();
    if (now >= next_poll) {
      next_poll = now + Seconds(a.cfg.update_poll_s);
      a.PollDeployment();
    }
#ifdef EDGELOOP_HAS_MQTT
    if (a.mqtt)
      if (auto pushed = a.mqtt->TakePushedUpdate()) {
        Log("update metadata pushed over MQTT");
        a.OfferDeployment(*pushed);
      }
#endif
    a.MaybeRenewCertificate();
    if (now >= next_telemetry) {
      next_telemetry = now + Seconds(a.cfg.telemetry_interval_s);
      a.SendTelemetry();
    }
    // A probation that ended (commit or rollback) or a new update may change the model.
    Status loaded = a.LoadActiveModel();
    if (!loaded.ok()) {
      result = loaded;
      break;
    }
    a.FlushEvents();
  }
  a.uploader->Stop();
  upload_thread.join();
  SpoolStats st = a.spool->Stats();
  Log("stopped: %llu samples waiting in the spool, %llu uploaded this run",
      static_cast<unsigned long long>(st.depth_records),
      static_cast<unsigned long long>(a.uploader->stats().records_acked));
  return result;
}

}  // namespace edgeloop::edge
