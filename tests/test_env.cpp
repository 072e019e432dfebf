// Linked into every test binary: gives tests the source and build directories through the
// environment (EDGELOOP_SOURCE_DIR, EDGELOOP_BINARY_DIR) whether they run under CTest or by
// hand. Values already in the environment win. A test that writes to a connection the server
// has closed (a refused certificate, a killed server) gets EPIPE, as every client should,
// instead of SIGPIPE ending the test binary.
#include <csignal>
#include <cstdlib>

namespace {
struct TestEnvironment {
  TestEnvironment() {
    ::setenv("EDGELOOP_SOURCE_DIR", EDGELOOP_TEST_SOURCE_DIR, 0);
    ::setenv("EDGELOOP_BINARY_DIR", EDGELOOP_TEST_BINARY_DIR, 0);
    std::signal(SIGPIPE, SIG_IGN);
  }
};
const TestEnvironment kTestEnvironment;
}  // namespace
