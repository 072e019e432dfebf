// JSON and YAML parsing with limits, for every document that comes from the network or a
// file. A document over a limit is refused with an error naming the limit, before the parser
// has spent more than the limit's worth of memory: sizes are checked before parsing, depth
// and node counts while parsing, and YAML aliases count as the nodes they expand to (so a
// few hundred bytes of nested anchors cannot unfold into gigabytes).
//
// YAML is converted to JSON as it is parsed (plain scalars that read as integers, floats or
// booleans become numbers and booleans; quoted scalars stay strings; ~ and empty are null).
// Only the first document of a stream is read. Thread-safe: no shared state.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace edgeloop {

struct ParseLimits {
  size_t max_bytes = 1 << 20;   // document size
  int max_depth = 64;           // nesting of objects/arrays (mappings/sequences)
  size_t max_nodes = 100000;    // values in the document, aliases expanded
  size_t max_string = 1 << 20;  // one string or scalar
};

// `origin` names the document in errors ("POST /v1/pipelines", "server.yaml").
// Errors: kFormat for malformed documents and for every limit (the message names it).
Result<nlohmann::json> ParseJsonBounded(std::string_view text, const std::string& origin,
                                        const ParseLimits& limits = {});
Result<nlohmann::json> ParseYamlBounded(std::string_view text, const std::string& origin,
                                        const ParseLimits& limits = {});

}  // namespace edgeloop
