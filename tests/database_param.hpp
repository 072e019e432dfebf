// Parametrizes a test suite over both metadata databases: a fresh SQLite file, or an emptied
// schema on one real PostgreSQL server that the test binary starts once and stops at exit.
#pragma once

#include <gtest/gtest.h>

#include "cloud/database.hpp"
#include "cloud_test_util.hpp"
#include "postgres_fixture.hpp"

namespace edgeloop::testing {

inline PostgresServer& SharedPostgres() {
  static PostgresServer* server = new PostgresServer();  // stopped by the environment below
  return *server;
}

class StopSharedPostgres : public ::testing::Environment {
 public:
  void TearDown() override { delete &SharedPostgres(); }
};
inline const auto* const kStopSharedPostgres =
    ::testing::AddGlobalTestEnvironment(new StopSharedPostgres);

class DatabaseTest : public ::testing::TestWithParam<std::string> {
 protected:
  // A fresh database: a new SQLite file, or an emptied PostgreSQL schema.
  std::string DatabaseUrl() {
    if (GetParam() == "sqlite") return "sqlite:" + dir_.path() + "/meta.db";
    if (!SharedPostgres().ok()) ADD_FAILURE() << "PostgreSQL did not start";
    auto db = cloud::OpenDatabase(SharedPostgres().url());
    EXPECT_TRUE(db.ok()) << db.error().message;
    if (db.ok()) {
      EXPECT_TRUE((*db)->Exec("DROP SCHEMA public CASCADE").ok());
      EXPECT_TRUE((*db)->Exec("CREATE SCHEMA public").ok());
    }
    return SharedPostgres().url();
  }
  TempDir dir_;
};

#define EDGELOOP_BOTH_DATABASES(Suite)                                                  \
  INSTANTIATE_TEST_SUITE_P(Databases, Suite, ::testing::Values("sqlite", "postgresql"), \
                           [](const auto& info) { return info.param; })

}  // namespace edgeloop::testing
