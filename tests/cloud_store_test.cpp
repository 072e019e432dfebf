// The sample store and the server against both metadata databases: embedded SQLite and a
// real PostgreSQL started by the test (pg_ctl in a temporary folder).
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <set>
#include <thread>

#include "cloud/database.hpp"
#include "cloud/fleet_store.hpp"
#include "cloud/migrations.hpp"
#include "cloud/pipeline_store.hpp"
#include "cloud/registry_store.hpp"
#include "cloud/sample_store.hpp"
#include "database_param.hpp"

namespace edgeloop::testing {
namespace {

using Json = nlohmann::json;

using StoreTest = DatabaseTest;
using MigrationTest = DatabaseTest;
using DomainStoreTest = DatabaseTest;

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

// A batch whose every sample names itself in its metadata, so a read-back that lands on
// another sample's bytes shows.
wire::SampleBatch MakeTaggedBatch(const std::string& device, uint64_t first_seq, int count) {
  wire::SampleBatch b = MakeBatch(device, first_seq, count);
  for (auto& s : *b.mutable_samples())
    (*s.mutable_metadata())["at"] = device + "/" + std::to_string(s.sequence());
  return b;
}

// Two servers on one database and one data folder: each store appends to segments of its
// own, so every index row points at its own record. Some batches go to both stores (a device
// retrying on the other server); each sample is stored once.
TEST_P(StoreTest, TwoStoresOnOneDatabaseAndFolderKeepEverySampleInPlace) {
  const std::string url = DatabaseUrl();
  auto db_a = OpenMigrated(url);
  ASSERT_TRUE(db_a.ok()) << db_a.error().message;
  auto db_b = cloud::OpenDatabase(url);  // a second connection, as another process has
  ASSERT_TRUE(db_b.ok()) << db_b.error().message;
  const std::string dir = dir_.path() + "/samples";
  // Small segments, so both stores start new ones while the other appends.
  cloud::SampleStoreOptions small;
  small.segment_bytes = 2000;
  auto a = cloud::SampleStore::Open(**db_a, dir, small);
  auto b = cloud::SampleStore::Open(**db_b, dir, small);
  ASSERT_TRUE(a.ok() && b.ok());
  constexpr int kDevices = 12, kBatches = 10, kPerBatch = 7;
  std::atomic<uint64_t> accepted{0}, duplicates{0};
  auto run = [&](cloud::SampleStore& store, int parity) {
    for (int k = 0; k < kBatches; ++k)
      for (int d = 0; d < kDevices; ++d) {
        // Even devices write to store a, odd ones to b; every third batch goes to both.
        if (d % 2 != parity && k % 3 != 0) continue;
        auto batch = MakeTaggedBatch("dev-" + std::to_string(d), k * kPerBatch, kPerBatch);
        auto r = store.Append(Pointers(batch));
        ASSERT_TRUE(r.ok()) << r.error().message;
        accepted += r->accepted;
        duplicates += r->duplicates;
      }
  };
  std::thread other([&] { run(**b, 1); });
  run(**a, 0);
  other.join();
  const uint64_t total = kDevices * kBatches * kPerBatch;
  EXPECT_EQ(accepted.load(), total);
  EXPECT_EQ(duplicates.load(), static_cast<uint64_t>(kDevices * 4 * kPerBatch));  // k = 0,3,6,9
  auto counts = (*a)->Count("device");
  ASSERT_TRUE(counts.ok());
  ASSERT_EQ(counts->size(), static_cast<size_t>(kDevices));
  for (const auto& c : *counts) EXPECT_EQ(c.count, uint64_t{kBatches * kPerBatch}) << c.key;
  for (int d = 0; d < kDevices; ++d)
    for (uint64_t seq = 0; seq < kBatches * kPerBatch; ++seq) {
      const std::string device = "dev-" + std::to_string(d);
      for (cloud::SampleStore* store : {a->get(), b->get()}) {
        auto sample = store->Read(device, seq);
        ASSERT_TRUE(sample.ok()) << device << "/" << seq << ": " << sample.error().message;
        EXPECT_EQ(sample->metadata().at("at"), device + "/" + std::to_string(seq));
      }
    }
  // Each segment has one owner: both stores wrote into many segments, none shared.
  auto owners = (*db_a)->Query("SELECT COUNT(DISTINCT owner), COUNT(*) FROM sample_segments");
  ASSERT_TRUE(owners.ok());
  EXPECT_EQ(owners->at(0).at(0), "2");
  auto segments = cloud::ColumnInt64(owners->at(0).at(1), "segments");
  ASSERT_TRUE(segments.ok());
  EXPECT_GT(*segments, 10);
}

// A store skips the dedupe query for a device's samples above the highest it indexed itself;
// when another store indexed them meanwhile (a device retrying on another replica), the
// index still keeps the first copy and the batch counts them as duplicates.
TEST_P(StoreTest, SamplesAnotherStoreIndexedAboveThisStoresNewestAreDuplicates) {
  const std::string url = DatabaseUrl();
  auto db_a = OpenMigrated(url);
  ASSERT_TRUE(db_a.ok()) << db_a.error().message;
  auto db_b = cloud::OpenDatabase(url);
  ASSERT_TRUE(db_b.ok()) << db_b.error().message;
  const std::string dir = dir_.path() + "/samples";
  auto a = cloud::SampleStore::Open(**db_a, dir);
  auto b = cloud::SampleStore::Open(**db_b, dir);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ((*b)->Append(Pointers(MakeTaggedBatch("cam-1", 0, 10)))->accepted, 10u);
  ASSERT_EQ((*a)->Append(Pointers(MakeTaggedBatch("cam-1", 10, 10)))->accepted, 10u);
  // b knows cam-1 up to 9 only; 10..24 overlap a's 10..19.
  auto r = (*b)->Append(Pointers(MakeTaggedBatch("cam-1", 10, 15)));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->accepted, 5u);
  EXPECT_EQ(r->duplicates, 10u);
  // And the same batch again on b is all duplicates, found by the query this time.
  r = (*b)->Append(Pointers(MakeTaggedBatch("cam-1", 10, 15)));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->accepted, 0u);
  EXPECT_EQ(r->duplicates, 15u);
  auto counts = (*a)->Count("device");
  ASSERT_TRUE(counts.ok());
  ASSERT_EQ(counts->size(), 1u);
  EXPECT_EQ(counts->at(0).count, 25u);
  for (uint64_t seq : {0u, 9u, 10u, 19u, 20u, 24u})
    for (cloud::SampleStore* store : {a->get(), b->get()}) {
      auto sample = store->Read("cam-1", seq);
      ASSERT_TRUE(sample.ok()) << seq << ": " << sample.error().message;
      EXPECT_EQ(sample->metadata().at("at"), "cam-1/" + std::to_string(seq));
    }
}

