#include "common/result.hpp"

namespace edgeloop {

const char* ErrcName(Errc code) {
  switch (code) {
    case Errc::kInvalidArgument:
      return "invalid argument";
    case Errc::kNotFound:
      return "not found";
    case Errc::kIo:
      return "i/o error";
    case Errc::kFormat:
      return "bad format";
    case Errc::kUnsupported:
      return "unsupported";
    case Errc::kMismatch:
      return "mismatch";
    case Errc::kResourceExhausted:
      return "resource exhausted";
    case Errc::kPermission:
      return "permission denied";
    case Errc::kInternal:
      return "internal error";
    case Errc::kUnavailable:
      return "unavailable";
  }
  return "error";
}

}  // namespace edgeloop
