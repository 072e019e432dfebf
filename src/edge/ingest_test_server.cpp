// A minimal ingest server for the uploader's fault tests (the cloud module has the real one):
// argv = PORT FILE. Stores each (seq) of a device once, appending "seq\n" to FILE with fsync
// before it answers, and answers with the highest contiguous stored sequence number. On
// start it reloads FILE (ignoring a last line cut by a kill), so it can be killed with
// SIGKILL and restarted at any moment. Prints "ready" when listening.
#include <fcntl.h>
#include <httplib.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  int port = std::stoi(argv[1]);
  std::string file = argv[2];
  std::set<uint64_t> stored;
  {
    std::ifstream in(file);
    std::string line;
    while (std::getline(in, line))
      if (!in.eof() && !line.empty()) stored.insert(std::stoull(line));
  }
  // A torn last line is cut so that appends start on a line boundary.
  {
    std::string content;
    for (uint64_t s : stored) content += std::to_string(s) + "\n";
    std::ofstream(file + ".tmp", std::ios::trunc) << content;
    std::rename((file + ".tmp").c_str(), file.c_str());
  }
  int fd = ::open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT, 0644);
  if (fd < 0) return 1;
  std::mutex mu;
  httplib::Server server;
  server.Post(
      R"(/v1/devices/([^/]+)/samples)", [&](const httplib::Request& req, httplib::Response& res) {
        auto j = nlohmann::json::parse(req.body, nullptr, false);
        if (j.is_discarded() || !j.contains("records")) {
          res.status = 400;
          return;
        }
        std::lock_guard<std::mutex> lock(mu);
        std::string add;
        std::vector<uint64_t> fresh;
        for (const auto& r : j["records"]) {
          uint64_t seq = r["seq"].get<uint64_t>();
          if (stored.count(seq)) continue;
          fresh.push_back(seq);
          add += std::to_string(seq) + "\n";
        }
        if (!add.empty()) {
          if (::write(fd, add.data(), add.size()) != static_cast<ssize_t>(add.size()) ||
              ::fsync(fd) != 0) {
            res.status = 500;
            return;
          }
          stored.insert(fresh.begin(), fresh.end());
        }
        uint64_t through = 0;
        while (stored.count(through + 1)) ++through;
        res.set_content(nlohmann::json{{"acked_through", through}}.dump(), "application/json");
      });
  if (!server.bind_to_port("127.0.0.1", port)) return 1;
  std::printf("ready\n");
  std::fflush(stdout);
  server.listen_after_bind();
  return 0;
}
