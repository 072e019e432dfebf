// A TCP port on 127.0.0.1 that the system just reported free (bound to port 0, then closed),
// for a child server that must be told its port before it starts: the demo's server and the
// tests' and benchmarks' server processes. -1 when no socket could be bound.
#pragma once

namespace edgeloop {

int FreeLoopbackPort();

}  // namespace edgeloop
