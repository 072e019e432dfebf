// The agent's model: an ONNX file run by the edge runtime (src/runtime) behind the
// Classifier interface, and the updater's health check (the model loads and reproduces the
// golden cases of its signed metadata).
//
// Input shape: the model's declared first input with symbolic dimensions set to 1 when its
// element count matches the sample's; otherwise {1, sample shape...}. Output: the first
// output, taken as probabilities when it already is a distribution (softmax in the graph),
// otherwise as logits passed through a softmax. Not thread-safe (as runtime::Model).
//
// Image input spec: what camera images are converted to before the graph (data::Preprocess),
// read from the ONNX metadata "edgeloop.preprocessing" (its "input_spec" object, written by
// edgeloop export); for a model without it, derived from a declared [N, C, H, W] input with
// C = 1 or 3 (stretch, values x / 255). Feature models have none.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "common/update_metadata.hpp"
#include "data/preprocess.hpp"
#include "edge/inference_loop.hpp"
#include "runtime/model.hpp"

namespace edgeloop::runtime {
class Model;
}

namespace edgeloop::edge {

// The image input spec of a loaded model, as described above; an "input_spec" that is
// present but malformed is an error naming `origin`.
Result<std::optional<data::InputSpec>> ModelInputSpec(const runtime::Model& model,
                                                      const std::string& origin);

class RuntimeClassifier : public Classifier {
 public:
  // options: the runtime's limits (arena, compute budget); a model over them is refused.
  static Result<std::unique_ptr<RuntimeClassifier>> Load(const std::string& path,
                                                         const runtime::ModelOptions& options = {});
  ~RuntimeClassifier() override;
  Result<std::vector<float>> Classify(const Sample& sample) override;
  // The raw first output for given values (shape empty: derived as above).
  Result<std::vector<float>> RunRaw(const std::vector<int64_t>& shape,
                                    const std::vector<float>& values);
  const std::optional<data::InputSpec>& input_spec() const;

 private:
  struct Impl;
  explicit RuntimeClassifier(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Loads the model at path and checks every golden case of the metadata (each output value
// within the case's tolerance). Errors name the case and the first value that differs.
Status CheckModelHealth(const std::string& path, const UpdateMetadata& metadata,
                        const runtime::ModelOptions& options = {});

}  // namespace edgeloop::edge
