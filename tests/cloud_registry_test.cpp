// The model registry and dataset snapshots over the real HTTPS API, on SQLite and on a real
// PostgreSQL: version numbering and immutability, one production version, stage history,
// model cards, scopes, bad input; snapshot determinism, filters, exports read back by
// src/data, and training's direct `snapshot:` reads from the sample segments.
#include <gtest/gtest.h>

#include <set>

#include "data/dataset.hpp"
#include "database_param.hpp"

namespace edgeloop::testing {
namespace {

using Json = nlohmann::json;

class CloudApiTest : public DatabaseTest {
 protected:
  void SetUp() override {
    cloud::ServerOptions options;
    options.db_url = DatabaseUrl();
    f_ = std::make_unique<CloudFixture>(options);
    admin_ = f_->server().admin_token();
  }

  httplib::Result Post(const std::string& path, const std::string& body,
                       const std::string& token = "") {
    return f_->Post(path, body, token.empty() ? admin_ : token);
  }
  Json PostOk(const std::string& path, const Json& body, int want = 200) {
    return f_->PostOk(path, body, want);
  }
  httplib::Result Get(const std::string& path, const std::string& token = "") {
    return f_->Get(path, token.empty() ? admin_ : token);
  }
  Json GetOk(const std::string& path) { return f_->GetOk(path); }

  std::string Upload(const std::string& bytes) {
    auto res =
        f_->Client()->Post("/v1/artifacts", f_->Bearer(admin_), bytes, "application/octet-stream");
    EXPECT_TRUE(res && res->status == 200);
    return Json::parse(res->body)["sha256"];
  }
  std::string Token(const std::string& scope) {
    return PostOk("/v1/tokens", {{"scope", scope}})["token"];
  }
  // The status and that the body is the JSON error shape.
  int ErrorStatus(const httplib::Result& res) {
    if (!res) return -1;
    Json body = Json::parse(res->body, nullptr, false);
    EXPECT_TRUE(body.is_object() && body["error"]["status"] == res->status &&
                body["error"]["message"].is_string())
        << res->body;
    return res->status;
  }

  // count labelled 28x28 samples from a device: label = seq % 3, source human for even seq,
  // device for odd; timestamps 1000 + seq. Pixel values are k/255 so IDX keeps them exactly.
  void Ingest(const DeviceCredentials& dev, int count) {
    wire::SampleBatch batch;
    for (int i = 0; i < count; ++i) {
      auto* s = batch.add_samples();
      s->set_device_id(dev.device_id);
      s->set_sequence(static_cast<uint64_t>(i));
      s->set_timestamp_ms(1000 + i);
      s->mutable_tensor()->add_shape(784);
      for (int k = 0; k < 784; ++k)
        s->mutable_tensor()->add_values(
            static_cast<float>((k + 7 * i + dev.device_id.size()) % 256) / 255.0f);
      s->set_has_label(true);
      s->set_label(i % 3);
      s->set_label_source(i % 2 ? wire::LABEL_SOURCE_DEVICE : wire::LABEL_SOURCE_HUMAN);
    }
    auto res = PostBatch(*f_->Client(&dev), batch);
    ASSERT_TRUE(res && res->status == 200);
  }

  std::string DataDir() const { return f_->dir() + "/data"; }

