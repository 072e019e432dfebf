// Parametrizes a test suite over both metadata databases: a fresh SQLite file, or an emptied
// schema on one real PostgreSQL server that the test binary starts once and stops at exit.
#pragma once

#include <gtest/gtest.h>

#include "cloud/database.hpp"
#include "cloud_test_util.hpp"
#include "postgres_fixture.hpp"

namespace edgeloop::testing {

// One PostgreSQL per test program, started on first use and stopped after the last test.
inline PostgresServer*& SharedPostgresSlot() {
  static PostgresServer* server = nullptr;
  return server;
}
inline PostgresServer& SharedPostgres() {
  if (!SharedPostgresSlot()) SharedPostgresSlot() = new PostgresServer();
  return *SharedPostgresSlot();
}
class StopSharedPostgres : public ::testing::Environment {
 public:
  void TearDown() override {
    delete SharedPostgresSlot();
    SharedPostgresSlot() = nullptr;
  }
};
inline const auto* const kStopSharedPostgres =
    ::testing::AddGlobalTestEnvironment(new StopSharedPostgres);

// The shared PostgreSQL with an emptied public schema: a fresh database for one test.
inline std::string FreshPostgresUrl() {
  if (!SharedPostgres().ok()) ADD_FAILURE() << "PostgreSQL did not start";
  auto db = cloud::OpenDatabase(SharedPostgres().url());
  EXPECT_TRUE(db.ok()) << db.error().message;
  if (db.ok()) {
    EXPECT_TRUE((*db)->Exec("DROP SCHEMA public CASCADE").ok());
    EXPECT_TRUE((*db)->Exec("CREATE SCHEMA public").ok());
  }
  return SharedPostgres().url();
}

class DatabaseTest : public ::testing::TestWithParam<std::string> {
 protected:
  // A fresh database: a new SQLite file, or an emptied PostgreSQL schema.
  std::string DatabaseUrl() {
    if (GetParam() == "sqlite") return "sqlite:" + dir_.path() + "/meta.db";
    return FreshPostgresUrl();
  }
  TempDir dir_;
};

#define EDGELOOP_BOTH_DATABASES(Suite)                                                  \
  INSTANTIATE_TEST_SUITE_P(Databases, Suite, ::testing::Values("sqlite", "postgresql"), \
                           [](const auto& info) { return info.param; })

}  // namespace edgeloop::testing
