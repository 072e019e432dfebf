// JPEG decoding and encoding with libjpeg-turbo. libjpeg reports errors by calling error_exit, whose
// default ends the process, and reports corrupt or truncated data only as warnings while it
// goes on decoding grey filler; the error manager here turns both into a longjmp back to
// the call that started the step, so a bad file becomes an error value.
//
// The setjmp sits in small functions that hold no C++ objects with destructors, and the
// state libjpeg touches lives in JpegDecoder, owned by the caller, so a longjmp skips no
// destructor and reads no clobbered local.
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>

// jpeglib.h needs size_t and FILE declared first.
#include <jpeglib.h>
#include <jerror.h>

#include "data/image_codecs.hpp"

namespace edgeloop::data::detail {
namespace {

struct JpegErrorManager {
  jpeg_error_mgr pub;  // first, so libjpeg's pointer to it is a pointer to the whole
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void ExitWithError(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// The warnings that mean the pixels are not the file's: libjpeg would fill them in.
bool IsDataCorruption(int code) {
  switch (code) {
    case JWRN_JPEG_EOF:
    case JWRN_HIT_MARKER:
    case JWRN_MUST_RESYNC:
    case JWRN_HUFF_BAD_CODE:
    case JWRN_ARITH_BAD_CODE:
    case JWRN_BOGUS_PROGRESSION:
    case JWRN_NOT_SEQUENTIAL:
      return true;
    default:
      return false;
  }
}

// Level -1 is a warning; higher levels are trace output, ignored like the other warnings
// (an unknown JFIF revision, a bad ICC marker, extraneous bytes between markers).
void EmitMessage(j_common_ptr cinfo, int msg_level) {
  if (msg_level == -1 && IsDataCorruption(cinfo->err->msg_code)) ExitWithError(cinfo);
}

struct JpegDecoder {
  jpeg_decompress_struct cinfo;
  JpegErrorManager err;

  JpegDecoder() {
    std::memset(&cinfo, 0, sizeof(cinfo));  // so destroying is safe whatever step failed
    std::memset(&err, 0, sizeof(err));
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = ExitWithError;
    err.pub.emit_message = EmitMessage;
  }
  ~JpegDecoder() { jpeg_destroy_decompress(&cinfo); }
  JpegDecoder(const JpegDecoder&) = delete;
  JpegDecoder& operator=(const JpegDecoder&) = delete;
};

// Each returns false with d.err.message set when libjpeg gave up.
bool ReadHeader(JpegDecoder& d, const unsigned char* data, unsigned long size) {
  if (setjmp(d.err.jump)) return false;
  jpeg_create_decompress(&d.cinfo);
  // jpeg_create_decompress resets the struct but keeps err; the source reads from memory.
  jpeg_mem_src(&d.cinfo, data, size);
  jpeg_read_header(&d.cinfo, TRUE);
  return true;
}

bool ReadPixels(JpegDecoder& d, unsigned char* out, size_t width, size_t height,
                size_t channels) {
  if (setjmp(d.err.jump)) return false;
  jpeg_start_decompress(&d.cinfo);
  if (d.cinfo.output_width != width || d.cinfo.output_height != height ||
      static_cast<size_t>(d.cinfo.output_components) != channels) {
    std::snprintf(d.err.message, sizeof(d.err.message),
                  "decoder output %ux%ux%d differs from the header", d.cinfo.output_width,
                  d.cinfo.output_height, d.cinfo.output_components);
    return false;
  }
  while (d.cinfo.output_scanline < d.cinfo.output_height) {
    JSAMPROW row = out + size_t{d.cinfo.output_scanline} * width * channels;
    jpeg_read_scanlines(&d.cinfo, &row, 1);
  }
  jpeg_finish_decompress(&d.cinfo);
  return true;
}

struct JpegEncoder {
  jpeg_compress_struct cinfo;
  JpegErrorManager err;
  unsigned char* out = nullptr;  // libjpeg's buffer (malloc'ed by jpeg_mem_dest)
  unsigned long size = 0;

  JpegEncoder() {
    std::memset(&cinfo, 0, sizeof(cinfo));
    std::memset(&err, 0, sizeof(err));
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = ExitWithError;
  }
  ~JpegEncoder() {
    jpeg_destroy_compress(&cinfo);
    std::free(out);
  }
  JpegEncoder(const JpegEncoder&) = delete;
  JpegEncoder& operator=(const JpegEncoder&) = delete;
};

// False with e.err.message set when libjpeg gave up.
bool Compress(JpegEncoder& e, const Image& image, int quality) {
  if (setjmp(e.err.jump)) return false;
  jpeg_create_compress(&e.cinfo);
  jpeg_mem_dest(&e.cinfo, &e.out, &e.size);
  e.cinfo.image_width = static_cast<JDIMENSION>(image.width);
  e.cinfo.image_height = static_cast<JDIMENSION>(image.height);
  e.cinfo.input_components = image.channels;
  e.cinfo.in_color_space = image.channels == 3 ? JCS_RGB : JCS_GRAYSCALE;
  jpeg_set_defaults(&e.cinfo);
  jpeg_set_quality(&e.cinfo, quality, TRUE);
  jpeg_start_compress(&e.cinfo, TRUE);
  const size_t stride = static_cast<size_t>(image.width) * static_cast<size_t>(image.channels);
  while (e.cinfo.next_scanline < e.cinfo.image_height) {
    // libjpeg's API takes non-const rows; it only reads them.
    JSAMPROW row = const_cast<JSAMPROW>(image.pixels.data() + e.cinfo.next_scanline * stride);
    jpeg_write_scanlines(&e.cinfo, &row, 1);
  }
  jpeg_finish_compress(&e.cinfo);
  return true;
}

}  // namespace

Result<Image> DecodeJpeg(std::string_view bytes, const std::string& name,
                         const ImageLimits& limits) {
  JpegDecoder d;
  if (!ReadHeader(d, reinterpret_cast<const unsigned char*>(bytes.data()),
                  static_cast<unsigned long>(bytes.size())))
    return Error(Errc::kFormat, name + ": unreadable JPEG header (" + d.err.message + ")");
  EDGELOOP_RETURN_IF_ERROR(CheckDeclaredSize(d.cinfo.image_width, d.cinfo.image_height, name, limits));
  Image img;
  switch (d.cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE:
      d.cinfo.out_color_space = JCS_GRAYSCALE;
      img.channels = 1;
      break;
    case JCS_YCbCr:
    case JCS_RGB:
      d.cinfo.out_color_space = JCS_RGB;
      img.channels = 3;
      break;
    case JCS_CMYK:
    case JCS_YCCK:
      return Error(Errc::kUnsupported,
                   name + ": CMYK JPEG (print colour) is not supported; save it as RGB");
    default:
      return Error(Errc::kUnsupported, name + ": JPEG colour space " +
                                           std::to_string(d.cinfo.jpeg_color_space) +
                                           " is not supported (expected grayscale or RGB)");
  }
  img.width = static_cast<int>(d.cinfo.image_width);
  img.height = static_cast<int>(d.cinfo.image_height);
  img.pixels.resize(size_t{d.cinfo.image_width} * d.cinfo.image_height * img.channels);
  if (!ReadPixels(d, img.pixels.data(), d.cinfo.image_width, d.cinfo.image_height,
                  static_cast<size_t>(img.channels)))
    return Error(Errc::kFormat, name + ": corrupt or truncated JPEG (" + d.err.message + ")");
  return img;
}

Result<std::string> EncodeJpeg(const Image& image, int quality) {
  JpegEncoder e;
  if (!Compress(e, image, quality))
    return Error(Errc::kInternal, std::string("JPEG encoding: ") + e.err.message);
  return std::string(reinterpret_cast<const char*>(e.out), e.size);
}

}  // namespace edgeloop::data::detail
