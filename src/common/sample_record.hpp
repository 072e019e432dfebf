// The on-disk record of one sample in a sample-store segment: magic "ELS1", payload length,
// CRC-32 of the payload (all little-endian u32), then the serialized wire::Sample.
//
// Shared by the server's sample store (which writes segments) and the dataset loader in
// src/data (which reads dataset snapshots straight from the segments, without the server).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "edgeloop_wire.pb.h"

namespace edgeloop {

constexpr uint32_t kSampleRecordHeaderBytes = 12;

// "<dir>/seg-000042.log".
std::string SampleSegmentPath(const std::string& dir, int segment);
// Header and payload of one record, ready to append to a segment.
std::string EncodeSampleRecord(const wire::Sample& sample);
// The same record appended to `out` without a copy of the payload; returns the payload's length.
uint32_t AppendSampleRecord(const wire::Sample& sample, std::string& out);
// Decodes the record of `length` payload bytes at `pos` of an open segment (fd); checks magic,
// length and CRC before parsing. `where` names the segment in errors.
Result<wire::Sample> ReadSampleRecord(int fd, uint64_t pos, uint32_t length,
                                      const std::string& where);

// A tensor's values in the smaller exact form: 8-bit pixels when every value is b / 255 for
// a byte b (decoded images, IDX samples), float values otherwise. Replaces what t held.
void SetTensorValues(wire::Tensor* t, const float* values, size_t n);
// How many values t carries in either form; -1 when it carries both (a malformed tensor).
int64_t TensorValueCount(const wire::Tensor& t);
// The values of t as floats, pixels read as b / 255 (PixelValue).
std::vector<float> TensorValues(const wire::Tensor& t);

}  // namespace edgeloop
