// Crash-test child for the updater: argv = ROOT REPO PRIVATE_KEY PUBLIC_KEY. Installs the
// factory model (version 1) if needed, then forever offers the next version, feeds the
// probation window and prints "C <version>" after each commit. Every tenth version has a
// health check that fails, so rollbacks are crossed by kills as well. Runs until killed.
#include <cstdio>
#include <memory>

#include "edge/updater.hpp"
#include "edge/updater_test_repo.hpp"

using namespace edgeloop::edge;

int main(int argc, char** argv) {
  if (argc != 5) return 2;
  std::string root = argv[1], repo = argv[2], priv = argv[3], pub = argv[4];
  UpdaterOptions opt;
  opt.update_public_key_pem = pub;
  opt.probation.samples = 20;
  opt.health_check = [](const std::string& path,
                        const edgeloop::UpdateMetadata& m) -> edgeloop::Status {
    if (m.version % 10 == 0) return edgeloop::Error(edgeloop::Errc::kMismatch, "bad version");
    return testing::CheckTestModel(path, m);
  };
  auto u = Updater::Open(root, opt, std::make_shared<FileFetcher>(repo, 4096));
  if (!u.ok()) {
    std::fprintf(stderr, "open: %s\n", u.error().message.c_str());
    return 1;
  }
  if (!(*u)->installed()) {
    auto boot = (*u)->Bootstrap(testing::ModelBytes(1), 1, "{}");
    if (!boot.ok()) return 1;
  }
  for (;;) {
    // Versions rolled back earlier (the bad ones, and good ones whose probation a kill cut
    // short) are refused; the next newer version is offered instead, as a cloud would publish.
    edgeloop::Status st;
    for (uint64_t v = (*u)->active().version + 1;; ++v) {
      st = (*u)->Offer(testing::PublishVersion(repo, v, priv, 4102444800));
      if (st.ok() || st.error().message.find("rolled back before") == std::string::npos) break;
    }
    if (!st.ok()) continue;  // a bad version was just rolled back
    for (int i = 0; i < 20; ++i) (void)(*u)->RecordInference(false, 1.0);
    if ((*u)->phase() == UpdatePhase::kCommitted) {
      std::printf("C %llu\n", static_cast<unsigned long long>((*u)->active().version));
      std::fflush(stdout);
    }
  }
}
