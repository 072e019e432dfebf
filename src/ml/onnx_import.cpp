#include "ml/onnx_import.hpp"

#include <filesystem>

#include "common/file.hpp"
#include "common/hash.hpp"
#include "ml/onnx_import_block.hpp"

namespace edgeloop::ml {
namespace fs = std::filesystem;
using onnx_import::Dims;
using onnx_import::DimsString;
using onnx_import::Graph;
using onnx_import::Node;

namespace {

struct Head {
  int node = -1;
  int input = -1;              // the embedding the head reads, [N, E]
  torch::Tensor weight, bias;  // [K, E] and [K], as a Linear holds them
};

bool IsHeadCandidate(const Graph& g, const Node& n) {
  return n.op->AsMatrixProduct() && n.inputs.size() >= 2 && n.inputs[1] >= 0 &&
         g.values[n.inputs[1]].is_constant() && g.values[n.inputs[0]].dims.size() == 2;
}

// A bias of K values as a [K] tensor: shapes [K], [1, K], or one value for all.
std::optional<torch::Tensor> BiasVector(const torch::Tensor& c, int64_t k) {
  if (!c.is_floating_point() || c.dim() > 2) return std::nullopt;
  if (c.numel() == 1) return c.to(torch::kFloat32).reshape({1}).expand({k}).clone();
  if (c.numel() != k || c.size(-1) != k) return std::nullopt;
  return c.to(torch::kFloat32).reshape({k}).clone();
}

// The Gemm or MatMul at node `index` as a Linear layer: weight [K, E] with alpha folded in,
// bias [K] with beta folded in (for MatMul: a constant Add that is the product's only reader).
Result<Head> HeadAt(const Graph& g, int index, const std::vector<std::vector<int>>& consumers) {
  const Node& n = g.nodes[index];
  const std::string where = g.origin + ": head node '" + n.name + "' (" + n.op_type + ")";
  auto product = n.op->AsMatrixProduct();
  if (!product) return Error(Errc::kInvalidArgument, where + ": the head must be a Gemm or MatMul");
  if (!IsHeadCandidate(g, n))
    return Error(Errc::kUnsupported,
                 where + ": a head reads data [N, features] and has constant weights");
  Head h;
  h.node = index;
  h.input = n.inputs[0];
  torch::Tensor b = g.values[n.inputs[1]].constant;
  if (b.dim() != 2 || !b.is_floating_point())
    return Error(Errc::kUnsupported, where + ": its weights are not a float matrix");
  h.weight = (product->trans_b ? b : b.t()).to(torch::kFloat32) * product->alpha;
  const int64_t k = h.weight.size(0);
  if (k < 2)
    return Error(Errc::kUnsupported,
                 where + " has " + std::to_string(k) + " output; a classifier needs at least 2");
  h.bias = torch::zeros({k});
  torch::Tensor c;
  float scale = product->beta;
  if (n.op_type == "Gemm" && n.inputs.size() > 2 && n.inputs[2] >= 0) {
    if (!g.values[n.inputs[2]].is_constant())
      return Error(Errc::kUnsupported, where + ": its bias is not a constant");
    c = g.values[n.inputs[2]].constant;
  } else if (n.op_type == "MatMul" && consumers[n.output].size() == 1) {
    const Node& add = g.nodes[consumers[n.output][0]];
    int other = add.inputs.size() == 2 ? add.inputs[add.inputs[0] == n.output ? 1 : 0] : -1;
    if (add.op_type == "Add" && other >= 0 && g.values[other].is_constant()) {
      c = g.values[other].constant;
      scale = 1.f;
    }
  }
  if (c.defined()) {
    auto bias = BiasVector(c, k);
    if (!bias)
      return Error(Errc::kUnsupported, where + ": its bias " + DimsString(c.sizes().vec()) +
                                           " is not one value per output");
    h.bias = *bias * scale;
  }
  return h;
}

// The head: the named node, or the last head candidate the first output depends on.
Result<Head> FindHead(const Graph& g, const std::string& name) {
  auto consumers = g.Consumers();
  if (!name.empty()) {
    std::string products;
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      if (g.nodes[i].name == name) return HeadAt(g, static_cast<int>(i), consumers);
      if (g.nodes[i].op->AsMatrixProduct())
        products += (products.empty() ? "" : ", ") + g.nodes[i].name;
    }
    return Error(Errc::kNotFound,
                 g.origin + ": no node named '" + name + "'" +
                     (products.empty() ? " (and no Gemm or MatMul at all)"
                                       : " (Gemm and MatMul nodes: " + products + ")"));
  }
  std::vector<bool> feeds(g.values.size(), false);
  feeds[g.output] = true;
  for (size_t i = g.nodes.size(); i-- > 0;) {
    const Node& n = g.nodes[i];
    if (!feeds[n.output]) continue;
    if (IsHeadCandidate(g, n)) return HeadAt(g, static_cast<int>(i), consumers);
    for (int v : n.inputs)
      if (v >= 0) feeds[v] = true;
  }
  return Error(Errc::kUnsupported,
               g.origin +
                   ": no Gemm or MatMul with constant weights reading [N, features] leads "
                   "to output '" +
                   g.values[g.output].name +
                   "', so there is no classification head; name the node to use as the head "
                   "(--head-node NAME)");
}

struct Normalization {
  int start = -1;  // the value the backbone starts from
  std::vector<float> mean, std;
};

// A leading Sub and/or Div of the input by one constant per channel (or feature), the only
// readers of what they read, is the model's input normalization: it moves into the Classifier's
// mean and std, as edgeloop's own models hold it, so exporting again writes it once.
Normalization LiftNormalization(const Graph& g) {
  const Dims& x = g.values[g.input].dims;
  const int64_t channels = x.size() > 1 ? x[1] : 1;
  Normalization n{g.input, std::vector<float>(channels, 0.f), std::vector<float>(channels, 1.f)};
  if (x.size() != 2 && x.size() != 4) return n;
  auto consumers = g.Consumers();
  auto per_channel = [&](int value, std::vector<float>* out) {
    const torch::Tensor& t = g.values[value].constant;
    if (!t.defined() || !t.is_floating_point() || (t.numel() != 1 && t.numel() != channels) ||
        static_cast<size_t>(t.dim()) > x.size())
      return false;
    for (int64_t i = 0; i < t.dim(); ++i)
      if (t.size(i) != 1 && static_cast<size_t>(i) + x.size() - t.dim() != 1) return false;
    auto flat = t.to(torch::kFloat32).reshape({-1}).contiguous();
    for (int64_t c = 0; c < channels; ++c) (*out)[c] = flat[t.numel() == 1 ? 0 : c].item<float>();
    return true;
  };
  auto sole_reader = [&](int value, const char* op) -> const Node* {
    if (consumers[value].size() != 1) return nullptr;
    const Node& r = g.nodes[consumers[value][0]];
    if (r.op_type != op || r.inputs.size() != 2 || r.inputs[0] != value || r.inputs[1] < 0 ||
        r.absorbed[1])
      return nullptr;
    return &r;
  };
  std::vector<float> mean(channels), stdv(channels);
  if (const Node* sub = sole_reader(n.start, "Sub"); sub && per_channel(sub->inputs[1], &mean)) {
    n.mean = mean;
    n.start = sub->output;
  }
  if (const Node* div = sole_reader(n.start, "Div");
      div && per_channel(div->inputs[1], &stdv) &&
      std::all_of(stdv.begin(), stdv.end(), [](float s) { return s > 0; })) {
    n.std = stdv;
    n.start = div->output;
  }
  return n;
}

std::string Metadata(const Graph& g, const std::string& key) {
  auto it = g.metadata.find(key);
  return it == g.metadata.end() ? "" : it->second;
}

Result<std::vector<std::string>> ClassNames(const Graph& g, const Head& h,
                                            const std::vector<std::string>& given) {
  const auto k = static_cast<size_t>(h.weight.size(0));
  if (!given.empty()) {
    if (given.size() != k)
      return Error(Errc::kMismatch, g.origin + ": " + std::to_string(given.size()) +
                                        " class names given, but head node '" +
                                        g.nodes[h.node].name + "' has " + std::to_string(k) +
                                        " outputs");
    return given;
  }
  auto j = nlohmann::json::parse(Metadata(g, "edgeloop.class_names"), nullptr, false);
  if (j.is_array() && j.size() == k &&
      std::all_of(j.begin(), j.end(), [](const auto& v) { return v.is_string(); }))
    return j.get<std::vector<std::string>>();
  std::vector<std::string> names;
  for (size_t i = 0; i < k; ++i) names.push_back(std::to_string(i));
  return names;
}

}  // namespace

