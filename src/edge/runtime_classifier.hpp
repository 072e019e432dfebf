// The agent's model: an ONNX file run by the edge runtime (src/runtime) behind the
// Classifier interface, and the updater's health check (the model loads and reproduces the
// golden cases of its signed metadata).
//
// Input shape: the model's declared first input with symbolic dimensions set to 1 when its
// element count matches the sample's; otherwise {1, sample shape...}. Output: the first
// output, taken as probabilities when it already is a distribution (softmax in the graph),
// otherwise as logits passed through a softmax. Not thread-safe (as runtime::Model).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "common/update_metadata.hpp"
#include "edge/inference_loop.hpp"

namespace edgeloop::edge {

class RuntimeClassifier : public Classifier {
 public:
  static Result<std::unique_ptr<RuntimeClassifier>> Load(const std::string& path);
  ~RuntimeClassifier() override;
  Result<std::vector<float>> Classify(const Sample& sample) override;
  // The raw first output for given values (shape empty: derived as above).
  Result<std::vector<float>> RunRaw(const std::vector<int64_t>& shape,
                                    const std::vector<float>& values);

 private:
  struct Impl;
  explicit RuntimeClassifier(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Loads the model at path and checks every golden case of the metadata (each output value
// within the case's tolerance). Errors name the case and the first value that differs.
Status CheckModelHealth(const std::string& path, const UpdateMetadata& metadata);

}  // namespace edgeloop::edge
