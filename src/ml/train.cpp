#include "ml/train.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <sstream>
#include <thread>

#include "common/file.hpp"
#include "common/hash.hpp"
#include "common/progress.hpp"

namespace edgeloop::ml {

nlohmann::json TrainOptions::ToJson() const {
  return {{"epochs", epochs},
          {"batch_size", batch_size},
          {"lr", lr},
          {"backbone_lr_scale", backbone_lr_scale},
          {"weight_decay", weight_decay},
          {"patience", patience},
          {"seed", seed},
          {"min_epoch_samples", min_epoch_samples}};
}

nlohmann::json TrainReport::ToJson() const {
  nlohmann::json ep = nlohmann::json::array();
  for (const auto& e : epochs)
    ep.push_back({{"epoch", e.epoch},
                  {"train_loss", e.train_loss},
                  {"train_accuracy", e.train_accuracy},
                  {"val_loss", e.val_loss},
                  {"val_accuracy", e.val_accuracy},
                  {"seconds", e.seconds},
                  {"samples", e.samples},
                  {"samples_per_s", e.samples_per_s}});
  return {{"epochs", ep},
          {"epochs_run", epochs.size()},
          {"best_epoch", best_epoch},
          {"best_val_accuracy", best_val_accuracy},
          {"wall_seconds", wall_seconds},
          {"samples_per_s", samples_per_s},
          {"early_stopped", early_stopped},
          {"distributed",
           {{"world_size", world_size},
            {"steps", steps},
            {"allreduce_bytes_per_step", allreduce_bytes_per_step},
            {"allreduce_seconds", allreduce_seconds},
            {"allreduce_share", wall_seconds > 0 ? allreduce_seconds / wall_seconds : 0.0},
            {"rank_fingerprints", rank_fingerprints}}}};
}

void SeedEverything(uint64_t seed) {
  torch::manual_seed(seed);
}

void SetThreads(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(threads);
}

torch::Tensor ToInputTensor(const data::Dataset& d) {
  std::vector<int64_t> shape = {static_cast<int64_t>(d.size())};
  shape.insert(shape.end(), d.sample_shape.begin(), d.sample_shape.end());
  return torch::from_blob(const_cast<float*>(d.x.data()), shape, torch::kFloat32).clone();
}

torch::Tensor ToLabelTensor(const data::Dataset& d) {
  return torch::from_blob(const_cast<int32_t*>(d.y.data()), {static_cast<int64_t>(d.size())},
                          torch::kInt32)
      .to(torch::kInt64);
}

EvalResult Evaluate(Classifier& model, const torch::Tensor& x, const torch::Tensor& y,
                    int batch_size) {
  torch::NoGradGuard no_grad;
  bool was_training = model->is_training();
  model->eval();
  int64_t n = x.size(0);
  double loss = 0;
  int64_t correct = 0;
  for (int64_t i = 0; i < n; i += batch_size) {
    int64_t end = std::min(n, i + batch_size);
    auto logits = model->forward(x.slice(0, i, end));
    auto target = y.slice(0, i, end);
    loss +=
        torch::nn::functional::cross_entropy(
            logits, target, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
            .item<double>();
    correct += logits.argmax(1).eq(target).sum().item<int64_t>();
  }
  model->train(was_training);
  if (n == 0) return {};
  return {loss / static_cast<double>(n), static_cast<double>(correct) / static_cast<double>(n)};
}

torch::Tensor PredictProbabilities(Classifier& model, const data::Dataset& d, int batch_size) {
  torch::NoGradGuard no_grad;
  model->eval();
  auto x = ToInputTensor(d);
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < x.size(0); i += batch_size)
    parts.push_back(
        torch::softmax(model->forward(x.slice(0, i, std::min(x.size(0), i + batch_size))), 1));
  if (parts.empty()) return torch::zeros({0, model->spec().num_classes});
  return torch::cat(parts, 0);
}

namespace {

// A snapshot of all parameters and buffers, to restore the best epoch.
std::vector<torch::Tensor> CopyState(Classifier& model) {
  std::vector<torch::Tensor> out;
  for (auto& p : model->parameters()) out.push_back(p.detach().clone());
  for (auto& b : model->buffers()) out.push_back(b.detach().clone());
  return out;
}

void RestoreState(Classifier& model, const std::vector<torch::Tensor>& state) {
  torch::NoGradGuard no_grad;
  size_t i = 0;
  for (auto& p : model->parameters()) p.copy_(state[i++]);
  for (auto& b : model->buffers()) b.copy_(state[i++]);
}

Status SaveCheckpoint(Classifier& model, const std::string& path) {
  try {
    std::ostringstream buf;
    torch::save(model, buf);
    return WriteFileAtomic(path, buf.str());
  } catch (const std::exception& e) {
    return Error(Errc::kIo, path + ": cannot write checkpoint: " + e.what());
  }
}

bool IsBackboneParam(const std::string& name) {
  return name.rfind("backbone.", 0) == 0;
}

// The gradient all-reduce: every trainable parameter's gradient in one flat tensor, so a step
// costs one collective however many layers the model has.
Status AverageGradients(DistributedGroup& group, const std::vector<torch::Tensor>& params) {
  std::vector<torch::Tensor> grads;
  grads.reserve(params.size());
  for (const auto& p : params)
    grads.push_back(p.grad().defined() ? p.grad().reshape(-1) : torch::zeros({p.numel()}));
  auto flat = torch::cat(grads);
  EDGELOOP_RETURN_IF_ERROR(group.AllReduceMean(flat));
  int64_t offset = 0;
  for (auto p : params) {
    auto mean = flat.narrow(0, offset, p.numel()).view_as(p);
    if (p.grad().defined())
      p.mutable_grad().copy_(mean);
    else
      p.mutable_grad() = mean.clone();
    offset += p.numel();
  }
  return Status::Ok();
}

// Batch-norm statistics: each rank's running means and variances saw only its shard, so they
// are averaged at every epoch end (before validation and checkpoints), which keeps the
// replicas identical. Integer buffers (batches tracked) are equal on every rank already.
Status AverageBuffers(DistributedGroup& group, Classifier& model) {
  std::vector<torch::Tensor> buffers;
  for (auto& b : model->buffers())
    if (b.is_floating_point()) buffers.push_back(b);
  if (buffers.empty()) return Status::Ok();
  std::vector<torch::Tensor> parts;
  for (auto& b : buffers) parts.push_back(b.detach().reshape(-1).to(torch::kFloat64));
  auto flat = torch::cat(parts);
  EDGELOOP_RETURN_IF_ERROR(group.AllReduceMean(flat));
  torch::NoGradGuard no_grad;
  int64_t offset = 0;
  for (auto& b : buffers) {
    b.copy_(flat.narrow(0, offset, b.numel()).view_as(b));
    offset += b.numel();
  }
  return Status::Ok();
}

// Sums of (loss, correct, count) over the ranks; one process: unchanged.
Status SumOverRanks(DistributedGroup* group, double& loss_sum, double& correct, double& count) {
  if (!group) return Status::Ok();
  auto t = torch::tensor({loss_sum, correct, count}, torch::kFloat64);
  EDGELOOP_RETURN_IF_ERROR(group->AllReduceSum(t));
  loss_sum = t[0].item<double>();
  correct = t[1].item<double>();
  count = t[2].item<double>();
  return Status::Ok();
}

// The ranks must train on the same data (each takes its shard of one global order): on
// several hosts each loads its own copy, which must not differ.
Status SameDataOnEveryRank(DistributedGroup& group, const torch::Tensor& x,
                           const torch::Tensor& y) {
  Sha256 h;
  h.Update(x.data_ptr(), static_cast<size_t>(x.numel() * x.element_size()));
  h.Update(y.data_ptr(), static_cast<size_t>(y.numel() * y.element_size()));
  const std::string mine = std::to_string(x.size(0)) + " samples, sha256 " + h.HexDigest();
  EDGELOOP_ASSIGN_OR_RETURN(auto all, group.AllGatherText("data", mine));
  for (size_t r = 1; r < all.size(); ++r)
    if (all[r] != all[0])
      return Error(Errc::kMismatch, "rank " + std::to_string(r) +
                                        " trains on other data than rank 0 (" +
                                        all[r].substr(0, 40) + " vs " + all[0].substr(0, 40) +
                                        "): give every rank the same --data");
  return Status::Ok();
}

// Every rank starts from rank 0's weights (equal seeds make them equal already; a model
// imported or grown differently on one host must not split the replicas).
Status StartFromRankZero(DistributedGroup& group, Classifier& model) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> state;
  for (auto& p : model->parameters()) state.push_back(p.detach());
  for (auto& b : model->buffers()) state.push_back(b.detach());
  return group.BroadcastFromRankZero(state);
}

}  // namespace

