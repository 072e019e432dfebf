// Fault-test child: drains the spool in argv[1] to the ingest server at argv[2] with the real
// Uploader and HttpUploadTransport (short backoff), and exits 0 once the spool is empty.
#include <thread>

#include "edge/http_upload_transport.hpp"
#include "edge/uploader.hpp"

using namespace edgeloop::edge;

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  auto spool = Spool::Open(argv[1]);
  if (!spool.ok()) return 1;
  UploaderOptions opt;
  opt.device_id = "dev-1";
  opt.max_records = 10;
  opt.base_delay = std::chrono::milliseconds(5);
  opt.max_delay = std::chrono::milliseconds(100);
  Uploader up(**spool, std::make_shared<HttpUploadTransport>(argv[2], std::chrono::seconds(2)),
              opt);
  while ((*spool)->Stats().depth_records > 0) {
    (void)up.Step();
    if (up.NextDelay().count() > 0) std::this_thread::sleep_for(up.NextDelay());
  }
  return 0;
}
