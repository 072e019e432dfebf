#include "edge/batch_wire.hpp"

#include <zstd.h>

#include "edgeloop_wire.pb.h"

namespace edgeloop::edge {

Result<std::string> EncodeUploadBatch(const UploadBatch& batch, const std::string& device_id) {
  if (batch.records.empty()) return Error(Errc::kInvalidArgument, "empty batch");
  wire::SampleBatch wb;
  for (const auto& r : batch.records) {
    wire::Sample* s = wb.add_samples();
    if (!s->ParseFromString(r.payload))
      return Error(Errc::kFormat, "spool record " + std::to_string(r.seq) + " is not a Sample");
    s->set_device_id(device_id);
    s->set_sequence(r.seq);
  }
  std::string raw = wb.SerializeAsString();
  std::string body(ZSTD_compressBound(raw.size()), '\0');
  size_t n = ZSTD_compress(body.data(), body.size(), raw.data(), raw.size(), 3);
  if (ZSTD_isError(n)) return Error(Errc::kInternal, ZSTD_getErrorName(n));
  body.resize(n);
  return body;
}

}  // namespace edgeloop::edge
