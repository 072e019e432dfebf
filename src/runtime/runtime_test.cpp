// The runtime's behaviour beyond conformance: bad files and bad inputs give clear errors and
// never huge allocations, the fast backend agrees with the reference, memory is planned once.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <random>
#include <tuple>

#include "common/file.hpp"
#include "runtime/quantizer.hpp"

#include "runtime/gemm.hpp"
#include "runtime/isa.hpp"
#include "runtime/model.hpp"
#include "runtime/test_models.hpp"

namespace edgeloop::runtime {
namespace {

using namespace test;  // NOLINT(google-build-using-namespace)

constexpr float kInf = std::numeric_limits<float>::infinity();

TEST(Runtime, FastBackendMatchesReference) {
  for (int stride : {1, 2}) {
    for (int group : {1, 3}) {
      auto bytes = SmallConvNet(stride, group);
      auto x = Random(4 * 3 * 12 * 12, 9);
      auto ref = RunNet(bytes, Backend::kReference, x, 4);
      auto fast = RunNet(bytes, Backend::kFast, x, 4);
      ASSERT_EQ(ref.size(), 40u);
      ASSERT_EQ(fast.size(), ref.size());
      for (size_t i = 0; i < ref.size(); ++i)
        EXPECT_NEAR(fast[i], ref[i], 1e-5) << stride << " " << group;
    }
  }
}

TEST(Runtime, EveryInstructionSetLevelMatchesTheReference) {
  // The matrix kernels and a whole network at each level this CPU runs, against the
  // reference backend (plain loops); the levels the binary carries but the CPU lacks are named.
  std::string ran, absent;
  for (Isa isa : CompiledIsas())
    if (!CpuSupports(isa)) absent += std::string(" ") + IsaName(isa);
  const int64_t m = 19, n = 37, k = 29;
  auto a = Random(static_cast<size_t>(m * k), 1), b = Random(static_cast<size_t>(k * n), 2);
  std::vector<float> want(static_cast<size_t>(m * n), 0.5f);
  Sgemm(Backend::kReference, false, false, m, n, k, 1.0f, a.data(), k, b.data(), n, 1.0f,
        want.data(), n);
  auto x = Random(4 * 3 * 12 * 12, 9);
  const auto net_ref = RunNet(SmallConvNet(), Backend::kReference, x, 4);
  for (Isa isa : SupportedIsas()) {
    ASSERT_TRUE(UseIsa(isa).ok()) << IsaName(isa);
    ran += std::string(" ") + IsaName(isa);
    std::vector<float> got(want.size(), 0.5f), conv(want.size(), 0.5f), dots(n, 0.0f);
    Sgemm(Backend::kFast, false, false, m, n, k, 1.0f, a.data(), k, b.data(), n, 1.0f, got.data(),
          n);
    const std::vector<float> halves(static_cast<size_t>(m), 0.5f);
    ConvGemm(m, n, k, a.data(), b.data(), halves.data(), -kInf, kInf, conv.data());
    // DotRows: y[j] = dot(row 0 of A, column j of B), B transposed to rows.
    std::vector<float> bt(static_cast<size_t>(n * k));
    for (int64_t p = 0; p < k; ++p)
      for (int64_t j = 0; j < n; ++j)
        bt[static_cast<size_t>(j * k + p)] = b[static_cast<size_t>(p * n + j)];
    DotRows(a.data(), bt.data(), n, k, dots.data());
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_NEAR(got[i], want[i], 1e-4) << IsaName(isa) << " Sgemm " << i;
      EXPECT_NEAR(conv[i], want[i], 1e-4) << IsaName(isa) << " ConvGemm " << i;
    }
    for (int64_t j = 0; j < n; ++j)
      EXPECT_NEAR(dots[static_cast<size_t>(j)], want[static_cast<size_t>(j)] - 0.5f, 1e-4)
          << IsaName(isa) << " DotRows " << j;
    const auto net = RunNet(SmallConvNet(), Backend::kFast, x, 4);
    ASSERT_EQ(net.size(), net_ref.size());
    for (size_t i = 0; i < net.size(); ++i)
      EXPECT_NEAR(net[i], net_ref[i], 1e-5) << IsaName(isa) << " network output " << i;
  }
  std::printf("levels run:%s; compiled in, absent on this CPU:%s\n", ran.c_str(),
              absent.empty() ? " none" : absent.c_str());
  ASSERT_TRUE(UseIsa(SupportedIsas().back()).ok());
  // A level the CPU lacks is refused, and the choice falls back with a warning.
  IsaChoice c = ChooseIsa("avx512", {Isa::kBaseline});
  EXPECT_EQ(c.isa, Isa::kBaseline);
  EXPECT_FALSE(c.warning.empty());
  EXPECT_EQ(ChooseIsa("baseline", SupportedIsas()).isa, Isa::kBaseline);
  EXPECT_EQ(ChooseIsa("", SupportedIsas()).isa, SupportedIsas().back());
}

TEST(Runtime, ConvGemmMatchesTheReferenceForEveryTileShapeWithBiasAndClampAtEveryLevel) {
  // Row counts around the 8- and 4-row blocks, column counts around the 16-, 32- and 48-wide
  // tiles and their masked edges, with and without a bias, with and without bounds; both the
  // dense and the row-pointer form.
  const int64_t ms[] = {1, 3, 4, 8, 13, 19}, ns[] = {1, 5, 16, 17, 32, 33, 48, 49, 64, 80, 97},
                ks[] = {1, 7, 29};
  for (Isa isa : SupportedIsas()) {
    ASSERT_TRUE(UseIsa(isa).ok()) << IsaName(isa);
    for (int64_t m : ms)
      for (int64_t n : ns)
        for (int64_t k : ks)
          for (int variant = 0; variant < 2; ++variant) {
            const std::string what = std::string(IsaName(isa)) + " m" + std::to_string(m) + " n" +
                                     std::to_string(n) + " k" + std::to_string(k) + " variant " +
                                     std::to_string(variant);
            auto a = Random(static_cast<size_t>(m * k), 11),
                 b = Random(static_cast<size_t>(k * n), 12);
            auto bias = Random(static_cast<size_t>(m), 13);
            const float* bp = variant ? bias.data() : nullptr;
            const float lo = variant ? -0.3f : -kInf, hi = variant ? 0.4f : kInf;
            std::vector<float> want(static_cast<size_t>(m * n));
            for (int64_t i = 0; i < m; ++i)
              for (int64_t j = 0; j < n; ++j) {
                double acc = bp ? bp[i] : 0.0;
                for (int64_t p = 0; p < k; ++p)
                  acc += static_cast<double>(a[static_cast<size_t>(i * k + p)]) *
                         b[static_cast<size_t>(p * n + j)];
                want[static_cast<size_t>(i * n + j)] =
                    std::min(std::max(static_cast<float>(acc), lo), hi);
              }
            std::vector<float> dense(want.size(), 7.0f), rowwise(want.size(), 7.0f);
            std::vector<const float*> rows(static_cast<size_t>(k));
            for (int64_t p = 0; p < k; ++p) rows[static_cast<size_t>(p)] = b.data() + p * n;
            ConvGemm(m, n, k, a.data(), b.data(), bp, lo, hi, dense.data());
            ConvGemmRows(m, n, k, a.data(), rows.data(), bp, lo, hi, rowwise.data());
            for (size_t i = 0; i < want.size(); ++i) {
              ASSERT_NEAR(dense[i], want[i], 1e-4) << what << " ConvGemm " << i;
              ASSERT_NEAR(rowwise[i], want[i], 1e-4) << what << " ConvGemmRows " << i;
            }
          }
  }
  ASSERT_TRUE(UseIsa(SupportedIsas().back()).ok());
}

// x[2, 5, h, w] -> depthwise Conv (5 groups of one channel, kernel k x k, bias) -> y, with
// a Clip to [0, 0.25] after it (folded into the Conv by the fast backend) if `clip`.
std::string DepthwiseNet(int64_t h, int64_t w, int64_t k, int64_t stride, int64_t pad,
                         int64_t dilation, bool clip) {
  TestGraph t(13);
  t.Input("x", {2, 5, h, w});
  t.Floats("w", {5, 1, k, k}, Random(static_cast<size_t>(5 * k * k), 41));
  t.Floats("b", {5}, Random(5, 42));
  auto* conv = t.Node("Conv", {"x", "w", "b"}, {clip ? "c" : "y"});
  TestGraph::IntAttr(conv, "group", 5);
  TestGraph::IntsAttr(conv, "strides", {stride, stride});
  TestGraph::IntsAttr(conv, "pads", {pad, pad, pad, pad});
  TestGraph::IntsAttr(conv, "dilations", {dilation, dilation});
  if (clip) {
    t.Floats("lo", {}, {0.0f});
    t.Floats("hi", {}, {0.25f});
    t.Node("Clip", {"c", "lo", "hi"}, {"y"});
  }
  t.Output("y");
  return t.Bytes();
}

// Residual blocks: Conv -> Add(skip) [-> Relu], through the stride-1 3x3 path, a pointwise
// layer, a strided one (im2col) and a depthwise one, a skip that is the graph input, another
// layer's output and a Conv computed after the layer (not folded), a sum read twice.
std::string ResidualNet() {
  TestGraph t(13);
  t.Input("x", {2, 8, 9, 9});
  auto conv = [&t](const std::string& in, const std::string& out, int64_t c, int64_t m, int64_t k,
                   int64_t stride, int64_t group, int seed) {
    t.Floats(out + "_w", {m, c / group, k, k},
             Random(static_cast<size_t>(m * (c / group) * k * k), seed));
    t.Floats(out + "_b", {m}, Random(static_cast<size_t>(m), seed + 1));
    auto* n = t.Node("Conv", {in, out + "_w", out + "_b"}, {out});
    TestGraph::IntsAttr(n, "pads", {k / 2, k / 2, k / 2, k / 2});
    TestGraph::IntsAttr(n, "strides", {stride, stride});
    TestGraph::IntAttr(n, "group", group);
  };
  conv("x", "c1", 8, 8, 3, 1, 1, 60);
  t.Node("Relu", {"c1"}, {"r1"});
  conv("r1", "c2", 8, 8, 3, 1, 1, 62);
  t.Node("Add", {"c2", "x"}, {"s1"});  // 3x3 stride 1 + graph input, then Relu
  t.Node("Relu", {"s1"}, {"r2"});
  conv("r2", "c3", 8, 8, 1, 1, 1, 64);
  t.Node("Add", {"r2", "c3"}, {"s2"});  // pointwise, the Conv second, no Relu
  conv("s2", "c4", 8, 8, 3, 1, 8, 66);
  t.Node("Add", {"c4", "s2"}, {"s3"});  // depthwise
  t.Node("Relu", {"s3"}, {"r3"});
  conv("r3", "c5", 8, 16, 3, 2, 1, 68);  // stride 2 (im2col), skip from a later Conv
  conv("r3", "c6", 8, 16, 1, 2, 1, 70);
  t.Node("Add", {"c5", "c6"}, {"s4"});
  t.Node("Relu", {"s4"}, {"r4"});
  conv("r4", "c7", 16, 16, 3, 1, 1, 72);
  t.Node("Add", {"c7", "r4"}, {"y"});  // the sum is a graph output and read again
  t.Node("Relu", {"y"}, {"z"});
  t.Output("y");
  t.Output("z");
  return t.Bytes();
}

TEST(Runtime, FoldedResidualAddsMatchTheReferenceAtEveryLevel) {
  const std::string bytes = ResidualNet();
  auto x = Random(2 * 8 * 9 * 9, 74);
  auto run = [&](Backend backend) {
    ModelOptions o;
    o.backend = backend;
    auto m = Model::LoadFromBytes(bytes, "residual", o);
    EXPECT_TRUE(m.ok()) << m.error().message;
    auto out = m->Run({Tensor{DType::kFloat32, {2, 8, 9, 9}, x.data()}});
    EXPECT_TRUE(out.ok()) << out.error().message;
    std::vector<float> v;
    for (const auto& t : *out)
      v.insert(v.end(), t.as<float>(), t.as<float>() + NumElements(t.shape));
    return v;
  };
  const auto ref = run(Backend::kReference);
  ASSERT_EQ(ref.size(), 2u * 2 * 16 * 5 * 5);
  for (Isa isa : SupportedIsas()) {
    ASSERT_TRUE(UseIsa(isa).ok());
    const auto got = run(Backend::kFast);
    ASSERT_EQ(got.size(), ref.size());
    for (size_t i = 0; i < ref.size(); ++i)
      EXPECT_NEAR(got[i], ref[i], 1e-4 * (1 + std::fabs(ref[i]))) << IsaName(isa) << " " << i;
  }
  ASSERT_TRUE(UseIsa(SupportedIsas().back()).ok());
}

TEST(Runtime, DepthwiseConvolutionsMatchTheReferenceInFloatAndInt8AtEveryLevel) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("edgeloop_dw_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  struct Case {
    int64_t h, w, k, stride, pad, dilation;
  };
  // Odd and even sizes, strides 1 to 3, padding and dilation, a 1x1 input whose output is
  // one position of a padded 3x3 window, kernels the fast path unrolls (3x3, 5x5) and others
  // (2x2, 7x7), and planes with whole blocks of 64 outputs and a tail.
  const Case cases[] = {{7, 7, 3, 1, 1, 1},   {7, 6, 3, 2, 1, 1},   {1, 1, 3, 1, 1, 1},
                        {9, 9, 3, 1, 2, 2},   {8, 8, 3, 2, 0, 1},   {10, 5, 3, 3, 1, 1},
                        {16, 16, 5, 1, 2, 1}, {2, 2, 3, 2, 1, 1},   {6, 7, 2, 1, 1, 1},
                        {12, 12, 7, 2, 3, 1}, {32, 32, 3, 1, 1, 1}, {32, 32, 3, 2, 1, 1}};
  for (const Case& cs : cases) {
    const std::string what = std::to_string(cs.h) + "x" + std::to_string(cs.w) + " k" +
                             std::to_string(cs.k) + " s" + std::to_string(cs.stride) + " p" +
                             std::to_string(cs.pad) + " d" + std::to_string(cs.dilation);
    const bool clip = cs.h % 2 == 0;  // half the cases
    const std::string fp32 = DepthwiseNet(cs.h, cs.w, cs.k, cs.stride, cs.pad, cs.dilation, clip);
    const std::string f = (dir / "dw.onnx").string(), q = (dir / "dw-int8.onnx").string();
    ASSERT_TRUE(WriteFileAtomic(f, fp32).ok());
    auto x = Random(static_cast<size_t>(2 * 5 * cs.h * cs.w), 43);
    OwnedTensor calib;
    calib.dtype = DType::kFloat32;
    calib.shape = {2, 5, cs.h, cs.w};
    calib.bytes.assign(reinterpret_cast<unsigned char*>(x.data()),
                       reinterpret_cast<unsigned char*>(x.data() + x.size()));
    ASSERT_TRUE(QuantizeModel(f, {calib}, q).ok()) << what;
    const std::string int8 = *ReadFile(q);
    auto run = [&](const std::string& bytes, Backend backend) {
      ModelOptions o;
      o.backend = backend;
      auto m = Model::LoadFromBytes(bytes, "dw", o);
      EXPECT_TRUE(m.ok()) << m.error().message;
      auto out = m->Run({Tensor{DType::kFloat32, {2, 5, cs.h, cs.w}, x.data()}});
      EXPECT_TRUE(out.ok()) << out.error().message;
      const auto& t = (*out)[0];
      return std::vector<float>(t.as<float>(), t.as<float>() + NumElements(t.shape));
    };
    const auto ref = run(fp32, Backend::kReference), ref8 = run(int8, Backend::kReference);
    ASSERT_FALSE(ref.empty()) << what;
    for (Isa isa : SupportedIsas()) {
      ASSERT_TRUE(UseIsa(isa).ok());
      const auto got = run(fp32, Backend::kFast), got8 = run(int8, Backend::kFast);
      ASSERT_EQ(got.size(), ref.size()) << what;
      ASSERT_EQ(got8.size(), ref8.size()) << what;
      for (size_t i = 0; i < ref.size(); ++i) {
        EXPECT_NEAR(got[i], ref[i], 1e-5) << what << " " << IsaName(isa) << " fp32 " << i;
        EXPECT_EQ(got8[i], ref8[i]) << what << " " << IsaName(isa) << " int8 " << i;
      }
    }
    ASSERT_TRUE(UseIsa(SupportedIsas().back()).ok());
  }
  fs::remove_all(dir);
}

