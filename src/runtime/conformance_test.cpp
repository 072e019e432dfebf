// ONNX's own backend test cases (Debian libonnx-testdata) run through the edgeloop runtime.
// A case is in scope when every op in its graph is one the runtime claims. Each in-scope case
// runs with both backends (reference and fast) on every test_data_set, and its outputs must
// match at ONNX's backend-test tolerances (rtol 1e-3, atol 1e-7). The test prints, per op,
// how many cases ran and passed, and fails on any mismatch or any in-scope case the runtime
// refuses to load.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "common/file.hpp"
#include "runtime/isa.hpp"
#include "runtime/model.hpp"

namespace edgeloop::runtime {
namespace fs = std::filesystem;

namespace {

const char* kRoot = "/usr/share/libonnx-testdata/data";

std::vector<fs::path> SortedFiles(const fs::path& dir, const std::string& prefix) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().rfind(prefix, 0) == 0) out.push_back(e.path());
  std::sort(out.begin(), out.end(), [](const fs::path& a, const fs::path& b) {
    auto num = [](const fs::path& p) {
      std::string s = p.stem().string();
      return std::stoi(s.substr(s.find('_') + 1));
    };
    return num(a) < num(b);
  });
  return out;
}

// Empty string when the tensors agree; else what differs.
std::string Compare(const OwnedTensor& want, const OwnedTensor& got) {
  if (want.dtype != got.dtype)
    return std::string("type ") + DTypeName(got.dtype) + ", expected " + DTypeName(want.dtype);
  if (want.shape != got.shape)
    return "shape " + ShapeString(got.shape) + ", expected " + ShapeString(want.shape);
  const int64_t n = NumElements(want.shape);
  auto close = [](double w, double g) {
    if (std::isnan(w)) return std::isnan(g);
    if (std::isinf(w)) return w == g;
    return std::fabs(g - w) <= 1e-7 + 1e-3 * std::fabs(w);
  };
  for (int64_t i = 0; i < n; ++i) {
    double w = 0, g = 0;
    switch (want.dtype) {
      case DType::kFloat32:
        w = want.as<float>()[i];
        g = got.as<float>()[i];
        break;
      case DType::kFloat64:
        w = want.as<double>()[i];
        g = got.as<double>()[i];
        break;
      case DType::kInt8:
        w = want.as<int8_t>()[i];
        g = got.as<int8_t>()[i];
        break;
      case DType::kUint8:
        w = want.as<uint8_t>()[i];
        g = got.as<uint8_t>()[i];
        break;
      case DType::kBool:
        w = want.as<uint8_t>()[i];
        g = got.as<uint8_t>()[i];
        break;
      case DType::kInt32:
        w = want.as<int32_t>()[i];
        g = got.as<int32_t>()[i];
        break;
      case DType::kInt64:
        w = static_cast<double>(want.as<int64_t>()[i]);
        g = static_cast<double>(got.as<int64_t>()[i]);
        break;
      default:
        return "unknown type";
    }
    bool ok =
        (want.dtype == DType::kFloat32 || want.dtype == DType::kFloat64) ? close(w, g) : w == g;
    if (!ok)
      return "element " + std::to_string(i) + ": got " + std::to_string(g) + ", expected " +
             std::to_string(w);
  }
  return "";
}

struct OpCount {
  int ran = 0, passed = 0, refused = 0;
};