Status ValidateOnnxSpec(const ModelSpec& spec) {
  if (spec.input_shape.size() != 1 && spec.input_shape.size() != 3)
    return Error(Errc::kMismatch,
                 "an imported classifier takes feature vectors [f] or images [c,h,w]; the graph's "
                 "input has " +
                     std::to_string(spec.input_shape.size()) + " dimensions per sample");
  for (int64_t d : spec.input_shape)
    if (d < 1) return Error(Errc::kInvalidArgument, "input dimensions must be positive");
  if (spec.onnx_head.empty())
    return Error(Errc::kInvalidArgument, "an imported classifier names its head node");
  if (spec.embed < 1) return Error(Errc::kInvalidArgument, "the embedding width must be positive");
  return Status::Ok();
}

int64_t BuildOnnxBackbone(const ModelSpec& spec, torch::nn::ModuleList& backbone) {
  if (!spec.onnx_graph) throw std::runtime_error("an imported model without its graph.onnx");
  auto g = onnx_import::ReadGraph(*spec.onnx_graph, "graph.onnx");
  if (!g.ok()) throw std::runtime_error(g.error().message);
  auto head = FindHead(*g, spec.onnx_head);
  if (!head.ok()) throw std::runtime_error(head.error().message);
  auto plan = onnx_import::PlanBackbone(*g, LiftNormalization(*g).start, head->input);
  if (!plan.ok()) throw std::runtime_error(plan.error().message);
  for (const auto& b : plan->blocks)
    backbone->push_back(std::make_shared<onnx_import::OnnxBlockImpl>(*g, b, plan->weights));
  return head->weight.size(1);
}

