// Image corruptions (the robustness suite and each demo device's camera domain), in the
// spirit of ImageNet-C / MNIST-C: six kinds, severities 1..5. Plain C++, no libtorch: the
// edge agent applies them too. Deterministic for a given seed.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "data/dataset.hpp"

namespace edgeloop::data {

enum class Corruption { kGaussianNoise, kBlur, kBrightness, kContrast, kRotation, kOcclusion };

const std::vector<Corruption>& AllCorruptions();
std::string CorruptionName(Corruption c);  // "gaussian_noise", "blur", ...
std::optional<Corruption> ParseCorruption(const std::string& name);

// Corrupts one image in place: pixels [c, h, w] in [0, 1]; results are clamped to [0, 1].
void ApplyCorruption(Corruption c, int severity, float* image, int channels, int height, int width,
                     std::mt19937_64& rng);
// A corrupted copy of an image dataset (hash recomputed, source annotated). Sample i uses its
// own random stream derived from (seed, i). Feature datasets are copied unchanged.
Dataset Corrupt(const Dataset& d, Corruption c, int severity, uint64_t seed);

}  // namespace edgeloop::data