// Cases of claimed ops the runtime refuses by design, with the reason its error must give:
// graphs over sequence or optional values (the runtime computes on tensors only), and
// training-mode dropout with a non-zero ratio, whose expected outputs come from numpy's
// random generator and cannot be reproduced; and the expanded (function body) forms of Range,
// which run a Loop over a subgraph: the runtime has no control flow; and Cast, CastLike (whose
// case names begin with test_cast) and Pow cases over float16, bfloat16, string, uint32 and
// uint64 tensors, element types the runtime does not have.
const std::map<std::string, std::string> kRefusedByDesign = {
    {"node/test_identity_opt", "not a tensor"},
    {"node/test_identity_sequence", "not a tensor"},
    {"node/test_range_float_type_positive_delta_expanded", "attribute 'body'"},
    {"node/test_range_int32_type_negative_delta_expanded", "attribute 'body'"},
    {"node/test_training_dropout", "random"},
    {"node/test_training_dropout_default", "random"},
    {"node/test_training_dropout_default_mask", "random"},
    {"node/test_training_dropout_mask", "random"},
    {"node/test_cast_BFLOAT16_to_FLOAT", "element type"},
    {"node/test_castlike_BFLOAT16_to_FLOAT", "element type"},
    {"node/test_castlike_BFLOAT16_to_FLOAT_expanded", "element type"},
    {"node/test_cast_DOUBLE_to_FLOAT16", "element type"},
    {"node/test_castlike_DOUBLE_to_FLOAT16", "element type"},
    {"node/test_castlike_DOUBLE_to_FLOAT16_expanded", "element type"},
    {"node/test_cast_FLOAT16_to_DOUBLE", "element type"},
    {"node/test_castlike_FLOAT16_to_DOUBLE", "element type"},
    {"node/test_castlike_FLOAT16_to_DOUBLE_expanded", "element type"},
    {"node/test_cast_FLOAT16_to_FLOAT", "element type"},
    {"node/test_castlike_FLOAT16_to_FLOAT", "element type"},
    {"node/test_castlike_FLOAT16_to_FLOAT_expanded", "element type"},
    {"node/test_cast_FLOAT_to_BFLOAT16", "element type"},
    {"node/test_castlike_FLOAT_to_BFLOAT16", "element type"},
    {"node/test_castlike_FLOAT_to_BFLOAT16_expanded", "element type"},
    {"node/test_cast_FLOAT_to_FLOAT16", "element type"},
    {"node/test_castlike_FLOAT_to_FLOAT16", "element type"},
    {"node/test_castlike_FLOAT_to_FLOAT16_expanded", "element type"},
    {"node/test_cast_FLOAT_to_STRING", "element type"},
    {"node/test_castlike_FLOAT_to_STRING", "element type"},
    {"node/test_castlike_FLOAT_to_STRING_expanded", "element type"},
    {"node/test_cast_STRING_to_FLOAT", "element type"},
    {"node/test_castlike_STRING_to_FLOAT", "element type"},
    {"node/test_castlike_STRING_to_FLOAT_expanded", "element type"},
    {"node/test_pow_types_float32_uint32", "element type"},
    {"node/test_pow_types_float32_uint64", "element type"},
};

}  // namespace