// A data folder and database from before segments were numbered by the database: migration 5
// records the segments the index names, and a new store neither reuses them nor an unindexed
// file it finds; old and new samples read back.
TEST_P(StoreTest, SegmentsFromBeforeMigration5KeepReading) {
  const std::string url = DatabaseUrl();
  auto db = OpenMigrated(url);
  ASSERT_TRUE(db.ok()) << db.error().message;
  const std::string dir = dir_.path() + "/samples";
  {
    auto old_store = cloud::SampleStore::Open(**db, dir);
    ASSERT_TRUE(old_store.ok());
    ASSERT_EQ((*old_store)->Append(Pointers(MakeTaggedBatch("cam-1", 0, 5)))->accepted, 5u);
  }
  // Back to schema version 4, with an empty segment file 2 the old server opened last (the
  // later migrations find their tables and columns there and leave them).
  ASSERT_TRUE((*db)->Exec("DROP TABLE sample_segments").ok());
  ASSERT_TRUE((*db)->Exec("DELETE FROM schema_migrations WHERE version >= 5").ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/seg-000002.log", "").ok());
  auto v = cloud::Migrate(**db);
  ASSERT_TRUE(v.ok()) << v.error().message;
  auto seeded = (*db)->Query("SELECT segment FROM sample_segments");
  ASSERT_TRUE(seeded.ok());
  ASSERT_EQ(seeded->size(), 1u);
  EXPECT_EQ(seeded->at(0).at(0), "1");
  auto store = cloud::SampleStore::Open(**db, dir);
  ASSERT_TRUE(store.ok()) << store.error().message;
  ASSERT_EQ((*store)->Append(Pointers(MakeTaggedBatch("cam-1", 5, 5)))->accepted, 5u);
  auto where = (*db)->Query("SELECT DISTINCT segment FROM samples WHERE seq >= 5");
  ASSERT_TRUE(where.ok());
  ASSERT_EQ(where->size(), 1u);
  EXPECT_EQ(where->at(0).at(0), "3");
  for (uint64_t seq = 0; seq < 10; ++seq) {
    auto sample = (*store)->Read("cam-1", seq);
    ASSERT_TRUE(sample.ok()) << seq << ": " << sample.error().message;
    EXPECT_EQ(sample->metadata().at("at"), "cam-1/" + std::to_string(seq));
  }
}

// Once armed, holds the next group's leader until `waiting` more batches have queued, so that
// the group after it takes all of them at once; records the sizes of both, and lets `then`
// decide the second group's fate.
struct GroupGate {
  std::unique_ptr<cloud::SampleStore>* store = nullptr;
  size_t waiting = 0;
  std::function<Status(size_t batch_count)> then;
  std::atomic<bool> armed{false}, holding{false};
  std::vector<size_t> groups;  // written by leaders only, which take turns
  cloud::SampleStoreOptions Options() {
    cloud::SampleStoreOptions o;
    o.before_group_write = [this](size_t batches) -> Status {
      if (!armed) return Status::Ok();
      groups.push_back(batches);
      if (groups.size() == 1) {
        holding = true;
        while ((*store)->queued() < waiting) std::this_thread::yield();
      } else if (groups.size() == 2 && then) {
        return then(batches);
      }
      return Status::Ok();
    };
    return o;
  }
};

// Arms the gate and runs one Append per batch, each on its own thread: the first batch's
// group is held until all the others have queued behind it.
std::vector<Result<cloud::AppendResult>> AppendConcurrently(
    cloud::SampleStore& store, GroupGate& gate, const std::vector<wire::SampleBatch>& batches) {
  gate.waiting = batches.size() - 1;
  gate.armed = true;
  std::vector<Result<cloud::AppendResult>> out(batches.size(),
                                               Error(Errc::kInternal, "not appended"));
  std::thread first([&] { out[0] = store.Append(Pointers(batches[0])); });
  while (!gate.holding) std::this_thread::yield();
  std::vector<std::thread> rest;
  for (size_t i = 1; i < batches.size(); ++i)
    rest.emplace_back([&, i] { out[i] = store.Append(Pointers(batches[i])); });
  first.join();
  for (auto& t : rest) t.join();
  gate.armed = false;
  return out;
}

// N batches that arrive together share one write and one fsync; each caller gets its own
// counts, also when two batches of the group carry the same samples.
TEST_P(StoreTest, ConcurrentBatchesShareOneFsyncAndCountTheirOwnDuplicates) {
  auto db = OpenMigrated(DatabaseUrl());
  ASSERT_TRUE(db.ok()) << db.error().message;
  std::unique_ptr<cloud::SampleStore> store;
  GroupGate gate;
  gate.store = &store;
  constexpr size_t kBatches = 12;
  auto opened = cloud::SampleStore::Open(**db, dir_.path() + "/samples", gate.Options());
  ASSERT_TRUE(opened.ok());
  store = std::move(*opened);
  ASSERT_EQ(store->Append(Pointers(MakeTaggedBatch("cam-0", 0, 4)))->accepted, 4u);
  const uint64_t syncs_before = store->syncs();
  // Batch 0 leads alone; batches 1..11: ten devices, and cam-1's batch three times over
  // (overlapping sequences 0..9, 5..14, 0..9), and cam-0's stored samples again.
  std::vector<wire::SampleBatch> batches = {
      MakeTaggedBatch("cam-lead", 0, 3), MakeTaggedBatch("cam-1", 0, 10),
      MakeTaggedBatch("cam-1", 5, 10), MakeTaggedBatch("cam-1", 0, 10),
      MakeTaggedBatch("cam-0", 2, 4)};
  for (int d = 2; batches.size() < kBatches; ++d)
    batches.push_back(MakeTaggedBatch("cam-" + std::to_string(d), 0, 6));
  auto results = AppendConcurrently(*store, gate, batches);
  uint64_t accepted = 0, duplicates = 0, cam1_accepted = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    ASSERT_TRUE(results[i].ok()) << i << ": " << results[i].error().message;
    EXPECT_EQ(results[i]->accepted + results[i]->duplicates,
              static_cast<uint64_t>(batches[i].samples_size()))
        << "batch " << i;
    accepted += results[i]->accepted;
    duplicates += results[i]->duplicates;
    if (i >= 1 && i <= 3) cam1_accepted += results[i]->accepted;
  }
  EXPECT_EQ(cam1_accepted, 15u);               // cam-1/0..14 once
  EXPECT_EQ(results[4]->accepted, 2u);         // cam-0/4..5; 2..3 were stored before
  EXPECT_EQ(accepted, 3u + 15u + 2u + 7 * 6);  // lead, cam-1, cam-0, cam-2..cam-8
  EXPECT_EQ(duplicates, 15u + 2u);
  // Two groups: the leader's batch, then the other eleven together; one fsync each.
  ASSERT_EQ(gate.groups.size(), 2u);
  EXPECT_EQ(gate.groups[1], kBatches - 1);
  EXPECT_EQ(store->syncs() - syncs_before, 2u);
  EXPECT_LT(store->syncs() - syncs_before, kBatches);
  for (uint64_t seq = 0; seq < 15; ++seq) {
    auto sample = store->Read("cam-1", seq);
    ASSERT_TRUE(sample.ok()) << seq << ": " << sample.error().message;
    EXPECT_EQ(sample->metadata().at("at"), "cam-1/" + std::to_string(seq));
  }
  auto counts = store->Count("device");
  ASSERT_TRUE(counts.ok());
  uint64_t total = 0;
  for (const auto& c : *counts) total += c.count;
  EXPECT_EQ(total, 4u + accepted);
}

