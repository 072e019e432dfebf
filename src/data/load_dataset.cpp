// LoadDataset: every dataset spec, snapshots included. Training side, in edgeloop_data; the
// agent replays with LoadDatasetFiles (dataset.cpp), which reads the same specs but snapshots.
#include <string>

#include "data/dataset.hpp"
#include "data/preprocess.hpp"

namespace edgeloop::data {

Result<Dataset> LoadDataset(const std::string& spec) {
  return LoadDataset(spec, nullptr);
}

Result<Dataset> LoadDataset(const std::string& spec, const InputSpec* input) {
  if (spec.rfind("snapshot:", 0) != 0) return LoadDatasetFiles(spec, input);
  // snapshot:DIR[:train|:val|:test]; a last component that is not a split belongs to DIR.
  std::string dir = spec.substr(9), split;
  const size_t colon = dir.rfind(':');
  if (colon != std::string::npos) {
    const std::string tail = dir.substr(colon + 1);
    if (tail == "train" || tail == "val" || tail == "test") {
      split = tail;
      dir = dir.substr(0, colon);
    }
  }
  EDGELOOP_ASSIGN_OR_RETURN(Dataset d, LoadSnapshot(dir, split));
  // As for IDX files: samples of 8-bit pixels are converted, feature rows are kept.
  if (!input || !d.is_image()) return d;
  return ConvertToInputSpec(std::move(d), *input);
}

}  // namespace edgeloop::data
