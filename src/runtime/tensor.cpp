#include "runtime/tensor.hpp"

#include <limits>

namespace edgeloop::runtime {

size_t DTypeSize(DType t) {
  switch (t) {
    case DType::kFloat32:
      return 4;
    case DType::kUint8:
      return 1;
    case DType::kInt8:
      return 1;
    case DType::kInt32:
      return 4;
    case DType::kInt64:
      return 8;
    case DType::kBool:
      return 1;
    case DType::kFloat64:
      return 8;
    case DType::kUndefined:
      return 0;
  }
  return 0;
}

const char* DTypeName(DType t) {
  switch (t) {
    case DType::kFloat32:
      return "float32";
    case DType::kUint8:
      return "uint8";
    case DType::kInt8:
      return "int8";
    case DType::kInt32:
      return "int32";
    case DType::kInt64:
      return "int64";
    case DType::kBool:
      return "bool";
    case DType::kFloat64:
      return "float64";
    case DType::kUndefined:
      return "undefined";
  }
  return "?";
}

bool DTypeFromOnnx(int32_t onnx_type, DType* out) {
  switch (onnx_type) {
    case 1:
      *out = DType::kFloat32;
      return true;
    case 2:
      *out = DType::kUint8;
      return true;
    case 3:
      *out = DType::kInt8;
      return true;
    case 6:
      *out = DType::kInt32;
      return true;
    case 7:
      *out = DType::kInt64;
      return true;
    case 9:
      *out = DType::kBool;
      return true;
    case 11:
      *out = DType::kFloat64;
      return true;
    default:
      return false;
  }
}

int64_t NumElements(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    if (d < 0) return -1;
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d) return -1;
    n *= d;
  }
  return n;
}

std::string ShapeString(const Shape& s) {
  std::string o = "[";
  for (size_t i = 0; i < s.size(); ++i) o += (i ? "," : "") + std::to_string(s[i]);
  return o + "]";
}

}  // namespace edgeloop::runtime
