// Hostile documents shared by the parser tests and the server tests.
#pragma once

#include <string>

namespace edgeloop::testing {

// Nine levels of YAML anchors, each a list of ten aliases of the one before: 10^9 leaves
// once expanded, in a few hundred bytes ("billion laughs").
inline std::string AliasBombYaml() {
  std::string doc = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i <= 9; ++i) {
    std::string prev = "*a" + std::to_string(i - 1);
    doc += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int k = 0; k < 10; ++k) doc += (k ? ", " : "") + prev;
    doc += "]\n";
  }
  return doc;
}

}  // namespace edgeloop::testing
