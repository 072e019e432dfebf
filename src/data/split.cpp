// Seeded, stratified splits and per-class sampling. Each class (and the unlabelled samples,
// as a group of their own) is shuffled with its own derived seed, so adding samples of one
// class does not reshuffle the others.
#include <algorithm>
#include <cmath>
#include <map>

#include "data/dataset.hpp"
#include "data/random.hpp"

namespace edgeloop::data {
namespace {

std::map<int32_t, std::vector<size_t>> IndicesByLabel(const Dataset& d) {
  std::map<int32_t, std::vector<size_t>> by_label;
  for (size_t i = 0; i < d.size(); ++i) by_label[d.y[i]].push_back(i);
  return by_label;
}

double Clamp01(double v) {
  return std::isnan(v) ? 0.0 : std::clamp(v, 0.0, 1.0);
}

}  // namespace

Split SplitDataset(const Dataset& d, double val_fraction, double test_fraction, uint64_t seed) {
  val_fraction = Clamp01(val_fraction);
  test_fraction = Clamp01(test_fraction);
  if (val_fraction + test_fraction > 1.0) val_fraction = 1.0 - test_fraction;
  std::vector<size_t> train, val, test;
  for (auto& [label, idx] : IndicesByLabel(d)) {
    std::mt19937_64 rng(detail::MixSeed(seed, static_cast<uint64_t>(static_cast<int64_t>(label))));
    detail::Shuffle(idx, rng);
    const size_t n = idx.size();
    const size_t n_test = std::min(n, static_cast<size_t>(std::llround(n * test_fraction)));
    const size_t n_val = std::min(n - n_test, static_cast<size_t>(std::llround(n * val_fraction)));
    test.insert(test.end(), idx.begin(), idx.begin() + n_test);
    val.insert(val.end(), idx.begin() + n_test, idx.begin() + n_test + n_val);
    train.insert(train.end(), idx.begin() + n_test + n_val, idx.end());
  }
  // Original order within each part: deterministic, and keeps files' locality.
  std::sort(train.begin(), train.end());
  std::sort(val.begin(), val.end());
  std::sort(test.begin(), test.end());
  return Split{d.Subset(train), d.Subset(val), d.Subset(test)};
}

Dataset SamplePerClass(const Dataset& d, int per_class, uint64_t seed) {
  std::vector<size_t> chosen;
  if (per_class > 0) {
    for (auto& [label, idx] : IndicesByLabel(d)) {
      if (label < 0) continue;  // unlabelled samples belong to no class
      std::mt19937_64 rng(detail::MixSeed(seed, static_cast<uint64_t>(label)));
      detail::Shuffle(idx, rng);
      const size_t take = std::min(idx.size(), static_cast<size_t>(per_class));
      chosen.insert(chosen.end(), idx.begin(), idx.begin() + take);
    }
  }
  std::sort(chosen.begin(), chosen.end());
  return d.Subset(chosen);
}

}  // namespace edgeloop::data
