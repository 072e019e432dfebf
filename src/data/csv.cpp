// CSV reader (the writer is csv_write.cpp): a header row, numeric feature columns, one label
// column.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <string_view>

#include "common/file.hpp"
#include "data/dataset.hpp"

namespace edgeloop::data {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// Splits one line into fields. Double-quoted fields (with "" as an escaped quote) may hold
// commas; quoted newlines are not supported because rows are read line by line.
Result<std::vector<std::string>> SplitLine(std::string_view line, const std::string& where) {
  std::vector<std::string> fields;
  std::string cur;
  bool quoted = false, was_quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        cur.push_back('"');
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        cur.push_back(c);
      }
    } else if (c == '"' && Trim(cur).empty()) {
      quoted = true;
      was_quoted = true;
      cur.clear();
    } else if (c == ',') {
      fields.push_back(was_quoted ? cur : std::string(Trim(cur)));
      cur.clear();
      was_quoted = false;
    } else {
      cur.push_back(c);
    }
  }
  if (quoted) return Error(Errc::kFormat, where + ": unterminated quoted field");
  fields.push_back(was_quoted ? cur : std::string(Trim(cur)));
  return fields;
}

bool ParseFloat(const std::string& s, float* out) {
  if (s.empty()) return false;
  const char* begin = s.data();
  if (*begin == '+') ++begin;  // from_chars rejects a leading '+', people write it
  auto [ptr, ec] = std::from_chars(begin, s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size() && std::isfinite(*out);
}

bool ParseLabelInt(const std::string& s, int32_t* out) {
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size() && *out >= 0;
}

// Integer labels at or above this are treated as names: "0".."K-1" class lists stay small.
constexpr int32_t kMaxIntegerLabel = 100000;

}  // namespace

Result<Dataset> LoadCsv(const std::string& path, const std::string& label_column) {
  EDGELOOP_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  std::string_view rest(text);
  size_t line_no = 0;
  auto next_line = [&](std::string_view* line) {
    if (rest.empty()) return false;
    size_t nl = rest.find('\n');
    *line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    ++line_no;
    return true;
  };

  std::string_view line;
  bool have_header = false;
  while (next_line(&line)) {
    if (!Trim(line).empty()) {
      have_header = true;
      break;
    }
  }
  if (!have_header) return Error(Errc::kFormat, path + ": empty CSV file (no header row)");
  if (line_no == 1 && line.substr(0, 3) == "\xEF\xBB\xBF") line.remove_prefix(3);  // UTF-8 BOM
  EDGELOOP_ASSIGN_OR_RETURN(auto header, SplitLine(line, path + ":" + std::to_string(line_no)));
  auto label_it = std::find(header.begin(), header.end(), label_column);
  if (label_it == header.end())
    return Error(Errc::kFormat, path + ": no label column '" + label_column + "' in the header");
  const size_t label_idx = static_cast<size_t>(label_it - header.begin());
  const size_t num_features = header.size() - 1;
  if (num_features == 0)
    return Error(Errc::kFormat, path + ": no feature columns besides '" + label_column + "'");

  Dataset d;
  d.sample_shape = {static_cast<int64_t>(num_features)};
  std::vector<std::string> labels;
  while (next_line(&line)) {
    if (Trim(line).empty()) continue;
    const std::string where = path + ":" + std::to_string(line_no);
    EDGELOOP_ASSIGN_OR_RETURN(auto fields, SplitLine(line, where));
    if (fields.size() != header.size())
      return Error(Errc::kFormat, where + ": line " + std::to_string(line_no) + " has " +
                                      std::to_string(fields.size()) + " columns, the header has " +
                                      std::to_string(header.size()));
    for (size_t c = 0; c < fields.size(); ++c) {
      if (c == label_idx) continue;
      float v;
      if (!ParseFloat(fields[c], &v))
        return Error(Errc::kFormat, where + ": line " + std::to_string(line_no) + ", column '" +
                                        header[c] + "': '" + fields[c] +
                                        "' is not a finite number");
      d.x.push_back(v);
    }
    if (fields[label_idx].empty())
      return Error(Errc::kFormat,
                   where + ": line " + std::to_string(line_no) + " has an empty label");
    labels.push_back(std::move(fields[label_idx]));
  }
  if (labels.empty()) return Error(Errc::kFormat, path + ": dataset is empty (no data rows)");

  // All integers: the label is the class index. Otherwise: names, classes sorted by name.
  bool all_int = true;
  int32_t max_int = -1;
  for (const auto& l : labels) {
    int32_t v;
    if (!ParseLabelInt(l, &v) || v > kMaxIntegerLabel) {
      all_int = false;
      break;
    }
    max_int = std::max(max_int, v);
  }
  d.y.reserve(labels.size());
  if (all_int) {
    for (int32_t k = 0; k <= max_int; ++k) d.class_names.push_back(std::to_string(k));
    for (const auto& l : labels) {
      int32_t v = 0;
      ParseLabelInt(l, &v);
      d.y.push_back(v);
    }
  } else {
    std::set<std::string> names(labels.begin(), labels.end());
    d.class_names.assign(names.begin(), names.end());
    std::map<std::string, int32_t> index;
    for (size_t k = 0; k < d.class_names.size(); ++k)
      index[d.class_names[k]] = static_cast<int32_t>(k);
    for (const auto& l : labels) d.y.push_back(index[l]);
  }
  d.source = "csv:" + path;
  d.hash = ComputeHash(d);
  return d;
}

}  // namespace edgeloop::data
