#include "common/delta.hpp"

#include <zstd.h>

#include <memory>

namespace edgeloop {
namespace {

struct CCtxFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct DCtxFree {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

// The smallest window log whose window covers `span` bytes (what patch-from needs to reach
// from the end of the target back to the start of the base).
// zstd's window log bounds (10 and 31 on 64-bit; the macros are in its static-only API).
int WindowLogFor(size_t span) {
  int log = 10;
  while (log < 31 && (size_t{1} << log) < span) ++log;
  return log;
}

std::string ZstdMessage(size_t code) {
  return ZSTD_getErrorName(code);
}

}  // namespace

Result<std::string> CreateDelta(std::string_view base, std::string_view target, int level) {
  if (level < 1 || level > ZSTD_maxCLevel())
    return Error(Errc::kInvalidArgument,
                 "delta: zstd level must be 1.." + std::to_string(ZSTD_maxCLevel()));
  if (base.size() + target.size() > kMaxDeltaSpan)
    return Error(Errc::kResourceExhausted, "delta: base and target together exceed 2 GiB");
  std::unique_ptr<ZSTD_CCtx, CCtxFree> cctx(ZSTD_createCCtx());
  if (!cctx) return Error(Errc::kInternal, "delta: out of memory for a zstd context");
  ZSTD_CCtx* c = cctx.get();
  const int window_log = WindowLogFor(base.size() + target.size());
  for (auto [param, value] :
       {std::pair{ZSTD_c_compressionLevel, level}, std::pair{ZSTD_c_windowLog, window_log},
        std::pair{ZSTD_c_enableLongDistanceMatching, 1}, std::pair{ZSTD_c_contentSizeFlag, 1},
        std::pair{ZSTD_c_checksumFlag, 1}}) {
    size_t rc = ZSTD_CCtx_setParameter(c, param, value);
    if (ZSTD_isError(rc))
      return Error(Errc::kInternal, "delta: zstd parameter: " + ZstdMessage(rc));
  }
  size_t rc = ZSTD_CCtx_setPledgedSrcSize(c, target.size());
  if (!ZSTD_isError(rc)) rc = ZSTD_CCtx_refPrefix(c, base.data(), base.size());
  if (ZSTD_isError(rc)) return Error(Errc::kInternal, "delta: zstd prefix: " + ZstdMessage(rc));
  std::string out(ZSTD_compressBound(target.size()), '\0');
  size_t n = ZSTD_compress2(c, out.data(), out.size(), target.data(), target.size());
  if (ZSTD_isError(n)) return Error(Errc::kInternal, "delta: zstd: " + ZstdMessage(n));
  out.resize(n);
  return out;
}

Result<std::string> ApplyDelta(std::string_view base, std::string_view delta, size_t max_output) {
  unsigned long long size = ZSTD_getFrameContentSize(delta.data(), delta.size());
  if (size == ZSTD_CONTENTSIZE_ERROR)
    return Error(Errc::kFormat, "delta: not a zstd frame (corrupt or truncated header)");
  if (size == ZSTD_CONTENTSIZE_UNKNOWN)
    return Error(Errc::kFormat, "delta: frame does not declare its content size");
  if (size > max_output)
    return Error(Errc::kResourceExhausted, "delta: result of " + std::to_string(size) +
                                               " bytes exceeds the limit of " +
                                               std::to_string(max_output));
  if (base.size() + size > kMaxDeltaSpan)
    return Error(Errc::kResourceExhausted, "delta: base and result together exceed 2 GiB");
  std::unique_ptr<ZSTD_DCtx, DCtxFree> dctx(ZSTD_createDCtx());
  if (!dctx) return Error(Errc::kInternal, "delta: out of memory for a zstd context");
  // The decoder accepts exactly the window the encoder may have used for this base and size,
  // so a frame asking for more memory than the span needs is refused by zstd itself.
  size_t rc = ZSTD_DCtx_setParameter(dctx.get(), ZSTD_d_windowLogMax,
                                     WindowLogFor(base.size() + static_cast<size_t>(size)));
  if (!ZSTD_isError(rc)) rc = ZSTD_DCtx_refPrefix(dctx.get(), base.data(), base.size());
  if (ZSTD_isError(rc)) return Error(Errc::kInternal, "delta: zstd prefix: " + ZstdMessage(rc));
  std::string out(static_cast<size_t>(size), '\0');
  size_t n = ZSTD_decompressDCtx(dctx.get(), out.data(), out.size(), delta.data(), delta.size());
  if (ZSTD_isError(n))
    return Error(Errc::kFormat,
                 "delta: cannot apply (corrupt delta or wrong base): " + ZstdMessage(n));
  if (n != out.size())
    return Error(Errc::kFormat, "delta: produced " + std::to_string(n) + " bytes, frame declared " +
                                    std::to_string(out.size()));
  return out;
}

}  // namespace edgeloop