// x[5, c, h, w] -> Conv (m output channels, kernel k x k, `group` groups, bias) -> y, with a
// Relu after it if `relu`.
std::string QConvNet(int64_t c, int64_t m, int64_t h, int64_t w, int64_t k, int64_t stride,
                     int64_t pad, int64_t dilation, int64_t group, bool relu) {
  TestGraph t(13);
  t.Input("x", {5, c, h, w});
  t.Floats("w", {m, c / group, k, k}, Random(static_cast<size_t>(m * (c / group) * k * k), 51));
  t.Floats("b", {m}, Random(static_cast<size_t>(m), 52));
  auto* conv = t.Node("Conv", {"x", "w", "b"}, {relu ? "c" : "y"});
  TestGraph::IntAttr(conv, "group", group);
  TestGraph::IntsAttr(conv, "strides", {stride, stride});
  TestGraph::IntsAttr(conv, "pads", {pad, pad, pad, pad});
  TestGraph::IntsAttr(conv, "dilations", {dilation, dilation});
  if (relu) t.Node("Relu", {"c"}, {"y"});
  t.Output("y");
  return t.Bytes();
}

TEST(Runtime, Int8ConvolutionsMatchTheReferenceExactlyAtEveryLevel) {
  // The VNNI kernel's channel quads (input channels 1 to 17, whole and partial quads), its
  // blocks of 8 output channels (1 to 24, whole and partial), its 16-, 32- and 48-position
  // tiles on the phase width (planes of 1x1 to 19x19), kernels 1x1 to 7x7 with strides 1 to 3,
  // padding, dilation and groups, fully connected layers (1x1 over 1x1) of 4 and 1 samples; the
  // int8 output after the Relu folded in half the cases.
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("edgeloop_qconv_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  struct Case {
    int64_t c, m, h, w, k, stride, pad, dilation, group;
  };
  const Case cases[] = {{1, 16, 12, 12, 3, 1, 1, 1, 1},  {3, 8, 7, 9, 3, 2, 1, 1, 1},
                        {4, 9, 8, 8, 1, 1, 0, 1, 1},     {8, 24, 4, 4, 1, 1, 0, 1, 1},
                        {5, 7, 19, 19, 3, 1, 1, 1, 1},   {16, 16, 8, 8, 3, 2, 1, 1, 1},
                        {17, 1, 6, 5, 5, 1, 2, 1, 1},    {6, 12, 9, 9, 3, 1, 2, 2, 2},
                        {12, 20, 10, 11, 7, 3, 3, 1, 1}, {32, 8, 1, 1, 3, 1, 1, 1, 1},
                        {8, 16, 16, 16, 1, 2, 0, 1, 1},  {9, 6, 5, 7, 2, 1, 0, 1, 3},
                        {32, 8, 1, 1, 1, 1, 0, 1, 1},    {37, 20, 1, 1, 1, 1, 0, 1, 1}};
  for (const Case& cs : cases) {
    const std::string what = "c" + std::to_string(cs.c) + " m" + std::to_string(cs.m) + " " +
                             std::to_string(cs.h) + "x" + std::to_string(cs.w) + " k" +
                             std::to_string(cs.k) + " s" + std::to_string(cs.stride) + " p" +
                             std::to_string(cs.pad) + " d" + std::to_string(cs.dilation) + " g" +
                             std::to_string(cs.group);
    const bool relu = cs.m % 2 == 0;
    const std::string fp32 =
        QConvNet(cs.c, cs.m, cs.h, cs.w, cs.k, cs.stride, cs.pad, cs.dilation, cs.group, relu);
    const std::string f = (dir / "q.onnx").string(), q = (dir / "q-int8.onnx").string();
    ASSERT_TRUE(WriteFileAtomic(f, fp32).ok());
    auto x = Random(static_cast<size_t>(5 * cs.c * cs.h * cs.w), 53);
    OwnedTensor calib;
    calib.dtype = DType::kFloat32;
    calib.shape = {5, cs.c, cs.h, cs.w};
    calib.bytes.assign(reinterpret_cast<unsigned char*>(x.data()),
                       reinterpret_cast<unsigned char*>(x.data() + x.size()));
    ASSERT_TRUE(QuantizeModel(f, {calib}, q).ok()) << what;
    const std::string int8 = *ReadFile(q);
    auto run = [&](Backend backend) {
      ModelOptions o;
      o.backend = backend;
      auto m = Model::LoadFromBytes(int8, "q", o);
      EXPECT_TRUE(m.ok()) << m.error().message;
      auto out = m->Run({Tensor{DType::kFloat32, {5, cs.c, cs.h, cs.w}, x.data()}});
      EXPECT_TRUE(out.ok()) << out.error().message;
      const auto& t = (*out)[0];
      return std::vector<float>(t.as<float>(), t.as<float>() + NumElements(t.shape));
    };
    const auto ref = run(Backend::kReference);
    ASSERT_FALSE(ref.empty()) << what;
    for (Isa isa : SupportedIsas()) {
      ASSERT_TRUE(UseIsa(isa).ok());
      const auto got = run(Backend::kFast);
      ASSERT_EQ(got.size(), ref.size()) << what;
      for (size_t i = 0; i < ref.size(); ++i)
        ASSERT_EQ(got[i], ref[i]) << what << " " << ActiveIsaName() << " output " << i;
    }
    ASSERT_TRUE(UseIsa(SupportedIsas().back()).ok());
  }
  fs::remove_all(dir);
}

