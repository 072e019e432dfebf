// The code version (git describe at configure time), recorded in every model's lineage and
// printed by `edgeloop --version`. Only version.cpp sees the string, so a new commit
// recompiles one file, not every target.
#pragma once

namespace edgeloop {
const char* CodeVersionString();
}  // namespace edgeloop
