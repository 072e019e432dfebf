// Linked into every test binary: gives tests the source and build directories through the
// environment (EDGELOOP_SOURCE_DIR, EDGELOOP_BINARY_DIR) whether they run under CTest or by
// hand. Values already in the environment win.
#include <cstdlib>

namespace {
struct TestEnvironment {
  TestEnvironment() {
    ::setenv("EDGELOOP_SOURCE_DIR", EDGELOOP_TEST_SOURCE_DIR, 0);
    ::setenv("EDGELOOP_BINARY_DIR", EDGELOOP_TEST_BINARY_DIR, 0);
  }
};
const TestEnvironment kTestEnvironment;
}  // namespace