TEST(Runtime, PlansMemoryAtLoadAndReusesBuffers) {
  auto m = Model::LoadFromBytes(SmallConvNet(), "net");
  ASSERT_TRUE(m.ok()) << m.error().message;
  PlanStats st = m->plan_stats();  // planned for batch 1 before any Run
  EXPECT_EQ(st.steps, 5u);         // six nodes, the Relu folded into the Conv by the fast backend
  EXPECT_GT(st.arena_bytes, 0u);
  EXPECT_LT(st.arena_bytes, st.naive_bytes);  // lifetimes let buffers share memory
  auto x = Random(3 * 12 * 12, 5);
  auto a = m->Run({Tensor{DType::kFloat32, {1, 3, 12, 12}, x.data()}});
  auto b = m->Run({Tensor{DType::kFloat32, {1, 3, 12, 12}, x.data()}});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ((*a)[0].bytes, (*b)[0].bytes);  // the same plan gives the same answer twice
}

TEST(Runtime, PlansCountTheirArithmeticAndRefuseAPlanOverTheComputeBudget) {
  // The Conv: 6x12x12 outputs, each 3x3x3 multiply-adds; the Gemm: 10 outputs of 216.
  const double layers = 2.0 * 6 * 12 * 12 * 27 + 2.0 * 10 * 216;
  auto m = Model::LoadFromBytes(SmallConvNet(), "net");
  ASSERT_TRUE(m.ok()) << m.error().message;
  const double batch1 = m->plan_stats().flops;
  EXPECT_GE(batch1, layers);
  EXPECT_LE(batch1, layers + 4000);  // plus one per element of Relu, pool, flatten, softmax
  auto x = Random(4 * 3 * 12 * 12, 5);
  ASSERT_TRUE(m->Run({Tensor{DType::kFloat32, {4, 3, 12, 12}, x.data()}}).ok());
  EXPECT_DOUBLE_EQ(m->plan_stats().flops, 4 * batch1);  // the plan for batch 4

  // Over the budget at load: refused, naming the node that crossed it.
  ModelOptions tight;
  tight.max_flops = 40000;
  auto refused = Model::LoadFromBytes(SmallConvNet(), "net", tight);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::kResourceExhausted);
  EXPECT_NE(refused.error().message.find("(Conv)"), std::string::npos) << refused.error().message;
  EXPECT_NE(refused.error().message.find("compute budget"), std::string::npos);
  // Within it at batch 1, over it at batch 4: the batch's plan is refused, nothing runs.
  ModelOptions one;
  one.max_flops = 2 * batch1;
  auto small = Model::LoadFromBytes(SmallConvNet(), "net", one);
  ASSERT_TRUE(small.ok()) << small.error().message;
  auto big = small->Run({Tensor{DType::kFloat32, {4, 3, 12, 12}, x.data()}});
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().code, Errc::kResourceExhausted);
  EXPECT_TRUE(small->Run({Tensor{DType::kFloat32, {1, 3, 12, 12}, x.data()}}).ok());
}