Result<LoadedModel> ImportOnnxModelBytes(std::shared_ptr<const std::string> bytes,
                                         const std::string& origin,
                                         const OnnxImportOptions& options) {
  EDGELOOP_ASSIGN_OR_RETURN(Graph g, onnx_import::ReadGraph(*bytes, origin, options.limits));
  EDGELOOP_ASSIGN_OR_RETURN(Head head, FindHead(g, options.head_node));
  Normalization norm = LiftNormalization(g);
  EDGELOOP_RETURN_IF_ERROR(onnx_import::PlanBackbone(g, norm.start, head.input));

  LoadedModel out;
  ModelSpec& spec = out.info.spec;
  spec.arch = "onnx";
  spec.input_shape = g.SampleShape();
  spec.num_classes = head.weight.size(0);
  spec.widths.clear();
  spec.embed = head.weight.size(1);
  spec.dropout = 0;
  spec.input_mean = norm.mean;
  spec.input_std = norm.std;
  spec.onnx_graph = bytes;
  spec.onnx_graph_sha256 = Sha256Hex(*bytes);
  spec.onnx_head = g.nodes[head.node].name;
  if (auto st = spec.Validate(); !st.ok()) return st.error().WithContext(origin);
  EDGELOOP_ASSIGN_OR_RETURN(out.info.class_names, ClassNames(g, head, options.class_names));

  std::string stem = fs::path(origin).stem().string();
  out.info.name = Metadata(g, "edgeloop.name");
  if (out.info.name.empty()) out.info.name = g.name.empty() ? stem : g.name;
  out.info.version = Metadata(g, "edgeloop.version");
  if (out.info.version.empty()) out.info.version = "1";
  auto lineage = nlohmann::json::parse(Metadata(g, "edgeloop.lineage"), nullptr, false);
  if (lineage.is_object()) {
    out.info.lineage = Lineage::FromJson(lineage);
  } else {
    out.info.lineage.strategy = "imported";
    out.info.lineage.hyperparameters = {{"onnx_producer", g.producer}, {"onnx_file", stem}};
    out.info.lineage.code_version = CodeVersion();
    out.info.lineage.created_at = NowIso8601();
  }

  try {
    out.model = Classifier(spec);
    torch::NoGradGuard no_grad;
    out.model->head()->weight.copy_(head.weight);
    out.model->head()->bias.copy_(head.bias);
    out.model->eval();
    // One batch of two through everything: the shapes planned at import are the shapes run.
    Dims probe = {2};
    probe.insert(probe.end(), spec.input_shape.begin(), spec.input_shape.end());
    auto y = out.model->forward(torch::zeros(probe));
    if (y.sizes() != torch::IntArrayRef({2, spec.num_classes}))
      return Error(Errc::kInternal,
                   origin + ": the imported model outputs " + DimsString(y.sizes().vec()));
  } catch (const std::exception& e) {
    return Error(Errc::kFormat, origin + ": " + e.what());
  }
  return out;
}

Result<LoadedModel> ImportOnnxModel(const std::string& path, const OnnxImportOptions& options) {
  EDGELOOP_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path, options.limits.max_file_bytes));
  return ImportOnnxModelBytes(std::make_shared<const std::string>(std::move(bytes)), path, options);
}

Result<LoadedModel> LoadOrImportModel(const std::string& path, const OnnxImportOptions& options) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return LoadModel(path);
  if (fs::is_regular_file(path, ec)) return ImportOnnxModel(path, options);
  return Error(Errc::kNotFound, path + ": neither a model directory nor an ONNX file");
}

}  // namespace edgeloop::ml