Result<TrainReport> Train(Classifier& model, const data::Dataset& train, const data::Dataset& val,
                          const TrainOptions& opt) {
  if (train.size() == 0) return Error(Errc::kInvalidArgument, "training set is empty");
  if (opt.epochs < 1 || opt.batch_size < 1 || !(opt.lr > 0))
    return Error(Errc::kInvalidArgument, "epochs, batch size and learning rate must be positive");
  const auto& spec = model->spec();
  if (train.sample_shape != spec.input_shape)
    return Error(Errc::kMismatch, "training data samples do not fit the model's input shape");
  for (int32_t label : train.y)
    if (label < 0 || label >= spec.num_classes)
      return Error(Errc::kMismatch, "training label " + std::to_string(label) +
                                        " is outside the model's " +
                                        std::to_string(spec.num_classes) + " classes");
  DistributedGroup* group = opt.group;
  const int world = group ? group->world_size() : 1;
  const int rank = group ? group->rank() : 0;
  const bool lead = rank == 0;  // draws progress, writes checkpoints
  const bool quiet = opt.quiet || !lead;
  if (opt.batch_size % world != 0)
    return Error(Errc::kInvalidArgument, "the global batch size " + std::to_string(opt.batch_size) +
                                             " does not split evenly across " +
                                             std::to_string(world) + " ranks; use a multiple of " +
                                             std::to_string(world));
  const int64_t local_batch = opt.batch_size / world;
  if (lead && !opt.checkpoint_dir.empty()) EDGELOOP_RETURN_IF_ERROR(MakeDirs(opt.checkpoint_dir));

  // Ranks of one host share its cores rather than each taking all of them.
  int threads = opt.threads;
  if (threads <= 0 && world > 1)
    threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / world);
  SetThreads(threads);
  SeedEverything(opt.seed);
  auto x = ToInputTensor(train);
  auto y = ToLabelTensor(train);
  torch::Tensor vx, vy;
  if (val.size() > 0) {
    vx = ToInputTensor(val);
    vy = ToLabelTensor(val);
  }

  // Two parameter groups so a full fine-tune can give the backbone a lower learning rate.
  std::vector<torch::Tensor> backbone_params, head_params;
  for (auto& kv : model->named_parameters()) {
    if (!kv.value().requires_grad()) continue;
    (IsBackboneParam(kv.key()) ? backbone_params : head_params).push_back(kv.value());
  }
  if (backbone_params.empty() && head_params.empty())
    return Error(Errc::kInvalidArgument, "no trainable parameters (everything is frozen)");
  std::vector<torch::optim::OptimizerParamGroup> groups;
  if (!backbone_params.empty()) {
    auto o = std::make_unique<torch::optim::AdamWOptions>(opt.lr * opt.backbone_lr_scale);
    o->weight_decay(opt.weight_decay);
    groups.emplace_back(backbone_params, std::move(o));
  }
  if (!head_params.empty()) {
    auto o = std::make_unique<torch::optim::AdamWOptions>(opt.lr);
    o->weight_decay(opt.weight_decay);
    groups.emplace_back(head_params, std::move(o));
  }
  torch::optim::AdamW optimizer(groups, torch::optim::AdamWOptions(opt.lr));
  std::vector<torch::Tensor> trainable = backbone_params;
  trainable.insert(trainable.end(), head_params.begin(), head_params.end());
  int64_t grad_bytes = 0;
  for (const auto& p : trainable) grad_bytes += p.numel() * p.element_size();
  if (group) {
    EDGELOOP_RETURN_IF_ERROR(SameDataOnEveryRank(*group, x, y));
    EDGELOOP_RETURN_IF_ERROR(StartFromRankZero(*group, model));
    // Dropout masks differ per rank, as they would across one large batch.
    if (rank > 0)
      torch::manual_seed(opt.seed + 0x9E3779B97F4A7C15ULL * static_cast<uint64_t>(rank));
  }
  double sync_seconds = 0;
  std::vector<double> base_lrs;
  for (auto& g : optimizer.param_groups()) base_lrs.push_back(g.options().get_lr());

  // Frozen blocks stay in eval mode so their batch-norm statistics do not drift.
  auto set_train_mode = [&]() {
    model->train();
    for (auto& child : model->backbone()->children()) {
      bool any_trainable = false;
      for (auto& p : child->parameters()) any_trainable |= p.requires_grad();
      if (!any_trainable) child->eval();
    }
  };

  TrainReport report;
  std::vector<torch::Tensor> best_state;
  double best_metric = -1, best_val_loss = 0;
  int since_best = 0;
  // A small training set is repeated (each copy reshuffled) up to min_epoch_samples per epoch,
  // so that a few dozen labelled samples still get enough optimizer steps per epoch and the
  // validation check that drives early stopping is not run after every second step.
  const int64_t n_data = x.size(0);
  const int64_t repeats = std::max<int64_t>(1, (opt.min_epoch_samples + n_data - 1) / n_data);
  const int64_t n = n_data * repeats;
  // A rank's shard of every epoch (the whole epoch in one process), in steps of local_batch.
  const int64_t n_local = (n + world - 1) / world;
  const int64_t steps_per_epoch = (n_local + local_batch - 1) / local_batch;
  const int64_t total_steps = steps_per_epoch * opt.epochs;
  std::mt19937_64 rng(opt.seed);
  auto wall_start = std::chrono::steady_clock::now();
  int64_t step = 0, samples_seen = 0;

  for (int epoch = 1; epoch <= opt.epochs; ++epoch) {
    set_train_mode();
    std::vector<int64_t> order;
    order.reserve(static_cast<size_t>(n));
    for (int64_t r = 0; r < repeats; ++r) {
      std::vector<int64_t> copy(static_cast<size_t>(n_data));
      std::iota(copy.begin(), copy.end(), 0);
      std::shuffle(copy.begin(), copy.end(), rng);
      order.insert(order.end(), copy.begin(), copy.end());
    }
    auto perm = torch::tensor(group ? ShardOfEpoch(order, rank, world) : order, torch::kInt64);
    auto epoch_start = std::chrono::steady_clock::now();
    double loss_sum = 0;
    int64_t correct = 0;
    ProgressBar bar(
        opt.label + " epoch " + std::to_string(epoch) + "/" + std::to_string(opt.epochs),
        n_local * world);
    for (int64_t i = 0; i < n_local; i += local_batch) {
      // Cosine decay over the whole run.
      double cosine =
          0.5 * (1 + std::cos(M_PI * static_cast<double>(step) / static_cast<double>(total_steps)));
      for (size_t g = 0; g < base_lrs.size(); ++g)
        optimizer.param_groups()[g].options().set_lr(base_lrs[g] * (0.02 + 0.98 * cosine));
      auto idx = perm.slice(0, i, std::min(n_local, i + local_batch));
      auto bx = x.index_select(0, idx);
      auto by = y.index_select(0, idx);
      optimizer.zero_grad();
      auto logits = model->forward(bx);
      auto loss = torch::nn::functional::cross_entropy(logits, by);
      double lv = loss.item<double>();
      if (!std::isfinite(lv))
        return Error(Errc::kInternal, "training diverged (loss is " + std::to_string(lv) +
                                          " in epoch " + std::to_string(epoch) +
                                          "); try a lower learning rate");
      loss.backward();
      if (group) {
        auto t0 = std::chrono::steady_clock::now();
        EDGELOOP_RETURN_IF_ERROR(AverageGradients(*group, trainable));
        sync_seconds +=
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      }
      optimizer.step();
      ++step;
      int64_t bs = idx.size(0);
      loss_sum += lv * static_cast<double>(bs);
      correct += logits.argmax(1).eq(by).sum().item<int64_t>();
      double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
      if (!quiet) {
        // Rank 0's view: its running loss, the samples all ranks have done.
        const int64_t done = std::min(n_local, i + local_batch);
        char suffix[96];
        std::snprintf(suffix, sizeof suffix, "%.0f samples/s loss %.4f",
                      static_cast<double>(done * world) / std::max(secs, 1e-9),
                      loss_sum / static_cast<double>(done));
        bar.Update(done * world, suffix);
      }
    }
    double epoch_count = static_cast<double>(n_local), epoch_correct = static_cast<double>(correct);
    EDGELOOP_RETURN_IF_ERROR(SumOverRanks(group, loss_sum, epoch_correct, epoch_count));
    if (group) EDGELOOP_RETURN_IF_ERROR(AverageBuffers(*group, model));
    EpochStats st;
    st.epoch = epoch;
    st.samples = static_cast<int64_t>(epoch_count);
    st.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
    st.samples_per_s = epoch_count / std::max(st.seconds, 1e-9);
    st.train_loss = loss_sum / epoch_count;
    st.train_accuracy = epoch_correct / epoch_count;
    if (vx.defined()) {
      // Each rank validates a contiguous part of the set; the sums are combined, so every
      // rank takes the same early-stopping decision.
      const int64_t nv = vx.size(0);
      const int64_t from = nv * rank / world, to = nv * (rank + 1) / world;
      auto ev = Evaluate(model, vx.slice(0, from, to), vy.slice(0, from, to));
      double vcount = static_cast<double>(to - from);
      double vloss = ev.loss * vcount, vcorrect = ev.accuracy * vcount;
      EDGELOOP_RETURN_IF_ERROR(SumOverRanks(group, vloss, vcorrect, vcount));
      st.val_loss = vloss / vcount;
      st.val_accuracy = vcorrect / vcount;
    }
    samples_seen += st.samples;
    report.epochs.push_back(st);
    if (!quiet) {
      char suffix[128];
      std::snprintf(suffix, sizeof suffix, "%.0f samples/s loss %.4f val_acc %.4f",
                    st.samples_per_s, st.train_loss, st.val_accuracy);
      bar.Finish(suffix);
      if (!ProgressBar::Enabled())
        std::fprintf(stderr, "%s epoch %d/%d: %.1fs %.0f samples/s loss %.4f val_acc %.4f\n",
                     opt.label.c_str(), epoch, opt.epochs, st.seconds, st.samples_per_s,
                     st.train_loss, st.val_accuracy);
    }
    // Best epoch: highest validation accuracy; on a tie (small validation sets tie often) the
    // lower validation loss wins.
    double metric = vx.defined() ? st.val_accuracy : static_cast<double>(epoch);
    bool better = metric > best_metric ||
                  (vx.defined() && metric == best_metric && st.val_loss < best_val_loss);
    if (better) {
      best_val_loss = st.val_loss;
      best_metric = metric;
      report.best_epoch = epoch;
      report.best_val_accuracy = st.val_accuracy;
      best_state = CopyState(model);
      since_best = 0;
      if (lead && !opt.checkpoint_dir.empty())
        EDGELOOP_RETURN_IF_ERROR(SaveCheckpoint(model, opt.checkpoint_dir + "/best.pt"));
    } else {
      ++since_best;
    }
    if (lead && !opt.checkpoint_dir.empty())
      EDGELOOP_RETURN_IF_ERROR(SaveCheckpoint(model, opt.checkpoint_dir + "/last.pt"));
    if (vx.defined() && opt.patience > 0 && since_best >= opt.patience) {
      report.early_stopped = true;
      break;
    }
  }
  RestoreState(model, best_state);
  model->eval();
  report.world_size = world;
  report.steps = step;
  if (group) {
    report.allreduce_bytes_per_step = grad_bytes;
    report.allreduce_seconds = sync_seconds;
    EDGELOOP_ASSIGN_OR_RETURN(report.rank_fingerprints,
                              group->AllGatherText("weights", WeightsFingerprint(*model)));
    for (int r = 1; r < world; ++r)
      if (report.rank_fingerprints[static_cast<size_t>(r)] != report.rank_fingerprints[0])
        return Error(Errc::kInternal,
                     "rank " + std::to_string(r) +
                         "'s weights differ from rank 0's after training (" +
                         report.rank_fingerprints[static_cast<size_t>(r)].substr(0, 12) + " vs " +
                         report.rank_fingerprints[0].substr(0, 12) +
                         "): the gradient all-reduce did not keep the replicas "
                         "in step");
  }
  report.wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  report.samples_per_s = static_cast<double>(samples_seen) / std::max(report.wall_seconds, 1e-9);
  return report;
}

}  // namespace edgeloop::ml
