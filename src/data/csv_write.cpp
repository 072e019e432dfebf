// CSV writer (the reader is csv.cpp): exports and tests write datasets as CSV. Training side
// only, in edgeloop_data; the agent reads CSV but never writes it.
#include <charconv>
#include <string>

#include "common/file.hpp"
#include "data/dataset.hpp"

namespace edgeloop::data {

Status WriteCsv(const Dataset& d, const std::string& path) {
  auto text = EncodeCsv(d);
  if (!text.ok()) return text.error().WithContext(path);
  return WriteFileAtomic(path, *text);
}

Result<std::string> EncodeCsv(const Dataset& d) {
  const size_t numel = d.sample_numel();
  if (d.x.size() != d.size() * numel)
    return Error(Errc::kInternal, "dataset has inconsistent sizes");
  // Labels are written as class indices, not names: reading the file back must give the same
  // class order, which a model trained on the original depends on.
  std::string out;
  for (size_t j = 0; j < numel; ++j) {
    out.push_back(d.is_image() ? 'p' : 'f');
    out += std::to_string(j);
    out.push_back(',');
  }
  out += "label\n";
  char buf[32];
  for (size_t i = 0; i < d.size(); ++i) {
    if (d.y[i] < 0)
      return Error(Errc::kUnsupported,
                   "sample " + std::to_string(i) + " is unlabelled; CSV needs labels");
    const float* s = d.sample(i);
    for (size_t j = 0; j < numel; ++j) {
      // Shortest representation that reads back to the same float.
      auto r = std::to_chars(buf, buf + sizeof(buf), s[j]);
      out.append(buf, r.ptr);
      out.push_back(',');
    }
    out += std::to_string(d.y[i]);
    out.push_back('\n');
  }
  return out;
}

}  // namespace edgeloop::data