// Many threads, sequences overlapping between threads: every sample stored once, every
// count adds up.
TEST_P(StoreTest, ManyThreadsWithOverlappingSequencesStoreEachSampleOnce) {
  auto db = OpenMigrated(DatabaseUrl());
  ASSERT_TRUE(db.ok()) << db.error().message;
  auto store = cloud::SampleStore::Open(**db, dir_.path() + "/samples");
  ASSERT_TRUE(store.ok());
  constexpr int kThreads = 16, kRounds = 8, kDevices = 4, kPerBatch = 10;
  std::atomic<uint64_t> accepted{0}, duplicates{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      // Thread t writes device t % 4, sequences from 5 * (t / 4) + 10 * round: overlapping
      // the other three threads of its device by half a batch.
      const std::string device = "dev-" + std::to_string(t % kDevices);
      for (int k = 0; k < kRounds; ++k) {
        auto r = (*store)->Append(
            Pointers(MakeTaggedBatch(device, 5 * (t / kDevices) + 10 * k, kPerBatch)));
        ASSERT_TRUE(r.ok()) << r.error().message;
        accepted += r->accepted;
        duplicates += r->duplicates;
      }
    });
  for (auto& t : threads) t.join();
  // Each device: sequences 0 .. 15 + 70 + 9 = 94, all stored once.
  constexpr uint64_t kPerDevice = 5 * 3 + 10 * (kRounds - 1) + kPerBatch;
  EXPECT_EQ(accepted.load(), kDevices * kPerDevice);
  EXPECT_EQ(accepted.load() + duplicates.load(), uint64_t{kThreads * kRounds * kPerBatch});
  for (int d = 0; d < kDevices; ++d)
    for (uint64_t seq = 0; seq < kPerDevice; ++seq) {
      const std::string device = "dev-" + std::to_string(d);
      auto sample = (*store)->Read(device, seq);
      ASSERT_TRUE(sample.ok()) << device << "/" << seq << ": " << sample.error().message;
      EXPECT_EQ(sample->metadata().at("at"), device + "/" + std::to_string(seq));
    }
  EXPECT_LE((*store)->syncs(), (*store)->synced_batches());
}

