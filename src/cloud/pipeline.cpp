#include "cloud/pipeline.hpp"

#include "common/bounded_parse.hpp"

#include <cmath>
#include <cstdlib>
#include <set>
#include <sstream>

namespace edgeloop::cloud {
namespace {

using Json = nlohmann::json;

// Reads one section of the spec, refusing keys it does not know and values of the wrong type.
class Reader {
 public:
  Reader(const Json& j, std::string path, const std::string& origin)
      : j_(j), path_(std::move(path)), origin_(origin) {}

  Status Check() const {
    if (!j_.is_null() && !j_.is_object()) return Fail("", "expected a mapping");
    return Status::Ok();
  }

  template <typename T>
  Status Get(const std::string& key, T& out) {
    known_.insert(key);
    if (!j_.is_object() || !j_.contains(key) || j_[key].is_null()) return Status::Ok();
    const Json& v = j_[key];
    if constexpr (std::is_same_v<T, bool>) {
      if (!v.is_boolean()) return Fail(key, "expected true or false");
    } else if constexpr (std::is_integral_v<T>) {
      if (!v.is_number_integer()) return Fail(key, "expected an integer");
    } else if constexpr (std::is_floating_point_v<T>) {
      if (!v.is_number()) return Fail(key, "expected a number");
    } else {
      if (!v.is_string()) return Fail(key, "expected a string");
    }
    out = v.get<T>();
    return Status::Ok();
  }

  template <typename T>
  Status GetInRange(const std::string& key, T& out, T lo, T hi) {
    EDGELOOP_RETURN_IF_ERROR(Get(key, out));
    if (out < lo || out > hi) {
      std::ostringstream m;
      m << out << " is outside [" << lo << ", " << hi << "]";
      return Fail(key, m.str());
    }
    return Status::Ok();
  }

  const Json& Raw(const std::string& key) {
    known_.insert(key);
    static const Json kNull;
    return j_.is_object() && j_.contains(key) ? j_[key] : kNull;
  }

  Status Done() const {
    if (!j_.is_object()) return Status::Ok();
    for (const auto& [key, v] : j_.items())
      if (!known_.count(key)) return Fail(key, "unknown key");
    return Status::Ok();
  }

  Error Fail(const std::string& key, const std::string& what) const {
    std::string where = path_.empty() ? key : (key.empty() ? path_ : path_ + "." + key);
    return Error(Errc::kInvalidArgument, origin_ + ": " + where + ": " + what);
  }

