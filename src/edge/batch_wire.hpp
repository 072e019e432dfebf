// The wire form of an upload batch, the same over every transport (HTTPS POST /v1/ingest,
// MQTT edgeloop/devices/<id>/samples): one zstd frame (with its content size declared, which
// the server checks before it allocates) holding a wire::SampleBatch whose samples carry the
// device id and their spool sequence number.
#pragma once

#include <string>

#include "common/result.hpp"
#include "edge/uploader.hpp"

namespace edgeloop::edge {

// Errors: kInvalidArgument for an empty batch, kFormat naming a record that is not a
// serialized wire::Sample.
Result<std::string> EncodeUploadBatch(const UploadBatch& batch, const std::string& device_id);

}  // namespace edgeloop::edge
