// Supervised training with seed control, validation-based early stopping, checkpoints and a
// terminal progress bar. Used by `edgeloop train` (from scratch) and by Finetune().
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "data/dataset.hpp"
#include "ml/distributed.hpp"
#include "ml/model.hpp"

namespace edgeloop::ml {

struct TrainOptions {
  int epochs = 10;
  int batch_size = 128;
  double lr = 1e-3;
  // Learning rate of the backbone relative to lr (full fine-tune uses < 1).
  double backbone_lr_scale = 1.0;
  double weight_decay = 1e-4;
  int patience = 3;  // epochs without validation improvement before stopping
  // An epoch covers at least this many samples (small sets are repeated, reshuffled).
  int64_t min_epoch_samples = 0;
  uint64_t seed = 0;
  int threads = 0;              // 0 = all cores (in a group: the cores shared out among ranks)
  std::string checkpoint_dir;   // if set: last.pt and best.pt after every epoch
  std::string label = "train";  // progress bar prefix
  bool quiet = false;
  // Data-parallel training (not owned; null: one process). batch_size is the global batch:
  // each rank takes batch_size / world_size samples of its shard per step. Only rank 0 draws
  // the progress bar and writes checkpoints; every rank ends with the same weights.
  DistributedGroup* group = nullptr;

  nlohmann::json ToJson() const;
};

struct EpochStats {
  int epoch = 0;
  double train_loss = 0, train_accuracy = 0, val_loss = 0, val_accuracy = 0;
  double seconds = 0, samples_per_s = 0;
  int64_t samples = 0;  // samples the optimizer saw this epoch
};

struct TrainReport {
  std::vector<EpochStats> epochs;
  int best_epoch = 0;
  double best_val_accuracy = 0;
  double wall_seconds = 0;
  double samples_per_s = 0;
  bool early_stopped = false;
  // Data-parallel runs: the world, the gradient all-reduce's cost, and each rank's weights
  // fingerprint at the end (all equal, or Train fails).
  int world_size = 1;
  int64_t steps = 0;
  int64_t allreduce_bytes_per_step = 0;
  double allreduce_seconds = 0;
  std::vector<std::string> rank_fingerprints;
  nlohmann::json ToJson() const;
};

// [n, ...sample_shape] float tensor and [n] int64 labels, sharing no memory with d.
torch::Tensor ToInputTensor(const data::Dataset& d);
torch::Tensor ToLabelTensor(const data::Dataset& d);

// Trains the parameters that require grad; the parameters of the first `frozen_blocks`
// backbone blocks are excluded by the caller setting requires_grad = false. Keeps the weights
// of the best validation epoch. val may be empty (then the last epoch is kept).
Result<TrainReport> Train(Classifier& model, const data::Dataset& train, const data::Dataset& val,
                          const TrainOptions& options);

struct EvalResult {
  double loss = 0, accuracy = 0;
};
// Mean cross-entropy and accuracy over a dataset, in eval mode, in batches.
EvalResult Evaluate(Classifier& model, const torch::Tensor& x, const torch::Tensor& y,
                    int batch_size = 512);
// Class probabilities [n, k] for a dataset, in eval mode, in batches.
torch::Tensor PredictProbabilities(Classifier& model, const data::Dataset& d, int batch_size = 512);

void SeedEverything(uint64_t seed);
void SetThreads(int threads);

}  // namespace edgeloop::ml