  std::unique_ptr<CloudFixture> f_;
  std::string admin_;
};

using RegistryTest = CloudApiTest;
using SnapshotTest = CloudApiTest;

TEST_P(RegistryTest, VersionsCountUpAndStayImmutable) {
  std::string fp32 = Upload("onnx fp32 bytes"), int8 = Upload("onnx int8 bytes");
  Json v1 = PostOk("/v1/models/clf/versions",
                   {{"artifacts", {{"fp32", fp32}, {"int8", int8}}}, {"code_version", "abc"}}, 201);
  EXPECT_EQ(v1["version"], 1);
  EXPECT_EQ(v1["stage"], "candidate");
  Json v2 = PostOk("/v1/models/clf/versions",
                   {{"artifacts", {{"fp32", fp32}}}, {"parent", "clf:1"}}, 201);
  EXPECT_EQ(v2["version"], 2);
  EXPECT_EQ(PostOk("/v1/models/other/versions", {{"artifacts", {{"fp32", fp32}}}}, 201)["version"],
            1);
  auto put = f_->Client()->Put("/v1/models/clf/versions/1", f_->Bearer(admin_),
                               Json{{"artifacts", {{"fp32", int8}}}}.dump(), "application/json");
  EXPECT_EQ(ErrorStatus(put), 405);
  Json again = GetOk("/v1/models/clf/versions/1");
  EXPECT_EQ(again["artifacts"], v1["artifacts"]);
  EXPECT_EQ(again["code_version"], "abc");
  EXPECT_EQ(GetOk("/v1/models/clf/versions/latest")["version"], 2);
  EXPECT_EQ(GetOk("/v1/models/clf")["versions"].size(), 2u);
  Json models = GetOk("/v1/models")["models"];
  ASSERT_EQ(models.size(), 2u);
  EXPECT_EQ(models[0]["name"], "clf");
  EXPECT_EQ(models[0]["latest_version"], 2);
}

TEST_P(RegistryTest, OneProductionVersionAndTheStageHistoryIsKept) {
  std::string sha = Upload("model");
  for (int i = 0; i < 3; ++i)
    PostOk("/v1/models/clf/versions", {{"artifacts", {{"fp32", sha}}}}, 201);
  PostOk("/v1/models/clf/versions/1/stage", {{"stage", "production"}});
  PostOk("/v1/models/clf/versions/2/stage", {{"stage", "staging"}});
  Json promoted = PostOk("/v1/models/clf/versions/2/stage", {{"stage", "production"}});
  EXPECT_EQ(promoted["stage"], "production");
  EXPECT_EQ(GetOk("/v1/models/clf/versions/1")["stage"], "archived");
  EXPECT_EQ(GetOk("/v1/models/clf/versions/production")["version"], 2);
  EXPECT_EQ(GetOk("/v1/models/clf/versions/3")["stage"], "candidate");
  int production = 0;
  Json model = GetOk("/v1/models/clf");
  for (const auto& v : model["versions"]) production += v["stage"] == "production";
  EXPECT_EQ(production, 1);
  Json history = GetOk("/v1/models/clf/history")["history"];
  std::vector<std::string> moves;
  for (const auto& h : history)
    moves.push_back(std::to_string(h["version"].get<int>()) + ":" + h["from"].get<std::string>() +
                    ">" + h["to"].get<std::string>());
  EXPECT_EQ(moves, (std::vector<std::string>{"1:>candidate", "2:>candidate", "3:>candidate",
                                             "1:candidate>production", "2:candidate>staging",
                                             "1:production>archived", "2:staging>production"}));
}

TEST_P(RegistryTest, ModelCardAsJsonAndMarkdownCarriesLineageAndMetrics) {
  Ingest(f_->Enroll("cam-1"), 10);
  Json snap = PostOk("/v1/datasets/snapshots", {{"split", {{"train", 0.8}, {"test", 0.2}}}}, 201);
  std::string sha = Upload("model");
  PostOk("/v1/models/clf/versions", {{"artifacts", {{"fp32", sha}}}}, 201);
  PostOk("/v1/models/clf/versions",
         {{"artifacts", {{"fp32", sha}}},
          {"parent", "clf:1"},
          {"dataset_snapshot", snap["id"]},
          {"hyperparameters", {{"lr", 0.01}, {"epochs", 3}}},
          {"code_version", "0.3.0+abc"},
          {"metrics", {{"accuracy", 0.91}}}},
         201);
  Json card = GetOk("/v1/models/clf/versions/2/card");
  EXPECT_EQ(card["lineage"]["parent"], "clf:1");
  EXPECT_EQ(card["lineage"]["dataset_snapshot"]["id"], snap["id"]);
  EXPECT_EQ(card["lineage"]["dataset_snapshot"]["samples"], 10);
  EXPECT_EQ(card["lineage"]["hyperparameters"]["epochs"], 3);
  EXPECT_EQ(card["metrics"]["accuracy"], 0.91);
  EXPECT_EQ(card["artifacts"]["fp32"]["length"], 5);
  auto md = Get("/v1/models/clf/versions/2/card?format=md");
  ASSERT_TRUE(md && md->status == 200);
  EXPECT_NE(md->body.find("# Model card: clf version 2"), std::string::npos) << md->body;
  EXPECT_NE(md->body.find("| accuracy | 0.91 |"), std::string::npos) << md->body;
  EXPECT_NE(md->body.find("- Parent: clf:1"), std::string::npos) << md->body;
  EXPECT_NE(md->body.find(snap["id"].get<std::string>() + " (10 samples; train 8, val 0, test 2)"),
            std::string::npos)
      << md->body;
}

TEST_P(RegistryTest, ScopesAreEnforced) {
  std::string sha = Upload("model");
  std::string read = Token("read"), write = Token("write");
  std::string body = Json{{"artifacts", {{"fp32", sha}}}}.dump();
  EXPECT_EQ(ErrorStatus(Post("/v1/models/clf/versions", body, read)), 403);
  auto created = Post("/v1/models/clf/versions", body, write);
  ASSERT_TRUE(created);
  EXPECT_EQ(created->status, 201);
  std::string stage = Json{{"stage", "production"}}.dump();
  EXPECT_EQ(ErrorStatus(Post("/v1/models/clf/versions/1/stage", stage, read)), 403);
  EXPECT_EQ(ErrorStatus(Post("/v1/models/clf/versions/1/stage", stage, write)), 403);
  EXPECT_EQ(ErrorStatus(Post("/v1/datasets/snapshots", "{}", read)), 403);
  auto got = Get("/v1/models/clf/versions/1", read);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, 200);
  EXPECT_EQ(ErrorStatus(f_->Client()->Get("/v1/models")), 401);
}

TEST_P(RegistryTest, BadInputIsA4xxWithAJsonError) {
  std::string sha = Upload("model");
  EXPECT_EQ(ErrorStatus(Post("/v1/models/clf/versions", "{not json")), 400);
  EXPECT_EQ(ErrorStatus(Post("/v1/models/clf/versions", "{}")), 400);
  EXPECT_EQ(ErrorStatus(Post("/v1/models/clf/versions",
                             Json{{"artifacts", {{"fp32", std::string(64, 'a')}}}}.dump())),
            400);
  EXPECT_EQ(ErrorStatus(Post("/v1/models/clf/versions",
                             Json{{"artifacts", {{"fp32", sha}}}, {"parent", "nope:1"}}.dump())),
            400);
  EXPECT_EQ(ErrorStatus(Get("/v1/models/nope")), 404);
  EXPECT_EQ(ErrorStatus(Get("/v1/models/nope/versions/1")), 404);
  EXPECT_EQ(ErrorStatus(Get("/v1/models/nope/versions/1/card")), 404);
  PostOk("/v1/models/clf/versions", {{"artifacts", {{"fp32", sha}}}}, 201);
  EXPECT_EQ(ErrorStatus(Get("/v1/models/clf/versions/7")), 404);
  EXPECT_EQ(ErrorStatus(Get("/v1/models/clf/versions/1/card?format=pdf")), 400);
  EXPECT_EQ(ErrorStatus(Post("/v1/models/clf/versions/1/stage", R"({"stage":"gold"})")), 400);
  EXPECT_EQ(ErrorStatus(Post("/v1/models/clf/versions/9/stage", R"({"stage":"staging"})")), 404);
  // The server is unharmed.
  EXPECT_EQ(GetOk("/v1/models/clf/versions/1")["stage"], "candidate");
}

Json SplitSpec(uint64_t seed) {
  return {{"split", {{"train", 0.6}, {"val", 0.2}, {"test", 0.2}, {"seed", seed}}}};
}

// device/sequence -> split, from the manifest.
std::map<std::string, std::string> Assignment(const std::string& dir) {
  Json m = Json::parse(*ReadFile(dir + "/manifest.json"));
  std::map<std::string, std::string> out;
  for (const auto& r : m["samples"])
    out[r[0].get<std::string>() + "/" + std::to_string(r[1].get<int>())] = r[3];
  return out;
}

TEST_P(SnapshotTest, SameSpecGivesTheSameIdAndAnotherSeedAnotherSplit) {
  Ingest(f_->Enroll("cam-1"), 20);
  Ingest(f_->Enroll("cam-2"), 20);
  Json a = PostOk("/v1/datasets/snapshots", SplitSpec(1), 201);
  Json b = PostOk("/v1/datasets/snapshots", SplitSpec(1), 200);
  EXPECT_EQ(a["id"], b["id"]);
  EXPECT_EQ(b["created"], false);
  EXPECT_EQ(a["splits"], (Json{{"train", 24}, {"val", 8}, {"test", 8}}));
  Json c = PostOk("/v1/datasets/snapshots", SplitSpec(2), 201);
  EXPECT_NE(a["id"], c["id"]);
  auto split_a = Assignment(DataDir() + "/datasets/" + a["id"].get<std::string>());
  auto split_c = Assignment(DataDir() + "/datasets/" + c["id"].get<std::string>());
  ASSERT_EQ(split_a.size(), 40u);
  EXPECT_NE(split_a, split_c);
  EXPECT_EQ(GetOk("/v1/datasets/snapshots")["snapshots"].size(), 2u);
  Json shown = GetOk("/v1/datasets/snapshots/" + a["id"].get<std::string>());
  EXPECT_EQ(shown["devices"]["cam-2"], 20);
  EXPECT_EQ(shown["labels"]["0"], 14);  // seq % 3 == 0 for 7 of 20, per device
}

TEST_P(SnapshotTest, FiltersSelectExactlyTheMatchingSamples) {
  Ingest(f_->Enroll("cam-1", "line-a"), 12);
  Ingest(f_->Enroll("cam-2", "line-b"), 12);
  Ingest(f_->Enroll("cam-3", "line-b"), 12);
  // Three unlabelled samples in group line-a.
  {
    auto dev = f_->Enroll("cam-4", "line-a");
    auto batch = MakeBatch("cam-4", 0, 3, 784);
    ASSERT_EQ(PostBatch(*f_->Client(&dev), batch)->status, 200);
  }
  auto samples = [&](const Json& spec) {
    auto res = Post("/v1/datasets/snapshots", spec.dump());
    EXPECT_TRUE(res && (res->status == 200 || res->status == 201)) << (res ? res->body : "");
    return res ? Json::parse(res->body)["samples"].get<int>() : -1;
  };
  EXPECT_EQ(samples(Json::object()), 39);
  EXPECT_EQ(samples({{"devices", {"cam-1", "cam-3"}}}), 24);
  EXPECT_EQ(samples({{"groups", {"line-a"}}}), 15);
  EXPECT_EQ(samples({{"groups", {"line-a"}}, {"labelled_only", true}}), 12);
  EXPECT_EQ(samples({{"devices", {"cam-1"}}, {"from_ms", 1002}, {"to_ms", 1006}}), 4);
  EXPECT_EQ(samples({{"devices", {"cam-2"}}, {"labels", {1, 2}}}), 8);
  EXPECT_EQ(samples({{"devices", {"cam-2"}}, {"label_sources", {"human"}}}), 6);
  Json one = PostOk("/v1/datasets/snapshots",
                    {{"devices", {"cam-2"}}, {"labels", {2}}, {"label_sources", {"device"}}}, 201);
  // seq in 0..11 with seq % 3 == 2 and seq odd: 5 and 11.
  EXPECT_EQ(one["samples"], 2);
  auto rows = Assignment(DataDir() + "/datasets/" + one["id"].get<std::string>());
  EXPECT_EQ(rows.size(), 2u);
  EXPECT_TRUE(rows.count("cam-2/5") && rows.count("cam-2/11"));
}

TEST_P(SnapshotTest, ExportsReadBackBySrcDataToTheSameValues) {
  Ingest(f_->Enroll("cam-1"), 15);
  Json snap = PostOk("/v1/datasets/snapshots", SplitSpec(7), 201);
  const std::string id = snap["id"];
  const std::string dir = DataDir() + "/datasets/" + id;
  auto direct = data::LoadDataset("snapshot:" + dir + ":train");
  ASSERT_TRUE(direct.ok()) << direct.error().message;
  EXPECT_EQ(direct->size(), 9u);
  EXPECT_EQ(direct->sample_shape, (std::vector<int64_t>{1, 28, 28}));
  auto all = data::LoadDataset("snapshot:" + dir);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 15u);
  // The first manifest row is cam-1/0: its pixels are (k + 5) % 256 / 255.
  EXPECT_FLOAT_EQ(all->x[1], 6.0f / 255.0f);
  EXPECT_EQ(all->y[1], 1);

