// Helpers for tests and benchmarks that run real `edgeloop server` and `edgeloop-agent`
// processes: a small ONNX classifier built in code, a CSV dataset, an operator client, and
// the agent as a child process whose log goes to a file.
#pragma once

#include <onnx/onnx_pb.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cloud_test_util.hpp"
#include "edge/runtime_classifier.hpp"

namespace edgeloop::testing {

constexpr int kFeatures = 4;
constexpr int kClasses = 3;

// x[?,4] -> Gemm(W[3,4], b[3], transB) -> Softmax. `variant` shifts the weights so every
// version is a different file with different outputs; `pad_bytes` adds an unused
// initializer (a bigger artifact, so downloads take a while and can be interrupted).
inline std::string LinearModelOnnx(int variant, size_t pad_bytes = 0) {
  onnx::ModelProto m;
  m.set_ir_version(7);
  m.add_opset_import()->set_version(13);
  auto* g = m.mutable_graph();
  g->set_name("linear-v" + std::to_string(variant));
  auto value = [](google::protobuf::RepeatedPtrField<onnx::ValueInfoProto>* list,
                  const std::string& name, int64_t width) {
    auto* v = list->Add();
    v->set_name(name);
    auto* tt = v->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(onnx::TensorProto::FLOAT);
    tt->mutable_shape()->add_dim()->set_dim_param("batch");
    tt->mutable_shape()->add_dim()->set_dim_value(width);
  };
  auto init = [g](const std::string& name, std::vector<int64_t> dims, std::vector<float> vals) {
    auto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : dims) t->add_dims(d);
    for (float v : vals) t->add_float_data(v);
  };
  value(g->mutable_input(), "x", kFeatures);
  value(g->mutable_output(), "probs", kClasses);
  // Class c responds to feature c (the dataset's rule), plus a per-version perturbation.
  std::vector<float> w(kClasses * kFeatures, 0.0f);
  for (int c = 0; c < kClasses; ++c) w[c * kFeatures + c] = 4.0f;
  w[kFeatures - 1] += 0.01f * static_cast<float>(variant);
  init("W", {kClasses, kFeatures}, w);
  init("b", {kClasses}, {0.0f, 0.001f * static_cast<float>(variant), 0.0f});
  if (pad_bytes > 0)
    init("pad", {static_cast<int64_t>(pad_bytes / 4)}, std::vector<float>(pad_bytes / 4, 1.0f));
  auto* gemm = g->add_node();
  gemm->set_op_type("Gemm");
  gemm->set_name("fc");
  gemm->add_input("x");
  gemm->add_input("W");
  gemm->add_input("b");
  gemm->add_output("logits");
  auto* tb = gemm->add_attribute();
  tb->set_name("transB");
  tb->set_type(onnx::AttributeProto::INT);
  tb->set_i(1);
  auto* sm = g->add_node();
  sm->set_op_type("Softmax");
  sm->set_name("softmax");
  sm->add_input("logits");
  sm->add_output("probs");
  return m.SerializeAsString();
}

// A golden case for a model file: its own output on a fixed input (what a release pipeline
// would record); `wrong` shifts the expectation so the health check fails.
inline nlohmann::json GoldenFor(const std::string& model_path, bool wrong = false) {
  std::vector<float> in = {0.9f, 0.1f, 0.2f, 0.3f};
  auto model = edge::RuntimeClassifier::Load(model_path);
  auto out = (*model)->RunRaw({}, in);
  std::vector<float> expected = *out;
  if (wrong) expected[0] += 0.5f;
  return nlohmann::json::array({{{"input", in}, {"output", expected}, {"tolerance", 1e-4}}});
}

// rows of "f0,f1,f2,f3,label": feature `label` is high, the rest noise.
inline void WriteCsvDataset(const std::string& path, int rows, uint32_t seed = 5) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> noise(0.0f, 0.3f);
  std::ofstream f(path);
  f << "f0,f1,f2,f3,label\n";
  for (int r = 0; r < rows; ++r) {
    int label = r % kClasses;
    for (int k = 0; k < kFeatures; ++k) f << (k == label ? 0.7f + noise(rng) : noise(rng)) << ",";
    f << label << "\n";
  }
}

