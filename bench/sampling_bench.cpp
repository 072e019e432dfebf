// Sampling benchmark: how much upload bandwidth uncertainty sampling saves, compared with
// uniform sampling, for the same accuracy gain after retraining on the uploaded samples.
//
// Setup (plain C++, no libtorch, so it runs where the agent runs): a softmax-regression
// model is trained on clean Fashion-MNIST; a device sees a stream of corrupted images (its
// camera domain); each policy picks samples from that stream with the base model's
// probabilities (edge::Sampler, the agent's own code); the model is then fine-tuned on the
// clean set plus the picked, labelled samples and evaluated on the corrupted test split.
// Upload size is counted as 8-bit pixels plus a 32-byte header per sample.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>

#include "bench/bench_util.hpp"
#include "data/corruptions.hpp"
#include "data/dataset.hpp"
#include "edge/inference_loop.hpp"
#include "edge/sampler.hpp"

using namespace edgeloop;

namespace {

struct SoftmaxRegression {
  size_t in = 0, classes = 0;
  std::vector<float> w, b;

  SoftmaxRegression(size_t inputs, size_t k)
      : in(inputs), classes(k), w(inputs * k, 0.f), b(k, 0.f) {}

  std::vector<float> Probs(const float* x) const {
    std::vector<float> logits(classes);
    for (size_t c = 0; c < classes; ++c) {
      float s = b[c];
      const float* wc = w.data() + c * in;
      for (size_t i = 0; i < in; ++i) s += wc[i] * x[i];
      logits[c] = s;
    }
    return edge::Softmax(logits);
  }

  // Plain SGD on cross-entropy, one sample at a time, in a seeded order.
  void Train(const data::Dataset& d, const std::vector<size_t>& idx, int epochs, float lr,
             uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<size_t> order = idx;
    for (int e = 0; e < epochs; ++e) {
      std::shuffle(order.begin(), order.end(), rng);
      for (size_t i : order) {
        const float* x = d.sample(i);
        auto p = Probs(x);
        for (size_t c = 0; c < classes; ++c) {
          float g = p[c] - (static_cast<int32_t>(c) == d.y[i] ? 1.f : 0.f);
          float* wc = w.data() + c * in;
          for (size_t k = 0; k < in; ++k) wc[k] -= lr * g * x[k];
          b[c] -= lr * g;
        }
      }
    }
  }

