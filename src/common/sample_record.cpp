#include "common/sample_record.hpp"

#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <cstring>

#include "common/pixel.hpp"

namespace edgeloop {
namespace {

constexpr uint32_t kRecordMagic = 0x454c5331;  // "ELS1"
constexpr uint32_t kMaxRecordBytes = 1u << 30;

void PutU32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t GetU32(const unsigned char* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

uint32_t Crc(const char* data, size_t n) {
  return static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(data), n));
}

}  // namespace

std::string SampleSegmentPath(const std::string& dir, int segment) {
  char name[32];
  std::snprintf(name, sizeof(name), "seg-%06d.log", segment);
  return dir + "/" + name;
}

uint32_t AppendSampleRecord(const wire::Sample& sample, std::string& out) {
  const size_t payload = sample.ByteSizeLong();
  const size_t start = out.size();
  out.resize(start + kSampleRecordHeaderBytes + payload);
  auto* body = reinterpret_cast<uint8_t*>(out.data() + start + kSampleRecordHeaderBytes);
  sample.SerializeWithCachedSizesToArray(body);
  std::string header;
  PutU32(header, kRecordMagic);
  PutU32(header, static_cast<uint32_t>(payload));
  PutU32(header, Crc(reinterpret_cast<const char*>(body), payload));
  std::memcpy(out.data() + start, header.data(), kSampleRecordHeaderBytes);
  return static_cast<uint32_t>(payload);
}

std::string EncodeSampleRecord(const wire::Sample& sample) {
  std::string out;
  AppendSampleRecord(sample, out);
  return out;
}

Result<wire::Sample> ReadSampleRecord(int fd, uint64_t pos, uint32_t length,
                                      const std::string& where) {
  if (length > kMaxRecordBytes)
    return Error(Errc::kFormat, where + ": record length " + std::to_string(length) + " at " +
                                    std::to_string(pos) + " is implausible");
  std::string buf(kSampleRecordHeaderBytes + length, '\0');
  ssize_t n = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(pos));
  if (n != static_cast<ssize_t>(buf.size()))
    return Error(Errc::kIo, where + ": short read at " + std::to_string(pos));
  const auto* p = reinterpret_cast<const unsigned char*>(buf.data());
  if (GetU32(p) != kRecordMagic || GetU32(p + 4) != length ||
      GetU32(p + 8) != Crc(buf.data() + kSampleRecordHeaderBytes, length))
    return Error(Errc::kFormat, where + ": record checksum mismatch at " + std::to_string(pos));
  wire::Sample sample;
  if (!sample.ParseFromArray(buf.data() + kSampleRecordHeaderBytes, static_cast<int>(length)))
    return Error(Errc::kFormat, where + ": unparsable record at " + std::to_string(pos));
  return sample;
}

void SetTensorValues(wire::Tensor* t, const float* values, size_t n) {
  t->clear_values();
  t->clear_pixels();
  std::string pixels(n, '\0');
  if (n > 0 && ToPixels(values, n, reinterpret_cast<uint8_t*>(pixels.data()))) {
    t->set_pixels(std::move(pixels));
  } else {
    t->mutable_values()->Add(values, values + n);
  }
}

int64_t TensorValueCount(const wire::Tensor& t) {
  if (t.values_size() > 0 && !t.pixels().empty()) return -1;
  return t.values_size() > 0 ? t.values_size() : static_cast<int64_t>(t.pixels().size());
}

std::vector<float> TensorValues(const wire::Tensor& t) {
  if (t.values_size() > 0) return {t.values().begin(), t.values().end()};
  std::vector<float> out(t.pixels().size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = PixelValue(static_cast<uint8_t>(t.pixels()[i]));
  return out;
}

}  // namespace edgeloop
