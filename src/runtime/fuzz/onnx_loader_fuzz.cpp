// libFuzzer target for the runtime's ONNX loader: arbitrary bytes are loaded as a model and,
// when they load, run once on zero inputs. Any crash, sanitizer report, or allocation beyond
// the limits below is a bug. scripts/fuzz builds it with clang and runs it for a bounded time.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "runtime/model.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace edgeloop::runtime;
  ModelOptions options;
  options.limits.max_file_bytes = 1 << 20;
  options.limits.max_tensor_bytes = 16 << 20;
  options.max_arena_bytes = 64 << 20;
  // About 10 ms of arithmetic in a release build; under AddressSanitizer, on the reference
  // loops of the rarer ops, up to about 100 times that: no input may run for long.
  options.max_flops = 2e7;
  auto model = Model::LoadFromBytes(std::string_view(reinterpret_cast<const char*>(data), size),
                                    "fuzz", options);
  if (!model.ok()) return 0;
  std::vector<OwnedTensor> inputs;
  std::vector<Tensor> views;
  for (const auto& in : model->inputs()) {
    OwnedTensor t;
    t.dtype = in.dtype;
    for (const auto& d : in.dims) t.shape.push_back(d.value_or(1));
    const int64_t n = NumElements(t.shape);
    if (n < 0 || static_cast<uint64_t>(n) * DTypeSize(t.dtype) > (16u << 20)) return 0;
    t.bytes.assign(static_cast<size_t>(n) * DTypeSize(t.dtype), 0);
    inputs.push_back(std::move(t));
  }
  for (auto& t : inputs) views.push_back(t.view());
  (void)model->Run(views);
  return 0;
}