 private:
  const Json& j_;
  std::string path_;
  const std::string& origin_;
  std::set<std::string> known_;
};

const std::set<std::string> kOps = {">=", "<=", ">", "<"};

}  // namespace

Result<Gate> ParseGate(const std::string& text) {
  std::istringstream in(text);
  Gate g;
  g.text = text;
  std::string rhs;
  if (!(in >> g.metric >> g.op >> rhs))
    return Error(Errc::kInvalidArgument,
                 "gate \"" + text + "\": expected <metric> <op> <number | champion [+|- n]>");
  if (!kOps.count(g.op))
    return Error(Errc::kInvalidArgument,
                 "gate \"" + text + "\": operator must be one of >=, <=, >, <");
  auto number = [&](const std::string& s, double* out) {
    char* end = nullptr;
    *out = std::strtod(s.c_str(), &end);
    return !s.empty() && *end == '\0' && std::isfinite(*out);
  };
  if (rhs == "champion") {
    g.vs_champion = true;
    std::string sign, amount;
    if (in >> sign) {
      if ((sign != "+" && sign != "-") || !(in >> amount) || !number(amount, &g.value))
        return Error(Errc::kInvalidArgument,
                     "gate \"" + text + "\": after champion expected + or - and a number");
      if (sign == "-") g.value = -g.value;
    }
  } else if (!number(rhs, &g.value)) {
    return Error(Errc::kInvalidArgument,
                 "gate \"" + text + "\": \"" + rhs + "\" is neither a number nor champion");
  }
  std::string extra;
  if (in >> extra)
    return Error(Errc::kInvalidArgument, "gate \"" + text + "\": unexpected \"" + extra + "\"");
  return g;
}

GateResult EvaluateGate(const Gate& gate, const std::map<std::string, double>& challenger,
                        const std::map<std::string, double>* champion) {
  GateResult r;
  r.expr = gate.text;
  auto it = challenger.find(gate.metric);
  if (it == challenger.end()) {
    r.detail = "the candidate has no metric " + gate.metric;
    return r;
  }
  r.value = it->second;
  if (gate.vs_champion) {
    if (champion == nullptr) {
      r.passed = true;
      r.threshold = std::nan("");
      r.detail = "no champion to compare with";
      return r;
    }
    auto c = champion->find(gate.metric);
    if (c == champion->end()) {
      r.detail = "the champion has no metric " + gate.metric;
      return r;
    }
    r.threshold = c->second + gate.value;
  } else {
    r.threshold = gate.value;
  }
  if (gate.op == ">=") r.passed = r.value >= r.threshold;
  if (gate.op == "<=") r.passed = r.value <= r.threshold;
  if (gate.op == ">") r.passed = r.value > r.threshold;
  if (gate.op == "<") r.passed = r.value < r.threshold;
  return r;
}

Result<PipelineSpec> ParsePipeline(const std::string& yaml_text, const std::string& origin) {
  // Pipeline specs are small; the limits stop alias bombs and deep nesting from any client.
  ParseLimits limits;
  limits.max_bytes = 256 << 10;
  limits.max_nodes = 20000;
  EDGELOOP_ASSIGN_OR_RETURN(Json root, ParseYamlBounded(yaml_text, origin, limits));
  if (!root.is_object()) return Error(Errc::kFormat, origin + ": expected a mapping");
  PipelineSpec p;
  p.source = yaml_text;
  // Unknown sections first: a misspelt "trian:" must be named as such, not reported as a
  // missing train.parent.
  for (const auto& [key, v] : root.items())
    if (!std::set<std::string>{"name", "trigger", "dataset", "train", "evaluate", "gates",
                               "package", "register", "rollout"}
             .count(key))
      return Error(Errc::kInvalidArgument, origin + ": " + key + ": unknown key");
  Reader top(root, "", origin);
  EDGELOOP_RETURN_IF_ERROR(top.Get("name", p.name));
  if (p.name.empty() ||
      p.name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-_") != std::string::npos)
    return top.Fail("name", "required, of [a-z0-9_-]");

  Reader trig(top.Raw("trigger"), "trigger", origin);
  EDGELOOP_RETURN_IF_ERROR(trig.Check());
  EDGELOOP_RETURN_IF_ERROR(trig.GetInRange<int64_t>(
      "new_labelled_samples", p.trigger.new_labelled_samples, 0, int64_t{1} << 40));
  EDGELOOP_RETURN_IF_ERROR(trig.Get("drift_alarm", p.trigger.drift_alarm));
  EDGELOOP_RETURN_IF_ERROR(trig.GetInRange<int64_t>(
      "min_labelled_samples", p.trigger.min_labelled_samples, 0, int64_t{1} << 40));
  EDGELOOP_RETURN_IF_ERROR(
      trig.GetInRange<int64_t>("schedule_seconds", p.trigger.schedule_seconds, 0, 366 * 86400));
  EDGELOOP_RETURN_IF_ERROR(trig.Done());

  const Json& ds = top.Raw("dataset");
  if (!ds.is_null() && !ds.is_object()) return top.Fail("dataset", "expected a mapping");
  p.dataset = ds.is_null() ? Json::object() : ds;

  Reader tr(top.Raw("train"), "train", origin);
  EDGELOOP_RETURN_IF_ERROR(tr.Check());
  TrainSpec& t = p.train;
  EDGELOOP_RETURN_IF_ERROR(tr.Get("mode", t.mode));
  EDGELOOP_RETURN_IF_ERROR(tr.Get("parent", t.parent));
  EDGELOOP_RETURN_IF_ERROR(tr.Get("strategy", t.strategy));
  EDGELOOP_RETURN_IF_ERROR(tr.GetInRange("k", t.k, 1, 16));
  EDGELOOP_RETURN_IF_ERROR(tr.GetInRange("epochs", t.epochs, 1, 1000));
  EDGELOOP_RETURN_IF_ERROR(tr.GetInRange("batch_size", t.batch_size, 1, 65536));
  EDGELOOP_RETURN_IF_ERROR(tr.GetInRange("lr", t.lr, 1e-8, 10.0));
  EDGELOOP_RETURN_IF_ERROR(tr.GetInRange("backbone_lr_scale", t.backbone_lr_scale, 0.0, 10.0));
  EDGELOOP_RETURN_IF_ERROR(tr.GetInRange("patience", t.patience, 0, 1000));
  EDGELOOP_RETURN_IF_ERROR(tr.GetInRange("min_epoch_samples", t.min_epoch_samples, 0, 1 << 24));
  EDGELOOP_RETURN_IF_ERROR(tr.Get("seed", t.seed));
  EDGELOOP_RETURN_IF_ERROR(tr.GetInRange("nproc", t.nproc, 1, 64));
  EDGELOOP_RETURN_IF_ERROR(tr.Done());
  if (t.mode != "finetune" && t.mode != "train")
    return tr.Fail("mode", "must be finetune or train");
  if (t.strategy != "head" && t.strategy != "last-k" && t.strategy != "full")
    return tr.Fail("strategy", "must be head, last-k or full");
  if (t.batch_size % t.nproc != 0)
    return tr.Fail("batch_size", "is the global batch and must be a multiple of nproc (" +
                                     std::to_string(t.nproc) + ")");
  if (t.mode == "finetune" && t.parent.empty())
    return tr.Fail("parent", "finetune needs a parent model (<model>@<stage> or <model>:<n>)");

  Reader ev(top.Raw("evaluate"), "evaluate", origin);
  EDGELOOP_RETURN_IF_ERROR(ev.Check());
  EDGELOOP_RETURN_IF_ERROR(ev.Get("robustness", p.evaluate.robustness));
  EDGELOOP_RETURN_IF_ERROR(ev.Get("latency", p.evaluate.latency));
  EDGELOOP_RETURN_IF_ERROR(
      ev.GetInRange("latency_samples", p.evaluate.latency_samples, 10, 100000));
  const Json& sets = ev.Raw("sets");
  if (!sets.is_null() && !sets.is_array()) return ev.Fail("sets", "expected a list");
  for (size_t i = 0; sets.is_array() && i < sets.size(); ++i) {
    Reader s(sets[i], "evaluate.sets[" + std::to_string(i) + "]", origin);
    EDGELOOP_RETURN_IF_ERROR(s.Check());
    EvalSet e;
    EDGELOOP_RETURN_IF_ERROR(s.Get("name", e.name));
    EDGELOOP_RETURN_IF_ERROR(s.Get("data", e.data));
    EDGELOOP_RETURN_IF_ERROR(s.Get("corrupt", e.corrupt));
    EDGELOOP_RETURN_IF_ERROR(s.GetInRange("severity", e.severity, 0, 5));
    EDGELOOP_RETURN_IF_ERROR(s.Done());
    if (e.name.empty() || e.data.empty() || e.name == "test")
      return s.Fail("", "needs a name (not \"test\") and data");
    p.evaluate.sets.push_back(e);
  }
  EDGELOOP_RETURN_IF_ERROR(ev.Done());

  const Json& gates = top.Raw("gates");
  if (!gates.is_null() && !gates.is_array()) return top.Fail("gates", "expected a list");
  for (size_t i = 0; gates.is_array() && i < gates.size(); ++i) {
    if (!gates[i].is_string())
      return top.Fail("gates[" + std::to_string(i) + "]", "expected a string");
    auto g = ParseGate(gates[i].get<std::string>());
    if (!g.ok()) return top.Fail("gates[" + std::to_string(i) + "]", g.error().message);
    p.gates.push_back(*g);
  }

  Reader pk(top.Raw("package"), "package", origin);
  EDGELOOP_RETURN_IF_ERROR(pk.Check());
  EDGELOOP_RETURN_IF_ERROR(pk.Get("int8", p.package_int8));
  EDGELOOP_RETURN_IF_ERROR(pk.GetInRange("calib_samples", p.calib_samples, 1, 100000));
  EDGELOOP_RETURN_IF_ERROR(pk.Done());

  Reader rg(top.Raw("register"), "register", origin);
  EDGELOOP_RETURN_IF_ERROR(rg.Check());
  EDGELOOP_RETURN_IF_ERROR(rg.Get("model", p.register_model));
  EDGELOOP_RETURN_IF_ERROR(rg.Get("stage", p.register_stage));
  EDGELOOP_RETURN_IF_ERROR(rg.Done());
  if (p.register_stage != "candidate" && p.register_stage != "staging")
    return rg.Fail("stage", "must be candidate or staging (production follows a rollout)");
  if (p.register_model.empty()) {
    auto at = t.parent.find_first_of("@:");
    p.register_model = t.parent.substr(0, at);
  }
  if (p.register_model.empty()) return rg.Fail("model", "required when there is no parent");

  const Json& ro = top.Raw("rollout");
  if (!ro.is_null() && !ro.is_object()) return top.Fail("rollout", "expected a mapping");
  p.rollout = ro;
  EDGELOOP_RETURN_IF_ERROR(top.Done());
  return p;
}

}  // namespace edgeloop::cloud
