// A real Mosquitto broker for the MQTT tests: configured by `edgeloop mqtt-config` from a
// server's data folder (its fleet CA), run as `mosquitto -c` on a free loopback port, killed
// with any signal and restarted on the same configuration and persistence folder.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include "common/file.hpp"
#include "common/free_port.hpp"
#include "common/process.hpp"
#include "run_command.hpp"

namespace edgeloop::testing {

// Debian installs the broker in /usr/sbin, which is not always on a test's PATH.
inline std::string MosquittoBinary() {
  return access("/usr/sbin/mosquitto", X_OK) == 0 ? "/usr/sbin/mosquitto" : "mosquitto";
}

class BrokerProcess {
 public:
  // data_dir: the server's data folder; dir: where the broker's files go.
  BrokerProcess(std::string data_dir, std::string dir)
      : data_dir_(std::move(data_dir)), dir_(std::move(dir)), port_(FreeLoopbackPort()) {}
  ~BrokerProcess() { Kill(SIGKILL); }

  // Runs `edgeloop mqtt-config`; returns its output when it fails, empty when it succeeds.
  std::string Configure(const std::string& extra_args = "") {
    Outcome o = RunCommand("'" + std::string(EDGELOOP_CLI_BINARY) + "' mqtt-config --data '" +
                           data_dir_ + "' --out '" + dir_ + "' --port " + std::to_string(port_) +
                           " --log-file '" + dir_ + "/mosquitto.log' " + extra_args + " 2>&1");
    return o.exit_code == 0 ? "" : "exit " + std::to_string(o.exit_code) + ": " + o.output;
  }

  // Starts mosquitto and waits (up to 10 s) until it accepts connections.
  bool Start() {
    RunOptions ro;
    ro.log_path = dir_ + "/stdout.log";
    auto child = ChildProcess::Start({MosquittoBinary(), "-c", dir_ + "/mosquitto.conf"}, ro);
    if (!child.ok()) return false;
    child_ = std::move(*child);
    for (auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
         std::chrono::steady_clock::now() < end;) {
      if (!child_->running()) return false;
      if (Accepts()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  void Kill(int sig) {
    if (!child_) return;
    if (sig == SIGKILL) {
      child_->Signal(SIGKILL);
      child_->Stop(std::chrono::milliseconds(0));  // reaps it
    } else {
      child_->Stop();
    }
    child_.reset();
  }

  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  const std::string& dir() const { return dir_; }
  std::string log() const {
    std::string out;
    for (const char* name : {"/mosquitto.log", "/stdout.log"})
      if (auto text = ReadFile(dir_ + name); text.ok()) out += *text;
    return out;
  }

 private:
  bool Accepts() const {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port_));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    close(fd);
    return ok;
  }

  std::string data_dir_, dir_;
  int port_;
  std::optional<ChildProcess> child_;
};

}  // namespace edgeloop::testing
