// A real, throw-away PostgreSQL server for tests: initdb into a temporary folder, pg_ctl start
// on a random port with its Unix socket in that folder, pg_ctl stop and removal at the end.
// initdb and postgres refuse to run as root, so under root the folder is handed to the
// `postgres` user and the tools run through `runuser -u postgres --`.
#pragma once

#include <glob.h>
#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>

#include "cloud/database.hpp"

namespace edgeloop::testing {

class PostgresServer {
 public:
  PostgresServer() {
    glob_t g{};
    if (glob("/usr/lib/postgresql/*/bin/pg_ctl", 0, nullptr, &g) == 0 && g.gl_pathc > 0)
      bin_ = std::filesystem::path(g.gl_pathv[g.gl_pathc - 1]).parent_path().string();
    globfree(&g);
    if (bin_.empty()) return;
    std::string tmpl = (std::filesystem::temp_directory_path() / "edgeloop-pg-XXXXXX").string();
    dir_ = mkdtemp(tmpl.data());
    if (geteuid() == 0) {
      passwd* pw = getpwnam("postgres");
      if (pw == nullptr) return;
      if (chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) return;
      prefix_ = "runuser -u postgres -- ";
    }
    port_ = 20000 + static_cast<int>(std::random_device{}() % 30000);
    if (Run(bin_ + "/initdb -A trust -U postgres -D " + dir_ + "/db > " + dir_ + "/initdb.log") !=
        0)
      return;
    std::string opts =
        "-c listen_addresses='' -k " + dir_ + " -p " + std::to_string(port_) + " -c fsync=on";
    started_ = Run(bin_ + "/pg_ctl -w -D " + dir_ + "/db -l " + dir_ + "/pg.log -o \"" + opts +
                   "\" start > /dev/null") == 0;
  }
  ~PostgresServer() {
    if (started_) Run(bin_ + "/pg_ctl -w -m fast -D " + dir_ + "/db stop > /dev/null");
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  bool ok() const { return started_; }
  std::string url() const {
    return "postgresql://postgres@/postgres?host=" + dir_ + "&port=" + std::to_string(port_);
  }

 private:
  int Run(const std::string& cmd) const { return std::system((prefix_ + cmd).c_str()); }

  std::string bin_, dir_, prefix_;
  int port_ = 0;
  bool started_ = false;
};

}  // namespace edgeloop::testing