// Pooling costs a window per output, not one per element: a large kernel is what makes a
// small pooling node slow, so the budget must see it.
TEST(Runtime, ThePlannedCostOfPoolingCountsEveryWindowTap) {
  const std::string path =
      "/usr/share/libonnx-testdata/data/node/test_maxpool_2d_default/model.onnx";
  auto m = Model::Load(path);  // x [1, 3, 32, 32], kernel 2 x 2, y [1, 3, 31, 31]
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_DOUBLE_EQ(m->plan_stats().flops, 3 * 31 * 31 * 4 + 3 * 32 * 32);
}

// One normalisation node over x [2, 4, 3] with the given attribute.
std::string NormModel(const std::string& op, const std::string& attr, int64_t value,
                      const std::vector<int64_t>& scale_dims) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(17);
  auto* g = m.mutable_graph();
  g->set_name("norm");
  AddValue(g->mutable_input(), "x", {2, 4, 3});
  auto* n = g->add_node();
  n->set_op_type(op);
  n->set_name(op);
  n->add_input("x");
  if (!scale_dims.empty()) {
    size_t count = 1;
    for (int64_t d : scale_dims) count *= static_cast<size_t>(d);
    AddInitializer(g, "s", scale_dims, std::vector<float>(count, 1.0f));
    AddInitializer(g, "b", scale_dims, std::vector<float>(count, 0.0f));
    n->add_input("s");
    n->add_input("b");
  }
  n->add_output("y");
  auto* a = n->add_attribute();
  a->set_name(attr);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(value);
  AddValue(g->mutable_output(), "y", {2, 4, 3});
  return m.SerializeAsString();
}

