// The sample store and the server against both metadata databases: embedded SQLite and a
// real PostgreSQL started by the test (pg_ctl in a temporary folder).
#include <gtest/gtest.h>

#include "cloud/database.hpp"
#include "cloud/migrations.hpp"
#include "cloud/sample_store.hpp"
#include "database_param.hpp"

namespace edgeloop::testing {
namespace {

using Json = nlohmann::json;

using StoreTest = DatabaseTest;
using MigrationTest = DatabaseTest;

// A migrated database: what the server opens.
Result<std::unique_ptr<cloud::Database>> OpenMigrated(const std::string& url) {
  auto db = cloud::OpenDatabase(url);
  if (!db.ok()) return db.error();
  auto version = cloud::Migrate(**db);
  if (!version.ok()) return version.error();
  return db;
}

std::vector<const wire::Sample*> Pointers(const wire::SampleBatch& b) {
  std::vector<const wire::Sample*> out;
  for (const auto& s : b.samples()) out.push_back(&s);
  return out;
}

TEST_P(StoreTest, AppendIsIdempotentAndReadsBackWithLateLabels) {
  auto db = OpenMigrated(DatabaseUrl());
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

TEST_P(StoreTest, LargeMixedBatchesStoreEachSampleOnceAndInPlace) {
  auto db = OpenMigrated(DatabaseUrl());
  ASSERT_TRUE(db.ok()) << db.error().message;
  auto store = cloud::SampleStore::Open(**db, dir_.path() + "/samples");
  ASSERT_TRUE(store.ok());
  // 700 of cam-1 stored; then 1,300 of cam-1 (600 new, 700 stored), the same 300 of cam-2
  // twice within one batch, and 50 of cam-3: larger than any one statement's chunk.
  ASSERT_EQ((*store)->Append(Pointers(MakeBatch("cam-1", 0, 700)))->accepted, 700u);
  wire::SampleBatch mixed = MakeBatch("cam-1", 0, 1300);
  for (const auto& b :
       {MakeBatch("cam-2", 0, 300), MakeBatch("cam-2", 0, 300), MakeBatch("cam-3", 10, 50)})
    for (const auto& s : b.samples()) *mixed.add_samples() = s;
  auto r = (*store)->Append(Pointers(mixed));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->accepted, 600u + 300u + 50u);
  EXPECT_EQ(r->duplicates, 700u + 300u);
  auto by_device = (*store)->Count("device");
  ASSERT_TRUE(by_device.ok());
  ASSERT_EQ(by_device->size(), 3u);
  EXPECT_EQ(by_device->at(0).count, 1300u);
  EXPECT_EQ(by_device->at(1).count, 300u);
  EXPECT_EQ(by_device->at(2).count, 50u);
  // Every index row points at its own record.
  for (auto [device, seq] : {std::pair<const char*, uint64_t>{"cam-1", 0},
                             {"cam-1", 699},
                             {"cam-1", 700},
                             {"cam-1", 1299},
                             {"cam-2", 299},
                             {"cam-3", 59}}) {
    auto sample = (*store)->Read(device, seq);
    ASSERT_TRUE(sample.ok()) << device << "/" << seq << ": " << sample.error().message;
    EXPECT_EQ(sample->device_id(), device);
    EXPECT_EQ(sample->sequence(), seq);
  }
}

TEST_P(StoreTest, CorruptSegmentRecordIsDetected) {
  auto db = OpenMigrated(DatabaseUrl());
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

TEST_P(MigrationTest, AFreshDatabaseGetsEveryMigrationOnceInOrder) {
  auto db = cloud::OpenDatabase(DatabaseUrl());
  ASSERT_TRUE(db.ok()) << db.error().message;
  const int64_t newest = cloud::SchemaMigrations().back().version;
  auto v = cloud::Migrate(**db);
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(*v, newest);
  auto again = cloud::Migrate(**db);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, newest);
  auto applied = cloud::AppliedMigrations(**db);
  ASSERT_TRUE(applied.ok());
  std::vector<int64_t> want;
  for (const auto& m : cloud::SchemaMigrations()) want.push_back(m.version);
  EXPECT_EQ(*applied, want) << "each migration is recorded once";
  // The schema is usable: the column migration 2 adds is there.
  EXPECT_TRUE((*db)
                  ->Exec("INSERT INTO telemetry_history (device_id, ts_ms, model_version, "
                         "accuracy, latency_p50_ms, samples, bytes_up, bytes_down, drift_score, "
                         "labelled) VALUES ('d', 1, 'm', '', 0, 0, 0, 0, 0, 5)")
                  .ok());
}

TEST_P(MigrationTest, ADatabaseFromBeforeMigrationsIsAdopted) {
  auto db = cloud::OpenDatabase(DatabaseUrl());
  ASSERT_TRUE(db.ok());
  // The tables as the server created them before numbered migrations, with a row, and with
  // the later column already added.
  ASSERT_TRUE((*db)
                  ->Exec("CREATE TABLE devices (device_id TEXT PRIMARY KEY, grp TEXT NOT NULL, "
                         "serial TEXT NOT NULL, revoked INTEGER NOT NULL, enrolled_ms BIGINT NOT "
                         "NULL)")
                  .ok());
  ASSERT_TRUE((*db)->Exec("INSERT INTO devices VALUES ('cam-1', 'line', '7', 0, 1)").ok());
  ASSERT_TRUE((*db)
                  ->Exec("CREATE TABLE telemetry_history (device_id TEXT NOT NULL, ts_ms BIGINT "
                         "NOT NULL, model_version TEXT NOT NULL, accuracy TEXT NOT NULL, "
                         "latency_p50_ms DOUBLE PRECISION NOT NULL, samples BIGINT NOT NULL, "
                         "bytes_up BIGINT NOT NULL, bytes_down BIGINT NOT NULL, drift_score "
                         "DOUBLE PRECISION NOT NULL, labelled BIGINT NOT NULL DEFAULT 0)")
                  .ok());
  auto v = cloud::Migrate(**db);
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(*v, cloud::SchemaMigrations().back().version);
  auto rows = (*db)->Query("SELECT grp FROM devices WHERE device_id = 'cam-1'");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ(rows->at(0).at(0), "line");
}

TEST_P(MigrationTest, ADatabaseNewerThanTheServerIsRefused) {
  auto db = OpenMigrated(DatabaseUrl());
  ASSERT_TRUE(db.ok());
  const int64_t future = cloud::SchemaMigrations().back().version + 1;
  ASSERT_TRUE((*db)
                  ->Exec("INSERT INTO schema_migrations (version, name, applied_ms) VALUES (?, "
                         "'from a newer server', 0)",
                         {std::to_string(future)})
                  .ok());
  auto v = cloud::Migrate(**db);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().code, Errc::kMismatch);
  EXPECT_NE(v.error().message.find("schema version " + std::to_string(future)), std::string::npos)
      << v.error().message;
}

EDGELOOP_BOTH_DATABASES(StoreTest);
EDGELOOP_BOTH_DATABASES(MigrationTest);

}  // namespace
}  // namespace edgeloop::testing
