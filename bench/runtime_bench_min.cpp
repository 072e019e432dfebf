// The smallest program that runs a model with the edge runtime: what a device must carry to
// infer. runtime_bench reports its stripped size (plus the shared libraries it needs) as the
// edgeloop runtime's footprint.
//   runtime_bench_min MODEL.onnx                  one inference on zeros
//   runtime_bench_min MODEL.onnx RUNS BATCH_RUNS  times it on the model's float32 input
//                                                 [N, ...] (JSON, for runtime_bench)
// With EDGELOOP_PROFILE=1 the time per op type goes to stderr after the timing.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench/bench_util.hpp"
#include "runtime/model.hpp"

int main(int argc, char** argv) {
  using namespace edgeloop::runtime;
  if (argc != 2 && argc != 4) {
    std::fprintf(stderr, "usage: %s MODEL.onnx [RUNS BATCH_RUNS]\n", argv[0]);
    return 2;
  }
  auto t0 = std::chrono::steady_clock::now();
  ModelOptions options;
  const char* prof = std::getenv("EDGELOOP_PROFILE");
  options.profile = prof && std::string(prof) == "1";
  auto m = Model::Load(argv[1], options);
  if (!m.ok()) {
    std::fprintf(stderr, "%s\n", m.error().message.c_str());
    return 3;
  }
  if (argc == 4) {
    if (m->inputs().empty() || m->inputs()[0].dtype != DType::kFloat32) {
      std::fprintf(stderr, "%s: the first input is not float32\n", argv[1]);
      return 3;
    }
    std::vector<int64_t> shape = {1};  // one sample of the first input, batch first
    for (size_t i = 1; i < m->inputs()[0].dims.size(); ++i)
      shape.push_back(m->inputs()[0].dims[i].value_or(1));
    const auto per = static_cast<size_t>(NumElements(shape));
    auto x1 = edgeloop::bench::Pattern(per), x64 = edgeloop::bench::Pattern(64 * per);
    auto r =
        edgeloop::bench::TimeEngine(t0, std::atoi(argv[2]), std::atoi(argv[3]), [&](int64_t b) {
          std::vector<int64_t> s = shape;
          s[0] = b;
          auto out = m->Run({Tensor{DType::kFloat32, s, b == 1 ? x1.data() : x64.data()}});
          if (!out.ok()) std::abort();
        });
    std::printf("%s\n", r.dump().c_str());
    double total = 0;
    for (const auto& t : m->op_times()) total += t.seconds;
    for (const auto& t : m->op_times())
      std::fprintf(stderr, "%-24s %8lld calls %9.3f s %5.1f %%\n", t.op.c_str(),
                   static_cast<long long>(t.calls), t.seconds, 100 * t.seconds / total);
    return 0;
  }
  std::vector<OwnedTensor> inputs;
  std::vector<Tensor> views;
  for (const auto& in : m->inputs()) {
    OwnedTensor t;
    t.dtype = in.dtype;
    for (const auto& d : in.dims) t.shape.push_back(d.value_or(1));
    t.bytes.assign(static_cast<size_t>(NumElements(t.shape)) * DTypeSize(t.dtype), 0);
    inputs.push_back(std::move(t));
  }
  for (auto& t : inputs) views.push_back(t.view());
  auto out = m->Run(views);
  if (!out.ok()) {
    std::fprintf(stderr, "%s\n", out.error().message.c_str());
    return 1;
  }
  std::printf("%zu output(s); first has %lld values\n", out->size(),
              static_cast<long long>(NumElements((*out)[0].shape)));
  return 0;
}
