// Crash-test child for the spool: opens the spool in argv[1], appends records whose payload
// is a function of their sequence number, and after each durable append prints "A <seq>";
// every 37 records it acknowledges all but the newest 10 and prints "K <seq>". It runs until
// killed.
#include <cstdio>
#include <string>

#include "edge/spool.hpp"
#include "edge/spool_test_payload.hpp"

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  edgeloop::edge::SpoolOptions opt;
  opt.segment_bytes = 4096;  // many segments, so rotation and deletion are crossed by kills
  opt.max_bytes = 1ull << 30;
  auto spool = edgeloop::edge::Spool::Open(argv[1], opt);
  if (!spool.ok()) {
    std::fprintf(stderr, "%s\n", spool.error().message.c_str());
    return 1;
  }
  for (;;) {
    uint64_t next = (*spool)->Stats().next_seq;
    auto seq = (*spool)->Append(edgeloop::edge::TestPayload(next), next % 3 == 0);
    if (!seq.ok()) {
      std::fprintf(stderr, "%s\n", seq.error().message.c_str());
      return 1;
    }
    std::printf("A %llu\n", static_cast<unsigned long long>(*seq));
    if (*seq % 37 == 0 && *seq > 10) {
      if (!(*spool)->Ack(*seq - 10).ok()) return 1;
      std::printf("K %llu\n", static_cast<unsigned long long>(*seq - 10));
    }
    std::fflush(stdout);
  }
}
