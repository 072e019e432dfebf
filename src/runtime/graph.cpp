#include "runtime/graph.hpp"

namespace edgeloop::runtime {

int64_t Node::Int(const std::string& a, int64_t dflt) const {
  auto it = attrs.find(a);
  return it == attrs.end() ? dflt : it->second.i;
}

float Node::Float(const std::string& a, float dflt) const {
  auto it = attrs.find(a);
  if (it == attrs.end()) return dflt;
  return it->second.kind == Attribute::Kind::kInt ? static_cast<float>(it->second.i) : it->second.f;
}

std::string Node::String(const std::string& a, const std::string& dflt) const {
  auto it = attrs.find(a);
  return it == attrs.end() ? dflt : it->second.s;
}

std::vector<int64_t> Node::Ints(const std::string& a, std::vector<int64_t> dflt) const {
  auto it = attrs.find(a);
  return it == attrs.end() ? dflt : it->second.ints;
}

}  // namespace edgeloop::runtime