// A failure fails every batch of its group and leaves none of their rows; what was stored
// before stays, and the same batches store in full afterwards. The group fails by the
// database refusing an index row, or by its segment write failing.
void GroupFailureLosesNothingEarlier(const std::string& url, const std::string& dir,
                                     bool database_refuses) {
  auto db = OpenMigrated(url);
  ASSERT_TRUE(db.ok()) << db.error().message;
  if (database_refuses) {
    // The index refuses any row of device "refused": a commit the database turns down after
    // the group's first statements (250 rows each) went through.
    const bool pg = (*db)->Dialect() == "postgresql";
    if (pg) {
      ASSERT_TRUE((*db)
                      ->Exec("CREATE FUNCTION refuse_sample() RETURNS trigger AS $$ BEGIN IF "
                             "NEW.device_id = 'refused' THEN RAISE EXCEPTION 'sample refused "
                             "by the test'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql")
                      .ok());
      ASSERT_TRUE((*db)
                      ->Exec("CREATE TRIGGER refuse_sample BEFORE INSERT ON samples FOR EACH "
                             "ROW EXECUTE FUNCTION refuse_sample()")
                      .ok());
    } else {
      ASSERT_TRUE((*db)
                      ->Exec("CREATE TRIGGER refuse_sample BEFORE INSERT ON samples WHEN "
                             "NEW.device_id = 'refused' BEGIN SELECT RAISE(ABORT, 'sample "
                             "refused by the test'); END")
                      .ok());
    }
  }
  std::unique_ptr<cloud::SampleStore> store;
  GroupGate gate;
  gate.store = &store;
  constexpr size_t kBatches = 8;
  if (!database_refuses)
    gate.then = [](size_t) -> Status {
      return Error(Errc::kIo, "segment write: No space left on device (forced by the test)");
    };
  auto opened = cloud::SampleStore::Open(**db, dir, gate.Options());
  ASSERT_TRUE(opened.ok());
  store = std::move(*opened);
  std::vector<wire::SampleBatch> batches = {MakeTaggedBatch("cam-lead", 0, 5)};
  for (size_t d = 1; d + 1 < kBatches; ++d)
    batches.push_back(MakeTaggedBatch("cam-" + std::to_string(d), 0, 100));
  batches.push_back(MakeTaggedBatch(database_refuses ? "refused" : "cam-last", 0, 100));
  auto results = AppendConcurrently(*store, gate, batches);
  ASSERT_TRUE(results[0].ok()) << results[0].error().message;
  EXPECT_EQ(results[0]->accepted, 5u);
  ASSERT_EQ(gate.groups.size(), 2u);
  EXPECT_EQ(gate.groups[1], kBatches - 1);
  for (size_t i = 1; i < kBatches; ++i) {
    ASSERT_FALSE(results[i].ok()) << "batch " << i << " of the failed group was acked";
    EXPECT_NE(results[i].error().message.find(database_refuses ? "refused" : "No space"),
              std::string::npos)
        << results[i].error().message;
  }
  auto counts = store->Count("device");
  ASSERT_TRUE(counts.ok());
  ASSERT_EQ(counts->size(), 1u) << "rows of the failed group were left committed";
  EXPECT_EQ(counts->at(0).key, "cam-lead");
  EXPECT_EQ(counts->at(0).count, 5u);
  // The same batches (but the refused one) again: nothing counts as stored before.
  for (size_t i = 1; i + 1 < kBatches; ++i) {
    auto again = store->Append(Pointers(batches[i]));
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_EQ(again->accepted, 100u);
  }
  for (const auto& [device, seq] :
       {std::pair<std::string, uint64_t>{"cam-lead", 4}, {"cam-1", 0}, {"cam-6", 99}}) {
    auto sample = store->Read(device, seq);
    ASSERT_TRUE(sample.ok()) << device << "/" << seq << ": " << sample.error().message;
    EXPECT_EQ(sample->metadata().at("at"), device + "/" + std::to_string(seq));
  }
}