TEST(Runtime, NormalisationLayersRefuseBadAxesSizesAndScales) {
  // A layer norm over the last axis gives each row mean 0 and variance 1.
  auto good = Model::LoadFromBytes(NormModel("LayerNormalization", "axis", -1, {3}), "ln");
  ASSERT_TRUE(good.ok()) << good.error().message;
  auto x = Random(24, 3);
  auto y = good->Run({Tensor{DType::kFloat32, {2, 4, 3}, x.data()}});
  ASSERT_TRUE(y.ok()) << y.error().message;
  const float* v = (*y)[0].as<float>();
  for (int r = 0; r < 8; ++r) {
    const double mean = (v[3 * r] + v[3 * r + 1] + v[3 * r + 2]) / 3.0;
    EXPECT_NEAR(mean, 0.0, 1e-5);
  }
  const std::vector<std::pair<std::string, std::string>> bad = {
      {NormModel("LayerNormalization", "axis", 3, {3}), "axis is outside"},
      {NormModel("LayerNormalization", "axis", -1, {4}), "broadcast onto the normalised axes"},
      {NormModel("LayerNormalization", "stash_type", 0, {3}), "stash_type"},
      {NormModel("InstanceNormalization", "epsilon_unused", 0, {3}), "shape [4]"},
      {NormModel("LRN", "size", 0, {}), "size must be at least 1"},
  };
  for (const auto& [bytes, needle] : bad) {
    auto m = Model::LoadFromBytes(bytes, "bad");
    ASSERT_FALSE(m.ok()) << needle;
    EXPECT_NE(m.error().message.find(needle), std::string::npos) << m.error().message;
  }
}

std::string ConvTransposeModel(const std::string& attr, std::vector<int64_t> ints) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(13);
  auto* g = m.mutable_graph();
  g->set_name("deconv");
  AddValue(g->mutable_input(), "x", {1, 2, 3, 3});
  AddInitializer(g, "w", {2, 1, 3, 3}, Random(18, 7));
  auto* n = g->add_node();
  n->set_op_type("ConvTranspose");
  n->add_input("x");
  n->add_input("w");
  n->add_output("y");
  auto* a = n->add_attribute();
  a->set_name(attr);
  a->set_type(ints.size() == 1 ? onnx::AttributeProto::INT : onnx::AttributeProto::INTS);
  if (ints.size() == 1)
    a->set_i(ints[0]);
  else
    for (int64_t v : ints) a->add_ints(v);
  AddValue(g->mutable_output(), "y", {});
  return m.SerializeAsString();
}

TEST(Runtime, ConvTransposeRefusesBadGeometryBeforeAllocating) {
  auto ok = Model::LoadFromBytes(ConvTransposeModel("strides", {2, 2}), "deconv");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->plan_stats().steps, 1u);
  const std::vector<std::pair<std::string, std::string>> bad = {
      {ConvTransposeModel("strides", {1 << 30, 1}), "is invalid"},
      {ConvTransposeModel("strides", {0, 1}), "must be positive"},
      {ConvTransposeModel("group", {3}), "divisible by group"},
      {ConvTransposeModel("pads", {1, 1}), "pads needs 2 per axis"},
      {ConvTransposeModel("output_shape", {5, 5, 5}), "output_shape needs one value"},
  };
  for (const auto& [bytes, needle] : bad) {
    auto m = Model::LoadFromBytes(bytes, "bad");
    ASSERT_FALSE(m.ok()) << needle;
    EXPECT_NE(m.error().message.find(needle), std::string::npos) << m.error().message;
  }
}

// An LSTM over x [seq 5, batch 2, input 3] with hidden size 4; W of `gates` x 4 rows.
std::string LstmModel(int64_t gates, const std::string& direction) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(14);
  auto* g = m.mutable_graph();
  g->set_name("lstm");
  AddValue(g->mutable_input(), "x", {5, 2, 3});
  AddInitializer(g, "w", {1, gates * 4, 3}, Random(static_cast<size_t>(gates * 12), 1));
  AddInitializer(g, "r", {1, 16, 4}, Random(64, 2));
  auto* n = g->add_node();
  n->set_op_type("LSTM");
  for (const char* i : {"x", "w", "r"}) n->add_input(i);
  n->add_output("y");
  n->add_output("y_h");
  auto* a = n->add_attribute();
  a->set_name("hidden_size");
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(4);
  auto* dir = n->add_attribute();
  dir->set_name("direction");
  dir->set_type(onnx::AttributeProto::STRING);
  dir->set_s(direction);
  AddValue(g->mutable_output(), "y", {});
  AddValue(g->mutable_output(), "y_h", {});
  return m.SerializeAsString();
}

TEST(Runtime, RecurrentLayersCheckTheirWeightsAndDirection) {
  auto ok = Model::LoadFromBytes(LstmModel(4, "reverse"), "lstm");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  auto x = Random(30, 3);
  auto y = ok->Run({Tensor{DType::kFloat32, {5, 2, 3}, x.data()}});
  ASSERT_TRUE(y.ok()) << y.error().message;
  // Reverse direction: the final state is the output at the first time step.
  for (int j = 0; j < 8; ++j) EXPECT_FLOAT_EQ((*y)[1].as<float>()[j], (*y)[0].as<float>()[j]);
  for (const auto& [bytes, needle] : std::vector<std::pair<std::string, std::string>>{
           {LstmModel(3, "forward"), "W must be [1, 16, 3]"},
           {LstmModel(4, "sideways"), "direction 'sideways'"}}) {
    auto m = Model::LoadFromBytes(bytes, "bad");
    ASSERT_FALSE(m.ok()) << needle;
    EXPECT_NE(m.error().message.find(needle), std::string::npos) << m.error().message;
  }
}