  const std::string base = "/v1/datasets/snapshots/" + id + "/export?split=train&format=";
  auto csv = Get(base + "csv");
  auto images = Get(base + "idx&part=images");
  auto labels = Get(base + "idx&part=labels");
  ASSERT_TRUE(csv && images && labels);
  ASSERT_EQ(csv->status, 200) << csv->body;
  ASSERT_EQ(images->status, 200);
  ASSERT_TRUE(WriteFileAtomic(dir_.path() + "/t.csv", csv->body).ok());
  ASSERT_TRUE(WriteFileAtomic(dir_.path() + "/t-images-idx3-ubyte", images->body).ok());
  ASSERT_TRUE(WriteFileAtomic(dir_.path() + "/t-labels-idx1-ubyte", labels->body).ok());
  auto from_csv = data::LoadCsv(dir_.path() + "/t.csv");
  auto from_idx = data::LoadDataset("idx:" + dir_.path() + "/t");
  ASSERT_TRUE(from_csv.ok()) << from_csv.error().message;
  ASSERT_TRUE(from_idx.ok()) << from_idx.error().message;
  EXPECT_EQ(from_csv->x, direct->x);
  EXPECT_EQ(from_csv->y, direct->y);
  EXPECT_EQ(from_idx->x, direct->x);
  EXPECT_EQ(from_idx->y, direct->y);
  EXPECT_EQ(ErrorStatus(Get(base + "parquet")), 400);
}