  double Accuracy(const data::Dataset& d) const {
    size_t right = 0;
    for (size_t i = 0; i < d.size(); ++i) {
      auto p = Probs(d.sample(i));
      right += static_cast<int32_t>(std::max_element(p.begin(), p.end()) - p.begin()) == d.y[i];
    }
    return static_cast<double>(right) / static_cast<double>(d.size());
  }
};

data::Dataset Concat(const data::Dataset& a, const data::Dataset& b) {
  data::Dataset out = a;
  out.x.insert(out.x.end(), b.x.begin(), b.x.end());
  out.y.insert(out.y.end(), b.y.begin(), b.y.end());
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("sampling_bench: bandwidth saved by uncertainty sampling");
  std::string out = "bench/results/sampling_bench.json";
  std::string corruption = "contrast";
  int severity = 4, base_n = 4000, stream_n = 10000, test_n = 3000, epochs = 3, repeats = 3;
  app.add_option("--out", out, "JSON output");
  app.add_option("--corruption", corruption, "the device's camera domain");
  app.add_option("--severity", severity, "1..5");
  app.add_option("--base", base_n, "clean training samples of the base model");
  app.add_option("--stream", stream_n, "samples the device sees");
  app.add_option("--test", test_n, "corrupted test samples");
  app.add_option("--epochs", epochs, "fine-tuning epochs");
  app.add_option("--repeats", repeats, "seeds per policy (means are reported)");
  CLI11_PARSE(app, argc, argv);

  auto c = data::ParseCorruption(corruption);
  auto train = data::LoadDataset("fashion-mnist:train");
  auto test = data::LoadDataset("fashion-mnist:test");
  if (!c || !train.ok() || !test.ok()) {
    std::fprintf(
        stderr, "sampling_bench: %s\n",
        !c ? "unknown corruption" : (!train.ok() ? train.error() : test.error()).message.c_str());
    return 1;
  }
  std::vector<size_t> base_idx(static_cast<size_t>(base_n)),
      stream_idx(static_cast<size_t>(stream_n)), test_idx(static_cast<size_t>(test_n));
  std::iota(base_idx.begin(), base_idx.end(), 0);
  std::iota(stream_idx.begin(), stream_idx.end(), static_cast<size_t>(base_n));
  std::iota(test_idx.begin(), test_idx.end(), 0);
  data::Dataset base = train->Subset(base_idx);
  data::Dataset stream = data::Corrupt(train->Subset(stream_idx), *c, severity, 11);
  data::Dataset test_c = data::Corrupt(test->Subset(test_idx), *c, severity, 12);
  const size_t numel = base.sample_numel();
  const double bytes_per_sample = static_cast<double>(numel) + 32;

  SoftmaxRegression model(numel, 10);
  std::vector<size_t> all_base(base.size());
  std::iota(all_base.begin(), all_base.end(), 0);
  model.Train(base, all_base, 5, 0.01f, 1);
  double base_acc = model.Accuracy(test_c);
  std::vector<std::vector<float>> stream_probs;
  for (size_t i = 0; i < stream.size(); ++i) stream_probs.push_back(model.Probs(stream.sample(i)));

  struct Row {
    std::string policy;
    size_t uploaded;
    double mb, accuracy;
  };
  std::vector<Row> rows;
  // Each policy is run with `repeats` seeds (sampler draws and SGD order); the means are
  // reported, since a single fine-tune's accuracy varies by about a point.
  auto run = [&](const std::string& name, edge::SamplerConfig cfg) {
    double acc = 0, uploaded = 0;
    for (int rep = 0; rep < repeats; ++rep) {
      cfg.seed = static_cast<uint64_t>(100 + rep);
      edge::Sampler sampler(cfg);
      std::vector<size_t> picked;
      for (size_t i = 0; i < stream.size(); ++i)
        if (sampler.Decide(stream_probs[i], false, static_cast<size_t>(bytes_per_sample), 0).upload)
          picked.push_back(i);
      data::Dataset combined = Concat(base, stream.Subset(picked));
      std::vector<size_t> idx(combined.size());
      std::iota(idx.begin(), idx.end(), 0);
      SoftmaxRegression tuned = model;
      tuned.Train(combined, idx, epochs, 0.005f, static_cast<uint64_t>(2 + rep));
      acc += tuned.Accuracy(test_c) / repeats;
      uploaded += static_cast<double>(picked.size()) / repeats;
    }
    rows.push_back({name, static_cast<size_t>(uploaded), uploaded * bytes_per_sample / 1e6, acc});
    std::printf("%-38s %8zu %9.2f %9.4f %+8.4f\n", name.c_str(), rows.back().uploaded,
                rows.back().mb, rows.back().accuracy, rows.back().accuracy - base_acc);
    std::fflush(stdout);
  };

  std::printf("base model on corrupted test (%s, severity %d): %.4f\n", corruption.c_str(),
              severity, base_acc);
  std::printf("%-38s %8s %9s %9s %8s\n", "policy", "uploaded", "MB", "accuracy", "gain");
  for (double rate : {0.02, 0.05, 0.1, 0.2, 0.4, 1.0}) {
    edge::SamplerConfig cfg;
    cfg.policy = rate >= 1.0 ? edge::SamplingPolicy::kAll : edge::SamplingPolicy::kUniform;
    cfg.rate = rate;
    run(rate >= 1.0 ? "all" : "uniform rate=" + std::to_string(rate).substr(0, 4), cfg);
  }
  // Uncertainty thresholds set from the stream's confidence distribution (what a deployer
  // reads off the confidence histogram in telemetry) so that they upload the same shares.
  std::vector<double> conf;
  for (const auto& p : stream_probs) conf.push_back(*std::max_element(p.begin(), p.end()));
  std::sort(conf.begin(), conf.end());
  for (double rate : {0.02, 0.05, 0.1, 0.2, 0.4}) {
    edge::SamplerConfig cfg;
    cfg.policy = edge::SamplingPolicy::kUncertainty;
    cfg.confidence_below = conf[static_cast<size_t>(rate * 0.9 * static_cast<double>(conf.size()))];
    cfg.entropy_above = 1.1;  // confidence only
    cfg.random_fraction = 0.1 * rate;
    run("uncertainty share=" + std::to_string(rate).substr(0, 4) + " (conf<" +
            std::to_string(cfg.confidence_below).substr(0, 4) + ")",
        cfg);
  }

  // Bandwidth saving: for each uncertainty row, the uniform bytes needed for the same
  // accuracy (linear interpolation between the uniform rows, which rise with bytes).
  nlohmann::json j;
  j["machine"] = bench::MachineInfo();
  j["setup"] = {{"corruption", corruption}, {"severity", severity},     {"base", base_n},
                {"stream", stream_n},       {"test", test_n},           {"epochs", epochs},
                {"repeats", repeats},       {"base_accuracy", base_acc}};
  std::vector<Row> uniform(rows.begin(), rows.begin() + 6);
  std::sort(uniform.begin(), uniform.end(), [](const Row& a, const Row& b) { return a.mb < b.mb; });
  std::printf("\n%-38s %9s %14s %8s\n", "uncertainty policy", "MB", "uniform MB same", "saved");
  for (const auto& r : rows) {
    nlohmann::json jr = {{"policy", r.policy},
                         {"uploaded", r.uploaded},
                         {"mb", r.mb},
                         {"accuracy", r.accuracy},
                         {"gain", r.accuracy - base_acc}};
    if (r.policy.rfind("uncertainty", 0) == 0) {
      // The fewest uniform bytes that reach at least this accuracy (interpolated between
      // the two uniform runs around it; the uniform curve is not strictly monotone).
      double same = -1;
      for (size_t k = 0; k < uniform.size() && same < 0; ++k) {
        if (uniform[k].accuracy < r.accuracy) continue;
        if (k == 0) {
          same = uniform[0].mb;  // reached already at the smallest uniform rate: an upper bound
          jr["uniform_bound"] = "upper";
        } else {
          const Row &lo = uniform[k - 1], &hi = uniform[k];
          double t = lo.accuracy < r.accuracy
                         ? (r.accuracy - lo.accuracy) / (hi.accuracy - lo.accuracy)
                         : 0;
          same = lo.mb + t * (hi.mb - lo.mb);
        }
      }
      jr["uniform_mb_for_same_accuracy"] = same;
      if (same > 0) {
        jr["bandwidth_saved"] = 1.0 - r.mb / same;
        std::printf("%-38s %9.2f %14.2f %7.0f%%\n", r.policy.c_str(), r.mb, same,
                    100.0 * (1.0 - r.mb / same));
      } else {
        std::printf("%-38s %9.2f %14s %8s\n", r.policy.c_str(), r.mb, "above all", "-");
      }
    }
    j["rows"].push_back(jr);
  }
  bench::WriteJson(out, j);
  return 0;
}