// Operator calls with the admin token.
class Operator {
 public:
  Operator(int port, const std::string& data_dir) : port_(port), data_dir_(data_dir) {}
  std::unique_ptr<httplib::SSLClient> Client() const {
    auto c = std::make_unique<httplib::SSLClient>("127.0.0.1", port_);
    c->set_ca_cert_path(data_dir_ + "/ca.crt");
    c->enable_server_certificate_verification(true);
    return c;
  }
  httplib::Headers Bearer() const {
    return {{"Authorization", "Bearer " + *ReadFile(data_dir_ + "/admin.token")}};
  }
  nlohmann::json Post(const std::string& path, const std::string& body,
                      const std::string& type = "application/json") const {
    auto res = Client()->Post(path, Bearer(), body, type);
    if (!res) return {{"error", "no answer"}};
    auto j = nlohmann::json::parse(res->body, nullptr, false);
    if (res->status != 200) return {{"error", res->body}};
    return j;
  }
  nlohmann::json Get(const std::string& path) const {
    auto res = Client()->Get(path, Bearer());
    if (!res || res->status != 200) return {{"error", res ? res->body : "no answer"}};
    return nlohmann::json::parse(res->body, nullptr, false);
  }
  std::string EnrollmentToken(const std::string& device) const {
    return Post("/v1/enrollment-tokens", nlohmann::json{{"device_id", device}}.dump())["token"];
  }
  // Uploads the artifact and deploys it to target; returns the signed metadata (or an error).
  nlohmann::json Deploy(const std::string& target, const std::string& bytes,
                        const std::string& model_version, const nlohmann::json& golden,
                        int64_t ttl_seconds = 3600) const {
    auto art = Post("/v1/artifacts", bytes, "application/octet-stream");
    if (art.contains("error")) return art;
    return Post("/v1/deployments/" + target, nlohmann::json{{"name", "model.onnx"},
                                                            {"model_version", model_version},
                                                            {"sha256", art["sha256"]},
                                                            {"golden", golden},
                                                            {"ttl_seconds", ttl_seconds}}
                                                 .dump());
  }
  uint64_t SampleCount(const std::string& device) const {
    auto j = Get("/v1/samples/counts?by=device");
    return j.contains("counts") ? j["counts"].value(device, uint64_t{0}) : 0;
  }
  // GET /v1/metrics: the Prometheus exposition ("" when the server does not answer 200).
  std::string Metrics() const {
    auto res = Client()->Get("/v1/metrics", Bearer());
    return res && res->status == 200 ? res->body : "";
  }
  // The device's update events, oldest first.
  nlohmann::json Events(const std::string& device) const {
    auto j = Get("/v1/fleet/events?device=" + device);
    return j.contains("events") ? j["events"] : nlohmann::json::array();
  }

 private:
  int port_;
  std::string data_dir_;
};

// A metric's value in the exposition (its full name with labels), 0 when absent.
inline double MetricValue(const std::string& exposition, const std::string& series) {
  size_t at = exposition.find("\n" + series + " ");
  return at == std::string::npos ? 0 : std::atof(exposition.c_str() + at + series.size() + 2);
}

// agent.yaml for a device; `extra` is appended (further sections).
inline std::string AgentYaml(const std::string& device, const std::string& state_dir, int port,
                             const std::string& token, const std::string& ca_file,
                             const std::string& model, const std::string& source_yaml,
                             const std::string& extra = "") {
  std::ostringstream y;
  y << "device: {id: " << device << ", data_dir: " << state_dir << "}\n"
    << "server: {url: https://127.0.0.1:" << port << ", enrollment_token: " << token
    << ", ca_file: " << ca_file << "}\n"
    << "model: {path: " << model << ", version: factory}\n"
    << source_yaml << extra;
  return y.str();
}

// edgeloop-agent as a child process; stderr goes to `log`.
class AgentProcess {
 public:
  AgentProcess(const std::string& binary, const std::string& config, const std::string& log) {
    pid_ = fork();
    if (pid_ == 0) {
      FILE* f = std::freopen(log.c_str(), "a", stderr);
      (void)f;
      execl(binary.c_str(), binary.c_str(), "--config", config.c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~AgentProcess() { Kill(SIGKILL); }
  pid_t pid() const { return pid_; }
  bool Alive() {
    if (pid_ <= 0) return false;
    if (waitpid(pid_, &status_, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    return true;
  }
  // Sends sig and reaps; returns the wait status.
  int Kill(int sig) {
    if (pid_ > 0) {
      kill(pid_, sig);
      waitpid(pid_, &status_, 0);
      pid_ = -1;
    }
    return status_;
  }

 private:
  pid_t pid_ = -1;
  int status_ = 0;
};

// Polls `pred` every 20 ms for at most `seconds`; true when it held.
template <typename Pred>
bool WaitFor(Pred pred, double seconds) {
  for (int i = 0; i < static_cast<int>(seconds * 50); ++i) {
    if (pred()) return true;
    usleep(20'000);
  }
  return pred();
}

// Occurrences of needle in the file.
inline size_t CountInFile(const std::string& path, const std::string& needle) {
  auto text = ReadFile(path);
  if (!text.ok()) return 0;
  size_t n = 0;
  for (size_t p = text->find(needle); p != std::string::npos; p = text->find(needle, p + 1)) ++n;
  return n;
}

}  // namespace edgeloop::testing