TEST_P(StoreTest, ADatabaseRefusingTheCommitFailsTheWholeGroup) {
  GroupFailureLosesNothingEarlier(DatabaseUrl(), dir_.path() + "/samples", true);
}

TEST_P(StoreTest, ASegmentWriteErrorFailsTheWholeGroup) {
  GroupFailureLosesNothingEarlier(DatabaseUrl(), dir_.path() + "/samples", false);
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
  // One batch written with one fsync; the retry wrote nothing.
  auto metrics = f.Client()->Get("/v1/metrics", f.Bearer(f.server().admin_token()));
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("\nedgeloop_sample_store_syncs_total 1\n"), std::string::npos)
      << metrics->body;
  EXPECT_NE(metrics->body.find("\nedgeloop_sample_store_synced_batches_total 1\n"),
            std::string::npos);
}

// The connection keeps prepared statements (SQLite caches them by text): a statement that
// failed, one that was left with rows unread, a schema change under a kept statement and more
// distinct statements than the cache holds must all behave as if each were prepared anew.
TEST_P(DomainStoreTest, RepeatedStatementsSeeSchemaChangesFailuresAndNewRows) {
  auto db = cloud::OpenDatabase(DatabaseUrl());
  ASSERT_TRUE(db.ok()) << db.error().message;
  cloud::Database& d = **db;
  ASSERT_TRUE(d.Exec("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)").ok());
  const std::string insert = "INSERT INTO kv (k, v) VALUES (?, ?)";
  ASSERT_TRUE(d.Exec(insert, {"a", "1"}).ok());
  // The same statement fails on a duplicate key, then works again with other parameters.
  EXPECT_FALSE(d.Exec(insert, {"a", "2"}).ok());
  ASSERT_TRUE(d.Exec(insert, {"b", "2"}).ok());
  const std::string all = "SELECT * FROM kv ORDER BY k";
  auto rows = d.Query(all);
  ASSERT_TRUE(rows.ok()) << rows.error().message;
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ(rows->at(1).at(1), "2");
  // A column added under the kept SELECT * shows up in its next answer.
  ASSERT_TRUE(d.Exec("ALTER TABLE kv ADD COLUMN note TEXT").ok());
  ASSERT_TRUE(d.Exec("UPDATE kv SET note = ? WHERE k = ?", {"n", "a"}).ok());
  rows = d.Query(all);
  ASSERT_TRUE(rows.ok()) << rows.error().message;
  ASSERT_EQ(rows->at(0).size(), 3u);
  EXPECT_EQ(rows->at(0).at(2), "n");
  // More distinct statements than any cache holds, then the first ones again.
  for (int i = 0; i < 300; ++i) {
    auto one = d.Query(
        "SELECT v FROM kv WHERE k = ? AND " + std::to_string(i) + " = " + std::to_string(i), {"b"});
    ASSERT_TRUE(one.ok()) << one.error().message;
    ASSERT_EQ(one->size(), 1u);
  }
  // A write inside a transaction, through a kept statement, is seen after the commit and
  // gone after a rollback.
  ASSERT_TRUE(d.Transaction([&] { return d.Exec(insert, {"c", "3"}); }).ok());
  EXPECT_FALSE(d.Transaction([&]() -> Status {
                  EDGELOOP_RETURN_IF_ERROR(d.Exec(insert, {"d", "4"}));
                  return Error(Errc::kInternal, "roll back");
                }).ok());
  rows = d.Query(all);
  ASSERT_TRUE(rows.ok()) << rows.error().message;
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ(rows->at(2).at(0), "c");
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

// The fleet store: enrollment replaces a device's certificate, telemetry and events land in
// its status row, drift alarms remember when they went up.
TEST_P(DomainStoreTest, FleetStoreKeepsEachDevicesLatestState) {
  auto db = OpenMigrated(DatabaseUrl());
  ASSERT_TRUE(db.ok()) << db.error().message;
  cloud::FleetStore fleet(**db);
  ASSERT_TRUE(fleet.ReplaceDevice({"dev-1", "lab", 11, false, 1000}).ok());
  ASSERT_TRUE(fleet.ReplaceDevice({"dev-1", "lab", 12, false, 2000}).ok());
  auto old_cert = fleet.CertificateValid("dev-1", 11);
  auto new_cert = fleet.CertificateValid("dev-1", 12);
  ASSERT_TRUE(old_cert.ok() && new_cert.ok());
  EXPECT_FALSE(*old_cert);
  EXPECT_TRUE(*new_cert);
  EXPECT_EQ(fleet.GetDevice("nope").error().code, Errc::kNotFound);
  EXPECT_EQ(fleet.Revoke("nope").error().code, Errc::kNotFound);

  cloud::TelemetryRecord t;
  t.device_id = "dev-1";
  t.ts_ms = 5000;
  t.model_version = "m:1";
  t.accuracy = 0.75;
  t.labelled = 40;
  t.drift_score = 0.4;
  t.drift_alarm = true;
  t.document = "{}";
  ASSERT_TRUE(fleet.RecordTelemetry(t).ok());
  t.ts_ms = 6000;
  ASSERT_TRUE(fleet.RecordTelemetry(t).ok());
  ASSERT_TRUE(
      fleet.RecordUpdateEvent({0, "dev-1", 7000, "committed", 3, "m:2", ""}, "committed").ok());
  auto status = fleet.Fleet();
  ASSERT_TRUE(status.ok()) << status.error().message;
  ASSERT_EQ(status->size(), 1u);
  const cloud::DeviceStatus& d = status->at(0);
  EXPECT_EQ(d.group, "lab");
  EXPECT_EQ(d.model_version, "m:2");  // the committed update names the running model
  EXPECT_EQ(d.update_phase, "committed");
  EXPECT_EQ(d.last_seen_ms, 7000);
  ASSERT_TRUE(d.accuracy.has_value());
  EXPECT_DOUBLE_EQ(*d.accuracy, 0.75);
  EXPECT_TRUE(d.drift_alarm);
  auto alarms = fleet.DriftAlarms(0, "");
  ASSERT_TRUE(alarms.ok());
  ASSERT_EQ(alarms->size(), 1u);
  EXPECT_EQ(alarms->at(0).since_ms, 5000);  // the first telemetry with the alarm up
  auto none = fleet.DriftAlarms(0, "m:1");  // the device now runs m:2
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  auto events = fleet.LatestUpdateEvents();
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ(events->at(0).metadata_version, 3u);
  auto points = fleet.TelemetrySince(5500);
  ASSERT_TRUE(points.ok());
  EXPECT_EQ(points->size(), 1u);
}

// A column that does not hold what the store expects is an error naming the device, not an
// exception.
TEST_P(DomainStoreTest, ACorruptColumnIsAnErrorNamingTheRow) {
  auto db = OpenMigrated(DatabaseUrl());
  ASSERT_TRUE(db.ok()) << db.error().message;
  cloud::FleetStore fleet(**db);
  ASSERT_TRUE(fleet.ReplaceDevice({"dev-9", "", 1, false, 1}).ok());
  ASSERT_TRUE((*db)
                  ->Exec("INSERT INTO device_status (device_id, model_version, update_phase, "
                         "last_seen_ms, accuracy, labelled, error_rate, latency_p50_ms, "
                         "latency_p95_ms, drift_score, drift_alarm, telemetry) VALUES ('dev-9', "
                         "'', '', 0, 'high', 0, 0, 0, 0, 0, 0, '')")
                  .ok());
  auto status = fleet.Fleet();
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, Errc::kFormat);
  EXPECT_NE(status.error().message.find("dev-9"), std::string::npos) << status.error().message;
  EXPECT_NE(status.error().message.find("accuracy"), std::string::npos) << status.error().message;

  cloud::PipelineStore pipelines(**db);
  ASSERT_TRUE((*db)
                  ->Exec("INSERT INTO pipeline_runs (id, pipeline, trigger, status, created_ms, "
                         "finished_ms, result) VALUES ('run-x', 'p', 'manual', 'failed', 1, "
                         "'soon', '{}')")
                  .ok());
  auto run = pipelines.GetRun("run-x");
  ASSERT_FALSE(run.ok());
  EXPECT_NE(run.error().message.find("run-x finished_ms"), std::string::npos)
      << run.error().message;
}