TEST(Runtime, WrongInputShapeOrTypeIsAClearError) {
  auto m = Model::LoadFromBytes(SmallConvNet(), "net");
  ASSERT_TRUE(m.ok());
  std::vector<float> x(3 * 10 * 10);
  auto r = m->Run({Tensor{DType::kFloat32, {1, 3, 10, 10}, x.data()}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("must have shape [?,3,12,12]"), std::string::npos)
      << r.error().message;
  std::vector<int64_t> xi(3 * 12 * 12);
  r = m->Run({Tensor{DType::kInt64, {1, 3, 12, 12}, xi.data()}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("must be float32"), std::string::npos) << r.error().message;
  r = m->Run({});
  ASSERT_FALSE(r.ok());
}

TEST(Runtime, TruncatedOrGarbageFilesAreRefused) {
  auto bytes = SmallConvNet();
  for (size_t cut : {size_t{0}, size_t{1}, bytes.size() / 3, bytes.size() - 7}) {
    auto m = Model::LoadFromBytes(std::string_view(bytes).substr(0, cut), "cut.onnx");
    EXPECT_FALSE(m.ok()) << "cut at " << cut;
    if (!m.ok()) {
      EXPECT_NE(m.error().message.find("cut.onnx"), std::string::npos);
    }
  }
  EXPECT_FALSE(Model::LoadFromBytes("this is not protobuf at all \xff\xff\xff", "junk").ok());
}

TEST(Runtime, InitializerWhoseDataDoesNotMatchItsShapeIsRefused) {
  onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(SmallConvNet()));
  m.mutable_graph()->mutable_initializer(0)->add_dims(2);  // now claims twice the data
  auto r = Model::LoadFromBytes(m.SerializeAsString(), "bad.onnx");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("initializer 'w'"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("needs 324 elements but the data holds 162"), std::string::npos)
      << r.error().message;
}

TEST(Runtime, AbsurdShapesAreRefusedWithoutAllocating) {
  onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(SmallConvNet()));
  auto* init = m.mutable_graph()->mutable_initializer(0);
  init->clear_dims();
  for (int64_t d : {int64_t{1} << 20, int64_t{1} << 20, int64_t{1} << 20}) init->add_dims(d);
  auto r = Model::LoadFromBytes(m.SerializeAsString(), "huge.onnx");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kResourceExhausted) << r.error().message;

  // A declared input of 2^40 elements is refused at load, not allocated.
  onnx::ModelProto m2;
  ASSERT_TRUE(m2.ParseFromString(SmallConvNet()));
  auto* dims =
      m2.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape();
  dims->mutable_dim(0)->set_dim_value(int64_t{1} << 40);
  r = Model::LoadFromBytes(m2.SerializeAsString(), "huge-input.onnx");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kResourceExhausted) << r.error().message;
}

// Found by the fuzzer: Softmax over an input with a zero dimension read past its (empty)
// buffer. An empty input gives an empty output, for both opsets' axis rules and backends.
TEST(Runtime, SoftmaxOfAnEmptyTensorIsEmpty) {
  for (int opset : {11, 13})
    for (Backend backend : {Backend::kReference, Backend::kFast}) {
      onnx::ModelProto m;
      m.set_ir_version(7);
      m.add_opset_import()->set_version(opset);
      auto* g = m.mutable_graph();
      g->set_name("empty-softmax");
      AddValue(g->mutable_input(), "x", {2, 0});
      auto* n = g->add_node();
      n->set_op_type("Softmax");
      n->add_input("x");
      n->add_output("y");
      AddValue(g->mutable_output(), "y", {2, 0});
      ModelOptions o;
      o.backend = backend;
      auto model = Model::LoadFromBytes(m.SerializeAsString(), "empty.onnx", o);
      ASSERT_TRUE(model.ok()) << model.error().message;
      float none = 0;
      auto out = model->Run({Tensor{DType::kFloat32, {2, 0}, &none}});
      ASSERT_TRUE(out.ok()) << out.error().message;
      EXPECT_EQ((*out)[0].shape, (Shape{2, 0})) << "opset " << opset;
    }
}

TEST(Runtime, UnsupportedOpsFailAtLoadNamingEveryOneWithItsCount) {
  onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(SmallConvNet()));
  m.mutable_graph()->mutable_node(1)->set_op_type("NonMaxSuppression");  // the Relu
  m.mutable_graph()->mutable_node(3)->set_op_type("Einsum");             // the Flatten
  m.mutable_graph()->mutable_node(5)->set_op_type("Einsum");             // the Softmax
  auto r = Model::LoadFromBytes(m.SerializeAsString(), "gap.onnx");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kUnsupported);
  const std::string& msg = r.error().message;
  EXPECT_NE(msg.find("op 'Einsum' (2 nodes, first node 'Flatten_f')"), std::string::npos) << msg;
  EXPECT_NE(msg.find("op 'NonMaxSuppression' (1 node, first node 'Relu_r')"), std::string::npos)
      << msg;
  // The support report lists every op once, sorted, with its count.
  auto graph = ParseOnnxModel(m.SerializeAsString(), "gap.onnx");
  ASSERT_TRUE(graph.ok());
  std::vector<std::string> got;
  for (const OpUse& u : OpSupport(*graph))
    got.push_back(u.op_type + ":" + std::to_string(u.count) + (u.supported ? "" : "!"));
  EXPECT_EQ(got, (std::vector<std::string>{"Conv:1", "Einsum:2!", "Gemm:1", "MaxPool:1",
                                           "NonMaxSuppression:1!"}));
}

TEST(Runtime, DanglingReferenceIsRefused) {
  onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(SmallConvNet()));
  m.mutable_graph()->mutable_node(2)->set_input(0, "nowhere");
  auto r = Model::LoadFromBytes(m.SerializeAsString(), "dangling.onnx");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("'nowhere'"), std::string::npos) << r.error().message;
}

// What exporters emit for x.view(x.size(0), -1) and friends: the target shape is computed
// from Shape(x). With x's shape known at planning the whole chain is folded: only the
// Reshape runs per inference, and every output shape is static.
std::string ShapeChainModel() {
  TestGraph t(13);
  t.Input("x", {-1, 3, 4});
  t.Ints("zero", {}, {0});
  t.Ints("two", {}, {2});
  t.Ints("axes0", {1}, {0});
  t.Ints("minus1", {1}, {-1});
  t.Ints("s1", {1}, {1});
  t.Ints("e3", {1}, {3});
  t.Ints("one", {}, {1});
  t.Node("Shape", {"x"}, {"shape"});                                  // [n,3,4]
  t.Node("Gather", {"shape", "zero"}, {"batch"});                     // n
  t.Node("Unsqueeze", {"batch", "axes0"}, {"batch1"});                // [n]
  auto* concat = t.Node("Concat", {"batch1", "minus1"}, {"target"});  // [n,-1]
  auto* axis = concat->add_attribute();
  axis->set_name("axis");
  axis->set_type(onnx::AttributeProto::INT);
  axis->set_i(0);
  t.Node("Reshape", {"x", "target"}, {"flat"});              // [n,12]
  t.Node("Slice", {"shape", "s1", "e3"}, {"inner"});         // [3,4]
  t.Node("ConstantOfShape", {"inner"}, {"zeros"});           // zeros of [3,4]
  t.Node("Expand", {"zeros", "shape"}, {"grid"});            // [n,3,4]
  t.Node("Gather", {"shape", "two"}, {"width"});             // 4
  t.Node("Range", {"zero", "width", "one"}, {"positions"});  // [0,1,2,3]
  t.Node("Unsqueeze", {"batch1", "axes0"}, {"batch11"});     // [[n]]
  t.Node("Squeeze", {"batch11", "axes0"}, {"batch_again"});  // [n]
  t.Output("flat");
  t.Output("grid");
  t.Output("positions", onnx::TensorProto::INT64);
  t.Output("batch_again", onnx::TensorProto::INT64);
  return t.Bytes();
}

