// Tensors of the edge runtime: a data type, a shape and a pointer into memory the runtime
// owns (the arena planned at load, an initializer, or the caller's input buffer).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace edgeloop::runtime {

// The element types the runtime computes with (ONNX TensorProto.DataType numbering).
enum class DType : int32_t {
  kUndefined = 0,
  kFloat32 = 1,
  kUint8 = 2,
  kInt8 = 3,
  kInt32 = 6,
  kInt64 = 7,
  kBool = 9,
  kFloat64 = 11,
};

size_t DTypeSize(DType t);                          // 0 for kUndefined
const char* DTypeName(DType t);                     // "float32", ...
bool DTypeFromOnnx(int32_t onnx_type, DType* out);  // false for types the runtime lacks

using Shape = std::vector<int64_t>;

// Number of elements; -1 when a dimension is negative or the product overflows int64.
int64_t NumElements(const Shape& s);
std::string ShapeString(const Shape& s);  // "[1,3,28,28]"

struct TensorInfo {
  DType dtype = DType::kUndefined;
  Shape shape;
  size_t bytes() const { return static_cast<size_t>(NumElements(shape)) * DTypeSize(dtype); }
};

// A non-owning view.
struct Tensor {
  DType dtype = DType::kUndefined;
  Shape shape;
  void* data = nullptr;

  int64_t size() const { return NumElements(shape); }
  size_t bytes() const { return static_cast<size_t>(size()) * DTypeSize(dtype); }
  template <typename T>
  T* as() const {
    return static_cast<T*>(data);
  }
};

// An owning tensor, for initializers, constants and results handed to callers.
struct OwnedTensor {
  DType dtype = DType::kUndefined;
  Shape shape;
  std::vector<unsigned char> bytes;

  Tensor view() const { return Tensor{dtype, shape, const_cast<unsigned char*>(bytes.data())}; }
  template <typename T>
  const T* as() const {
    return reinterpret_cast<const T*>(bytes.data());
  }
  template <typename T>
  T* as() {
    return reinterpret_cast<T*>(bytes.data());
  }
};

}  // namespace edgeloop::runtime