// Versions count up per model; production moves, archiving the previous one; every change is
// in the history.
TEST_P(DomainStoreTest, RegistryStoreNumbersVersionsAndMovesProduction) {
  auto db = OpenMigrated(DatabaseUrl());
  ASSERT_TRUE(db.ok()) << db.error().message;
  cloud::RegistryStore registry(**db);
  cloud::ModelVersionRow row;
  row.model = "cnn";
  row.artifacts = {{"fp32", std::string(64, 'a')}};
  auto v1 = registry.Register(row, 100);
  auto v2 = registry.Register(row, 200);
  ASSERT_TRUE(v1.ok() && v2.ok());
  EXPECT_EQ(*v1, 1);
  EXPECT_EQ(*v2, 2);
  ASSERT_TRUE(registry.SetStage("cnn", 1, "production", 300).ok());
  ASSERT_TRUE(registry.SetStage("cnn", 2, "production", 400).ok());
  auto prod = registry.Find("cnn", "production");
  ASSERT_TRUE(prod.ok());
  EXPECT_EQ(prod->version, 2);
  EXPECT_EQ(prod->Artifact("fp32"), std::string(64, 'a'));
  EXPECT_EQ(prod->Artifact("int8"), "");
  auto first = registry.Find("cnn", "1");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->stage, "archived");
  auto history = registry.History("cnn", 1);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 3u);  // registered, production, archived
  EXPECT_EQ(history->back().from, "production");
  EXPECT_EQ(history->back().to, "archived");
  EXPECT_EQ(registry.Find("cnn", "x1").error().code, Errc::kInvalidArgument);
  EXPECT_EQ(registry.Find("cnn", "9").error().code, Errc::kNotFound);
  EXPECT_EQ(registry.SetStage("cnn", 1, "gold", 500).error().code, Errc::kInvalidArgument);
  auto models = registry.Models();
  ASSERT_TRUE(models.ok());
  ASSERT_EQ(models->size(), 1u);
  EXPECT_EQ(models->at(0).latest_version, 2);
  EXPECT_EQ(models->at(0).production_version, std::optional<int64_t>(2));
}