TEST(Runtime, ShapeChainsAreFoldedAtPlanning) {
  for (Backend backend : {Backend::kReference, Backend::kFast}) {
    ModelOptions o;
    o.backend = backend;
    auto m = Model::LoadFromBytes(ShapeChainModel(), "chain.onnx", o);
    ASSERT_TRUE(m.ok()) << m.error().message;
    PlanStats st = m->plan_stats();  // planned at load for batch 1
    EXPECT_EQ(st.steps, 1u);         // only the Reshape
    EXPECT_EQ(st.folded_nodes, 11u);
    for (int64_t batch : {1, 5}) {
      std::vector<float> x(static_cast<size_t>(batch * 12));
      for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i);
      auto out = m->Run({Tensor{DType::kFloat32, {batch, 3, 4}, x.data()}});
      ASSERT_TRUE(out.ok()) << out.error().message;
      EXPECT_EQ(m->plan_stats().steps, 1u) << "batch " << batch;
      EXPECT_EQ((*out)[0].shape, (Shape{batch, 12}));
      EXPECT_EQ(std::vector<float>((*out)[0].as<float>(), (*out)[0].as<float>() + x.size()), x);
      EXPECT_EQ((*out)[1].shape, (Shape{batch, 3, 4}));
      EXPECT_EQ((*out)[1].as<float>()[0], 0.0f);
      ASSERT_EQ((*out)[2].shape, (Shape{4}));
      for (int64_t i = 0; i < 4; ++i) EXPECT_EQ((*out)[2].as<int64_t>()[i], i);
      EXPECT_EQ((*out)[3].shape, (Shape{1}));
      EXPECT_EQ((*out)[3].as<int64_t>()[0], batch);
    }
  }
}

// A Resize whose scales are a graph input: each value gets its own plan, and none is made
// from the placeholder values at load.
TEST(Runtime, ShapesThatFollowAnInputsValueArePlannedPerValue) {
  TestGraph t(13);
  t.Input("x", {1, 1, 2, 2});
  t.Input("scales", {4});
  auto* n = t.Node("Resize", {"x", "", "scales"}, {"y"});
  auto* mode = n->add_attribute();
  mode->set_name("mode");
  mode->set_type(onnx::AttributeProto::STRING);
  mode->set_s("nearest");
  t.Output("y");
  auto m = Model::LoadFromBytes(t.Bytes(), "resize.onnx");
  ASSERT_TRUE(m.ok()) << m.error().message;
  std::vector<float> x = {1, 2, 3, 4};
  for (float s : {2.0f, 3.0f, 2.0f}) {
    std::vector<float> scales = {1, 1, s, s};
    auto out = m->Run({Tensor{DType::kFloat32, {1, 1, 2, 2}, x.data()},
                       Tensor{DType::kFloat32, {4}, scales.data()}});
    ASSERT_TRUE(out.ok()) << out.error().message;
    const int64_t side = static_cast<int64_t>(2 * s);
    EXPECT_EQ((*out)[0].shape, (Shape{1, 1, side, side}));
    EXPECT_EQ((*out)[0].as<float>()[side * side - 1], 4.0f);
  }
}

// Ops whose outputs are sized by values refuse absurd sizes at planning, before allocating.
TEST(Runtime, HugeGeneratedOutputsAreRefusedAtPlanning) {
  auto expect_refused = [](const std::string& bytes, const std::string& what) {
    auto m = Model::LoadFromBytes(bytes, what);
    ASSERT_FALSE(m.ok()) << what;
    EXPECT_EQ(m.error().code, Errc::kResourceExhausted) << m.error().message;
  };
  const int64_t big = int64_t{1} << 20;
  {
    TestGraph t(13);
    t.Ints("shape", {3}, {big, big, big});
    t.Node("ConstantOfShape", {"shape"}, {"y"});
    t.Output("y");
    expect_refused(t.Bytes(), "constantofshape");
  }
  {
    TestGraph t(13);
    t.Input("x", {2, 2});
    t.Ints("reps", {2}, {big, big});
    t.Node("Tile", {"x", "reps"}, {"y"});
    t.Output("y");
    expect_refused(t.Bytes(), "tile");
  }
  {
    TestGraph t(13);
    t.Input("x", {2, 2});
    t.Ints("shape", {2}, {int64_t{1} << 45, 2});
    t.Node("Expand", {"x", "shape"}, {"y"});
    t.Output("y");
    expect_refused(t.Bytes(), "expand");
  }
  {
    TestGraph t(13);
    t.Floats("start", {}, {0});
    t.Floats("limit", {}, {1e30f});
    t.Floats("delta", {}, {1});
    t.Node("Range", {"start", "limit", "delta"}, {"y"});
    t.Output("y");
    expect_refused(t.Bytes(), "range");
  }
  {
    TestGraph t(13);
    t.Input("x", {1, 1, 2, 2});
    t.Floats("scales", {4}, {1, 1, 1e6f, 1e6f});
    t.Node("Resize", {"x", "", "scales"}, {"y"});
    t.Output("y");
    expect_refused(t.Bytes(), "resize");
  }
}

