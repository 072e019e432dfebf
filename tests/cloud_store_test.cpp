// The sample store and the server against both metadata databases: embedded SQLite and a
// real PostgreSQL started by the test (pg_ctl in a temporary folder).
#include <gtest/gtest.h>

#include "cloud/database.hpp"
#include "cloud/sample_store.hpp"
#include "cloud_test_util.hpp"
#include "postgres_fixture.hpp"

namespace edgeloop::testing {
namespace {

using Json = nlohmann::json;

class StoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  // A fresh database: a new SQLite file, or an emptied PostgreSQL schema.
  std::string DatabaseUrl() {
    if (GetParam() == "sqlite") return "sqlite:" + dir_.path() + "/meta.db";
    return FreshPostgresUrl();
  }
  TempDir dir_;
};

std::vector<const wire::Sample*> Pointers(const wire::SampleBatch& b) {
  std::vector<const wire::Sample*> out;
  for (const auto& s : b.samples()) out.push_back(&s);
  return out;
}

TEST_P(StoreTest, AppendIsIdempotentAndReadsBackWithLateLabels) {
  auto db = cloud::OpenDatabase(DatabaseUrl());
  ASSERT_TRUE(db.ok()) << db.error().message;
  EXPECT_EQ((*db)->Dialect(), GetParam());
  auto store = cloud::SampleStore::Open(**db, dir_.path() + "/samples");
  ASSERT_TRUE(store.ok()) << store.error().message;
  auto batch = MakeBatch("cam-1", 0, 6);
  (*batch.mutable_samples(1)->mutable_metadata())["lens"] = "blur";
  auto first = (*store)->Append(Pointers(batch));
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(first->accepted, 6u);
  auto again = (*store)->Append(Pointers(MakeBatch("cam-1", 3, 6)));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->accepted, 3u);
  EXPECT_EQ(again->duplicates, 3u);
  ASSERT_TRUE((*store)->SetLabel("cam-1", 1, 4, wire::LABEL_SOURCE_HUMAN).ok());
  EXPECT_EQ((*store)->SetLabel("cam-1", 99, 4, 1).error().code, Errc::kNotFound);
  auto sample = (*store)->Read("cam-1", 1);
  ASSERT_TRUE(sample.ok()) << sample.error().message;
  EXPECT_TRUE(sample->has_label());
  EXPECT_EQ(sample->label(), 4);
  EXPECT_EQ(sample->metadata().at("lens"), "blur");
  EXPECT_EQ(sample->tensor().values_size(), 16);
  auto by_label = (*store)->Count("label");
  ASSERT_TRUE(by_label.ok());
  ASSERT_EQ(by_label->size(), 2u);
  EXPECT_EQ(by_label->at(0).key, "-1");
  EXPECT_EQ(by_label->at(0).count, 8u);
  EXPECT_EQ(by_label->at(1).key, "4");
  EXPECT_FALSE((*store)->Count("colour").ok());
}

TEST_P(StoreTest, CorruptSegmentRecordIsDetected) {
  auto db = cloud::OpenDatabase(DatabaseUrl());
  ASSERT_TRUE(db.ok());
  auto store = cloud::SampleStore::Open(**db, dir_.path() + "/samples");
  ASSERT_TRUE((*store)->Append(Pointers(MakeBatch("cam-1", 0, 1))).ok());
  std::string seg = dir_.path() + "/samples/seg-000001.log";
  auto bytes = *ReadFile(seg);
  bytes[bytes.size() - 3] ^= 0x55;
  ASSERT_TRUE(WriteFileAtomic(seg, bytes).ok());
  EXPECT_EQ((*store)->Read("cam-1", 0).error().code, Errc::kFormat);
}

TEST_P(StoreTest, ServerIngestsOverMutualTls) {
  cloud::ServerOptions options;
  options.db_url = DatabaseUrl();
  CloudFixture f(options);
  auto dev = f.Enroll("cam-1");
  auto client = f.Client(&dev);
  ASSERT_EQ(PostBatch(*client, MakeBatch("cam-1", 0, 8))->status, 200);
  auto retry = PostBatch(*client, MakeBatch("cam-1", 0, 8));
  EXPECT_EQ(Json::parse(retry->body)["duplicates"], 8);
  auto counts = f.Client()->Get("/v1/samples/counts", f.Bearer(f.server().admin_token()));
  EXPECT_EQ(Json::parse(counts->body)["total"], 8);
}

INSTANTIATE_TEST_SUITE_P(Databases, StoreTest, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace edgeloop::testing