TEST_P(SnapshotTest, SnapshotSpecDetectsACorruptSegment) {
  Ingest(f_->Enroll("cam-1"), 4);
  Json snap = PostOk("/v1/datasets/snapshots", Json::object(), 201);
  const std::string dir = DataDir() + "/datasets/" + snap["id"].get<std::string>();
  ASSERT_TRUE(data::LoadDataset("snapshot:" + dir).ok());
  std::string seg = DataDir() + "/samples/seg-000001.log";
  auto bytes = *ReadFile(seg);
  bytes[bytes.size() - 40] ^= 0x55;
  ASSERT_TRUE(WriteFileAtomic(seg, bytes).ok());
  auto broken = data::LoadDataset("snapshot:" + dir);
  ASSERT_FALSE(broken.ok());
  EXPECT_EQ(broken.error().code, Errc::kFormat);
  EXPECT_NE(broken.error().message.find("cam-1/3"), std::string::npos) << broken.error().message;
}

TEST_P(SnapshotTest, BadSpecsAreRefusedWithJsonErrors) {
  Ingest(f_->Enroll("cam-1"), 4);
  EXPECT_EQ(ErrorStatus(Post("/v1/datasets/snapshots", "[1,2")), 400);
  EXPECT_EQ(ErrorStatus(Post("/v1/datasets/snapshots", R"({"devises":["cam-1"]})")), 400);
  EXPECT_EQ(ErrorStatus(Post("/v1/datasets/snapshots", R"({"split":{"train":0.5}})")), 400);
  EXPECT_EQ(ErrorStatus(Post("/v1/datasets/snapshots", R"({"labels":["a"]})")), 400);
  EXPECT_EQ(ErrorStatus(Post("/v1/datasets/snapshots", R"({"devices":["cam-9"]})")), 400);
  EXPECT_EQ(ErrorStatus(Get("/v1/datasets/snapshots/" + std::string(64, 'f'))), 404);
  EXPECT_EQ(GetOk("/v1/datasets/snapshots")["snapshots"].size(), 0u);
}

EDGELOOP_BOTH_DATABASES(RegistryTest);
EDGELOOP_BOTH_DATABASES(SnapshotTest);

}  // namespace
}  // namespace edgeloop::testing
