// Datasets as plain C++ (no libtorch): the edge agent replays them, the ML core trains on
// them. Pixel images are float32 in [0, 1], laid out [n, c, h, w]; feature vectors are raw
// float32 values, laid out [n, f]. Every dataset carries a content hash so lineage is exact.
//
// Two libraries define what this header declares. edgeloop_data_readers, which the agent
// links: the Dataset type, its hash, the IDX, CSV and image-folder readers, LoadDatasetFiles
// and ConvertToInputSpec. edgeloop_data, the training side (it links the readers too):
// LoadDataset and LoadSnapshot, the writers and encoders, SplitDataset and SamplePerClass.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace edgeloop::data {

struct InputSpec;  // preprocess.hpp

struct Dataset {
  std::vector<int64_t> sample_shape;     // {c, h, w} for images, {f} for features
  std::vector<float> x;                  // size() * sample_numel() values
  std::vector<int32_t> y;                // class index per sample, -1 = unlabelled
  std::vector<std::string> class_names;  // index -> name
  std::string source;                    // human-readable origin ("idx:/path/...", "csv:...")
  std::string hash;                      // ComputeHash(*this), set by every loader and Subset

  size_t size() const { return y.size(); }
  size_t sample_numel() const;
  bool is_image() const { return sample_shape.size() == 3; }
  const float* sample(size_t i) const { return x.data() + i * sample_numel(); }
  float* sample(size_t i) { return x.data() + i * sample_numel(); }
  // A new dataset with the given samples (in the given order); hash recomputed. Every index
  // must be < size(): an out-of-range index is a caller bug and aborts.
  Dataset Subset(const std::vector<size_t>& indices) const;
};

// sha256 over the sample shape, class names, sample values and labels (little-endian bytes).
std::string ComputeHash(const Dataset& d);

// IDX (the MNIST format): an images file (ubyte, 3 dims) and a labels file (ubyte, 1 dim),
// each optionally gzip-compressed. Errors name the file and the problem.
Result<Dataset> LoadIdx(const std::string& images_path, const std::string& labels_path);
// The same with known class names (e.g. kFashionMnistClasses); a label outside them is an
// error. Without names, the classes are "0".."K-1" with K = largest label + 1.
Result<Dataset> LoadIdx(const std::string& images_path, const std::string& labels_path,
                        const std::vector<std::string>& class_names);
// CSV with a header row: numeric feature columns and one label column (by name; "label" by
// default). Labels may be names or integers; class names are sorted distinct labels when
// they are not all integers. A bad row is an error naming the file and line.
Result<Dataset> LoadCsv(const std::string& path, const std::string& label_column = "label");
// One subfolder per class (sorted names are the classes), PNG and JPEG files inside
// (.png, .jpg, .jpeg; other files are ignored), grayscale or RGB, any size. With an input
// spec every image is converted to it by Preprocess (preprocess.hpp); without one, all images
// must share one size and channel count (the first sets it) and are read as x / 255. Errors
// name the file.
Result<Dataset> LoadImageFolder(const std::string& dir);
Result<Dataset> LoadImageFolder(const std::string& dir, const InputSpec* spec);

// A dataset named by a spec string:
//   fashion-mnist[:train|:test]   the Debian package's copy (default split: train);
//                                 EDGELOOP_FASHION_MNIST_DIR overrides the folder
//   idx:IMAGES,LABELS             IDX files
//   idx:PREFIX                    PREFIX-images-idx3-ubyte[.gz], PREFIX-labels-idx1-ubyte[.gz]
//   DIR[:train|:test]             a folder of IDX files (train-*, t10k-*/test-*, or one pair)
//   csv:FILE  or  FILE.csv        CSV
//   images:DIR  or  DIR           image folder
//   snapshot:DIR[:train|:val|:test]  a dataset snapshot on a server's data folder
//                                 (DIR = <data>/datasets/<id>); read from the sample segments
Result<Dataset> LoadDataset(const std::string& spec);
// The same, converted to an input spec when one is given (nullptr: as stored): image folders
// convert every decoded image; other image datasets (IDX, snapshots) convert their samples
// when these are 8-bit pixels (every value k / 255) and otherwise must already have the
// spec's shape and default normalisation. A feature dataset is returned as it is.
Result<Dataset> LoadDataset(const std::string& spec, const InputSpec* input);
// That conversion of a loaded image dataset: through Preprocess when its values are 8-bit
// pixels, so that it matches what an image folder or a device gives for the same pictures.
Result<Dataset> ConvertToInputSpec(Dataset d, const InputSpec& input);
// LoadDataset for every spec but snapshot: (an error naming the spec): the dataset files a
// device replays, without the snapshot reader.
Result<Dataset> LoadDatasetFiles(const std::string& spec, const InputSpec* input = nullptr);
// A snapshot folder's manifest.json plus the sample segments of its data folder, each record
// CRC-checked. split: "" for every sample, or train, val or test. Tensors of 784 values or
// HxW become 1xHxW images; other 1-D tensors feature vectors. Unlabelled samples read as -1.
Result<Dataset> LoadSnapshot(const std::string& dir, const std::string& split);

// Writers, for exports and for tests that need real files. Each file is written atomically;
// everything is validated before the first write. WriteIdx needs single-channel images and
// labels 0..255 (pixels are stored as round(x * 255)); WriteCsv writes labels as class indices
// so that reading the file back keeps the class order.
Status WriteIdx(const Dataset& d, const std::string& images_path, const std::string& labels_path);
Status WriteCsv(const Dataset& d, const std::string& path);
// The same files' bytes in memory (what an HTTP export sends).
Status EncodeIdx(const Dataset& d, std::string* images, std::string* labels);
Result<std::string> EncodeCsv(const Dataset& d);

struct Split {
  Dataset train, val, test;
};
// Seeded, stratified by label: the same seed and data give the same split.
Split SplitDataset(const Dataset& d, double val_fraction, double test_fraction, uint64_t seed);
// Up to per_class samples of each class, chosen with the seed.
Dataset SamplePerClass(const Dataset& d, int per_class, uint64_t seed);

extern const std::vector<std::string> kFashionMnistClasses;

}  // namespace edgeloop::data
