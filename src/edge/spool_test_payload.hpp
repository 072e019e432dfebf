// The payload the spool tests store for a sequence number: its length and bytes depend on the
// number, so a misplaced, duplicated or damaged record cannot pass as the right one.
#pragma once

#include <cstdint>
#include <string>

namespace edgeloop::edge {

inline std::string TestPayload(uint64_t seq) {
  std::string s = "record-" + std::to_string(seq) + ":";
  s.append(static_cast<size_t>(seq * 7919 % 300), static_cast<char>('a' + seq % 26));
  return s;
}

}  // namespace edgeloop::edge
