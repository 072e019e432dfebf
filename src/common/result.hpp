// Errors as values. A Result<T> holds either a T or an Error; an Error carries a category
// (what kind of failure, for exit codes and HTTP statuses) and a message that names the
// file or input and the problem. WithContext() prefixes where it happened.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace edgeloop {

enum class Errc {
  kInvalidArgument = 1,  // bad user input: flags, values
  kNotFound,             // missing file, model, record
  kIo,                   // read/write failed
  kFormat,               // malformed file or message
  kUnsupported,          // valid but not handled (an ONNX op, a dtype)
  kMismatch,             // shapes, classes, hashes that do not fit together
  kResourceExhausted,    // limits: sizes, memory, disk full
  kPermission,           // auth, signatures
  kInternal,
  kUnavailable,  // a server or service could not be reached
};

const char* ErrcName(Errc code);

struct Error {
  Errc code = Errc::kInternal;
  std::string message;

  Error() = default;
  Error(Errc c, std::string m) : code(c), message(std::move(m)) {}

  // Returns a copy whose message reads "<context>: <message>".
  Error WithContext(const std::string& context) const {
    return Error(code, context + ": " + message);
  }
};

template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Result<void>: success or an Error.
class Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT
  static Status Ok() { return Status(); }
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

}  // namespace edgeloop

// Propagate an error from an expression returning Status or Result<T>.
#define EDGELOOP_RETURN_IF_ERROR(expr) \
  do {                                 \
    auto _st = (expr);                 \
    if (!_st.ok()) return _st.error(); \
  } while (0)

#define EDGELOOP_CONCAT_INNER(a, b) a##b
#define EDGELOOP_CONCAT(a, b) EDGELOOP_CONCAT_INNER(a, b)
// EDGELOOP_ASSIGN_OR_RETURN(auto x, Compute()); declares x or returns the error.
#define EDGELOOP_ASSIGN_OR_RETURN(decl, expr)                                                  \
  auto EDGELOOP_CONCAT(_res_, __LINE__) = (expr);                                              \
  if (!EDGELOOP_CONCAT(_res_, __LINE__).ok()) return EDGELOOP_CONCAT(_res_, __LINE__).error(); \
  decl = std::move(EDGELOOP_CONCAT(_res_, __LINE__)).value()
