// CRC32C (Castagnoli), the checksum of spool records: detects torn and bit-flipped records.
// Software table implementation; thread-safe (the table is built once, on first use).
#pragma once

#include <cstddef>
#include <cstdint>

namespace edgeloop::edge {

// Extends `crc` (0 for a fresh checksum) over data.
uint32_t Crc32c(const void* data, size_t size, uint32_t crc = 0);

}  // namespace edgeloop::edge