// Two servers on one database claim queued runs: each run is taken once.
TEST_P(DomainStoreTest, EachQueuedRunIsClaimedOnce) {
  const std::string url = DatabaseUrl();
  auto a = OpenMigrated(url);
  ASSERT_TRUE(a.ok()) << a.error().message;
  auto b = cloud::OpenDatabase(url);
  ASSERT_TRUE(b.ok()) << b.error().message;
  cloud::PipelineStore first(**a), second(**b);
  ASSERT_TRUE(first.Put({"p", "name: p", 1, 1, 0}).ok());
  constexpr int kRuns = 20;
  for (int i = 0; i < kRuns; ++i)
    ASSERT_TRUE(first
                    .InsertRun({"run-" + std::to_string(100 + i), "p", "manual", "queued", 100 + i,
                                std::nullopt, Json::object()})
                    .ok());
  std::vector<std::string> got_a, got_b;
  std::thread other([&] {
    for (;;) {
      auto c = second.ClaimNextQueued();
      ASSERT_TRUE(c.ok()) << c.error().message;
      if (!*c) {
        auto left = second.RunsWithStatus("queued");
        if (left.ok() && left->empty()) return;
        continue;
      }
      got_b.push_back((*c)->first.id);
    }
  });
  for (;;) {
    auto c = first.ClaimNextQueued();
    ASSERT_TRUE(c.ok()) << c.error().message;
    if (!*c) {
      auto left = first.RunsWithStatus("queued");
      ASSERT_TRUE(left.ok());
      if (left->empty()) break;
      continue;
    }
    EXPECT_EQ((*c)->second, "name: p");
    got_a.push_back((*c)->first.id);
  }
  other.join();
  std::set<std::string> all(got_a.begin(), got_a.end());
  for (const auto& id : got_b) EXPECT_TRUE(all.insert(id).second) << id << " claimed twice";
  EXPECT_EQ(all.size(), static_cast<size_t>(kRuns));
  auto running = first.RunsWithStatus("running");
  ASSERT_TRUE(running.ok());
  EXPECT_EQ(running->size(), static_cast<size_t>(kRuns));
}

EDGELOOP_BOTH_DATABASES(StoreTest);
EDGELOOP_BOTH_DATABASES(DomainStoreTest);
EDGELOOP_BOTH_DATABASES(MigrationTest);

}  // namespace
}  // namespace edgeloop::testing