TEST(RuntimeConformance, EveryCaseOfEveryClaimedOpPassesAtOnnxTolerances) {
  ASSERT_TRUE(fs::exists(kRoot)) << kRoot << " is missing: install libonnx-testdata";
  std::map<std::string, OpCount> per_op;
  std::vector<std::string> failures, refused;
  int in_scope = 0, passed = 0, out_of_scope = 0;
  std::set<std::string> claimed;
  for (const auto& op : SupportedOps()) claimed.insert(op);
  std::vector<std::pair<Backend, Isa>> runs = {{Backend::kReference, Isa::kBaseline}};
  std::string levels;
  for (Isa isa : SupportedIsas()) {
    runs.push_back({Backend::kFast, isa});
    levels += std::string(levels.empty() ? "" : ", ") + IsaName(isa);
  }
  std::string absent;
  for (Isa isa : CompiledIsas())
    if (!CpuSupports(isa)) absent += std::string(absent.empty() ? "" : ", ") + IsaName(isa);
  std::printf("fast backend at: %s; compiled in but not on this CPU: %s\n", levels.c_str(),
              absent.empty() ? "none" : absent.c_str());

  for (const char* suite : {"node", "pytorch-converted", "pytorch-operator", "simple"}) {
    std::vector<fs::path> cases;
    for (const auto& e : fs::directory_iterator(fs::path(kRoot) / suite))
      if (fs::exists(e.path() / "model.onnx")) cases.push_back(e.path());
    std::sort(cases.begin(), cases.end());
    for (const auto& dir : cases) {
      const std::string name = std::string(suite) + "/" + dir.filename().string();
      auto bytes = ReadFile((dir / "model.onnx").string());
      ASSERT_TRUE(bytes.ok());
      auto graph = ParseOnnxModel(*bytes, name);
      std::set<std::string> ops;
      bool all_claimed = true;
      if (graph.ok()) {
        for (const auto& n : graph->nodes) {
          ops.insert(n.op_type);
          all_claimed &= claimed.count(n.op_type) > 0;
        }
      }
      // Graphs whose ops are all claimed but that the parser refuses (sequence or optional
      // types, unsupported element types) are in scope too: they count as failures.
      if (graph.ok() && !all_claimed) {
        ++out_of_scope;
        continue;
      }
      if (!graph.ok()) {
        // Parse failures only matter for graphs built from claimed ops; find the ops by name.
        bool claimed_name = false;
        for (const auto& op : claimed) {
          std::string lower = op;
          std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
          if (dir.filename().string().rfind("test_" + lower, 0) == 0) {
            claimed_name = true;
            ops.insert(op);
          }
        }
        if (!claimed_name) {
          ++out_of_scope;
          continue;
        }
      }
      ++in_scope;
      for (const auto& op : ops) ++per_op[op].ran;
      std::string problem;
      // The reference backend, and the fast one at every instruction-set level this CPU runs.
      for (const auto& [backend, isa] : runs) {
        ModelOptions mo;
        mo.backend = backend;
        EXPECT_TRUE(UseIsa(isa).ok());
        auto model = Model::LoadFromBytes(*bytes, name, mo);
        if (!model.ok()) {
          problem = "load: " + model.error().message;
          break;
        }
        for (const auto& e : fs::directory_iterator(dir)) {
          if (!e.is_directory() || e.path().filename().string().rfind("test_data_set_", 0) != 0)
            continue;
          std::vector<OwnedTensor> inputs, want;
          for (const auto& p : SortedFiles(e.path(), "input_")) {
            auto t = ParseOnnxTensor(*ReadFile(p.string()), p.string());
            ASSERT_TRUE(t.ok()) << t.error().message;
            inputs.push_back(std::move(*t));
          }
          for (const auto& p : SortedFiles(e.path(), "output_")) {
            auto t = ParseOnnxTensor(*ReadFile(p.string()), p.string());
            ASSERT_TRUE(t.ok()) << t.error().message;
            want.push_back(std::move(*t));
          }
          std::vector<Tensor> views;
          for (auto& t : inputs) views.push_back(t.view());
          auto got = model->Run(views);
          if (!got.ok()) {
            problem = "run: " + got.error().message;
            break;
          }
          if (got->size() != want.size()) {
            problem = "output count";
            break;
          }
          for (size_t i = 0; i < want.size() && problem.empty(); ++i) {
            std::string diff = Compare(want[i], (*got)[i]);
            if (!diff.empty()) problem = "output " + std::to_string(i) + ": " + diff;
          }
          if (!problem.empty()) break;
        }
        if (!problem.empty()) {
          problem = std::string(backend == Backend::kFast ? "fast" : "reference") + " backend at " +
                    IsaName(isa) + ", " + problem;
          break;
        }
      }
      auto design = kRefusedByDesign.find(name);
      if (design != kRefusedByDesign.end()) {
        if (problem.find(design->second) == std::string::npos)
          failures.push_back(name + ": expected a refusal mentioning '" + design->second +
                             "', got: " + (problem.empty() ? "a pass" : problem));
        else
          refused.push_back(name + ": " + problem);
        for (const auto& op : ops) ++per_op[op].refused;
        continue;
      }
      if (problem.empty()) {
        ++passed;
        for (const auto& op : ops) ++per_op[op].passed;
      } else {
        failures.push_back(name + ": " + problem);
      }
    }
  }

  std::printf("\nONNX backend test cases (libonnx-testdata 1.12) for the ops the runtime claims\n");
  std::printf("%-22s %6s %7s %8s\n", "op", "cases", "passed", "refused");
  for (const auto& op : claimed) {
    const OpCount& c = per_op[op];
    std::printf("%-22s %6d %7d %8d\n", op.c_str(), c.ran, c.passed, c.refused);
  }
  std::printf(
      "in scope %d: passed %d, refused by design %zu, failed %zu; out of scope (unclaimed ops) "
      "%d\n",
      in_scope, passed, refused.size(), failures.size(), out_of_scope);
  for (const auto& r : refused) std::printf("refused %s\n", r.c_str());
  for (const auto& f : failures) std::printf("FAILED %s\n", f.c_str());
  // EDGELOOP_CONFORMANCE_JSON=FILE: the same results as JSON, from which scripts/evaluate
  // renders the table in docs/evaluation.md (bench/results/conformance.json).
  if (const char* path = std::getenv("EDGELOOP_CONFORMANCE_JSON"); path != nullptr && *path) {
    nlohmann::json j = {{"testdata", kRoot},
                        {"in_scope", in_scope},
                        {"passed", passed},
                        {"out_of_scope", out_of_scope},
                        {"refused", refused},
                        {"failed", failures},
                        {"ops", nlohmann::json::array()}};
    for (const auto& op : claimed) {
      const OpCount& c = per_op[op];
      j["ops"].push_back(
          {{"op", op}, {"cases", c.ran}, {"passed", c.passed}, {"refused", c.refused}});
    }
    EXPECT_TRUE(WriteFileAtomic(path, j.dump(2) + "\n").ok()) << path;
  }
  EXPECT_GT(in_scope, 100);
  EXPECT_TRUE(failures.empty()) << failures.size() << " case(s) failed";
  EXPECT_TRUE(UseIsa(SupportedIsas().back()).ok());
}

}  // namespace edgeloop::runtime