TEST(Runtime, BadIndicesStepsAndPadsAreClearErrors) {
  {  // an index out of range is an error of the Run that sees it
    TestGraph t(13);
    t.Floats("table", {3, 2}, {1, 2, 3, 4, 5, 6});
    t.Input("i", {2}, onnx::TensorProto::INT64);
    t.Node("Gather", {"table", "i"}, {"y"});
    t.Output("y");
    auto m = Model::LoadFromBytes(t.Bytes(), "gather.onnx");
    ASSERT_TRUE(m.ok()) << m.error().message;
    std::vector<int64_t> good = {2, -3}, bad = {0, 3};
    auto out = m->Run({Tensor{DType::kInt64, {2}, good.data()}});
    ASSERT_TRUE(out.ok()) << out.error().message;
    EXPECT_EQ((*out)[0].as<float>()[0], 5.0f);
    EXPECT_EQ((*out)[0].as<float>()[2], 1.0f);
    out = m->Run({Tensor{DType::kInt64, {2}, bad.data()}});
    ASSERT_FALSE(out.ok());
    EXPECT_NE(out.error().message.find("index 3 is out of range"), std::string::npos)
        << out.error().message;
  }
  {
    TestGraph t(13);
    t.Input("x", {4});
    t.Ints("s", {1}, {0});
    t.Ints("e", {1}, {4});
    t.Ints("a", {1}, {0});
    t.Ints("step", {1}, {0});
    t.Node("Slice", {"x", "s", "e", "a", "step"}, {"y"});
    t.Output("y");
    auto m = Model::LoadFromBytes(t.Bytes(), "slice.onnx");
    ASSERT_FALSE(m.ok());
    EXPECT_NE(m.error().message.find("step is 0"), std::string::npos) << m.error().message;
  }
  {
    TestGraph t(13);
    t.Input("x", {2, 3});
    t.Ints("pads", {4}, {0, -2, 0, -2});
    t.Node("Pad", {"x", "pads"}, {"y"});
    t.Output("y");
    auto m = Model::LoadFromBytes(t.Bytes(), "pad.onnx");
    ASSERT_FALSE(m.ok());
    EXPECT_NE(m.error().message.find("remove more than the 3 elements"), std::string::npos)
        << m.error().message;
  }
}

// Bounds far outside the data: reflection repeats (as numpy's does), Slice clamps even the
// extreme int64 values, and nothing reads out of range.
TEST(Runtime, PadAndSliceHandleExtremeBounds) {
  auto run = [](const std::string& bytes, std::vector<float> x) {
    auto m = Model::LoadFromBytes(bytes, "bounds.onnx");
    EXPECT_TRUE(m.ok()) << m.error().message;
    if (!m.ok()) return std::vector<float>{};
    auto out = m->Run({Tensor{DType::kFloat32, {static_cast<int64_t>(x.size())}, x.data()}});
    EXPECT_TRUE(out.ok()) << out.error().message;
    if (!out.ok()) return std::vector<float>{};
    const auto& t = (*out)[0];
    return std::vector<float>(t.as<float>(), t.as<float>() + NumElements(t.shape));
  };
  {
    TestGraph t(13);
    t.Input("x", {3});
    t.Ints("pads", {2}, {5, 5});
    auto* n = t.Node("Pad", {"x", "pads"}, {"y"});
    auto* mode = n->add_attribute();
    mode->set_name("mode");
    mode->set_type(onnx::AttributeProto::STRING);
    mode->set_s("reflect");
    t.Output("y");
    EXPECT_EQ(run(t.Bytes(), {1, 2, 3}),
              (std::vector<float>{2, 1, 2, 3, 2, 1, 2, 3, 2, 1, 2, 3, 2}));
  }
  const int64_t lo = std::numeric_limits<int64_t>::min(), hi = std::numeric_limits<int64_t>::max();
  for (auto [start, end, step, want] :
       {std::tuple{lo, hi, int64_t{1}, std::vector<float>{1, 2, 3, 4}},
        std::tuple{hi, lo, int64_t{-1}, std::vector<float>{4, 3, 2, 1}},
        std::tuple{hi, lo, -hi, std::vector<float>{4}},
        std::tuple{lo, hi, hi, std::vector<float>{1}},
        std::tuple{int64_t{-2}, int64_t{-100}, lo, std::vector<float>{3}},
        std::tuple{int64_t{3}, int64_t{1}, int64_t{1}, std::vector<float>{}}}) {
    TestGraph t(13);
    t.Input("x", {4});
    t.Ints("s", {1}, {start});
    t.Ints("e", {1}, {end});
    t.Ints("a", {1}, {0});
    t.Ints("step", {1}, {step});
    t.Node("Slice", {"x", "s", "e", "a", "step"}, {"y"});
    t.Output("y");
    EXPECT_EQ(run(t.Bytes(), {1, 2, 3, 4}), want) << start << ":" << end << ":" << step;
  }
}

TEST(Quantize, Int8ModelIsSmallerCloseToFp32AndOnnxRuntimeAgrees) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("edgeloop_quant_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string fp32 = (dir / "m.onnx").string(), int8 = (dir / "m-int8.onnx").string();
  ASSERT_TRUE(WriteFileAtomic(fp32, SmallConvNet()).ok());
  const auto calib = SmallConvNetCalibration();
  auto report = QuantizeModel(fp32, calib, int8);
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->quantized_layers, 2u);  // the Conv and the Gemm
  EXPECT_EQ(report->calibration_samples, 64u);
  // Weights shrink 4x; on this tiny net names and biases keep the file ratio lower.
  EXPECT_GT(static_cast<double>(report->fp32_bytes) / static_cast<double>(report->int8_bytes), 2.0);

  // The int8 graph is standard ONNX: QLinearConv, no fp32 weights left.
  auto q = Model::Load(int8);
  ASSERT_TRUE(q.ok()) << q.error().message;
  int qconv = 0;
  for (const auto& n : q->graph().nodes) {
    qconv += n.op_type == "QLinearConv";
    EXPECT_NE(n.op_type, "Conv");
    EXPECT_NE(n.op_type, "Gemm");
  }
  EXPECT_EQ(qconv, 2);

  auto x = Random(8 * 3 * 12 * 12, 77);
  auto want = RunNet(SmallConvNet(), Backend::kFast, x, 8);
  std::string bytes = *ReadFile(int8);
  auto ref = RunNet(bytes, Backend::kReference, x, 8);
  auto fast = RunNet(bytes, Backend::kFast, x, 8);
  double max_fp32 = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_NEAR(fast[i], ref[i], 1e-6) << "fast and reference int8 kernels differ at " << i;
    max_fp32 = std::max(max_fp32, static_cast<double>(std::fabs(fast[i] - want[i])));
  }
  EXPECT_LT(max_fp32, 0.1) << "int8 probabilities drift from fp32";

  // ONNX Runtime runs the same file and gives the same probabilities (up to a rounding step).
  auto ort = RunOnnxRuntime(int8, x, "8,3,12,12", "prob", dir);
  ASSERT_EQ(ort.size(), fast.size());
  double max_ort = 0;
  for (size_t i = 0; i < fast.size(); ++i)
    max_ort = std::max(max_ort, static_cast<double>(std::fabs(ort[i] - fast[i])));
  EXPECT_LT(max_ort, 0.02);
  std::printf("int8: max |int8 - fp32| = %.4f, max |onnxruntime int8 - edgeloop int8| = %.2g\n",
              max_fp32, max_ort);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace edgeloop::runtime
