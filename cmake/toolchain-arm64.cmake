# Cross-compiling for arm64 (aarch64) devices with Debian's crossbuild-essential-arm64 and the
# :arm64 -dev packages installed beside the amd64 ones (multiarch): the libraries are found in
# /usr/lib/aarch64-linux-gnu, the headers in /usr/include. Two packages cannot be installed
# that way on Debian 12 (libonnxifi ships /usr/lib/libonnxifi.so outside the multiarch
# directory, and libyaml-cpp-dev is not Multi-Arch: same), so scripts/arm64-build unpacks their
# arm64 .debs into EDGELOOP_ARM64_PREFIX and their CMake packages are taken from there.
# Tests run under qemu-user-static (CMAKE_CROSSCOMPILING_EMULATOR), so ctest works as usual.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64-static)

# pkg-config must read the arm64 .pc files only.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")

# Build tools run on the build machine: protoc is the amd64 one (same protobuf version).
set(Protobuf_PROTOC_EXECUTABLE /usr/bin/protoc CACHE FILEPATH "protoc of the build machine")

if(DEFINED ENV{EDGELOOP_ARM64_PREFIX})
  set(EDGELOOP_ARM64_PREFIX "$ENV{EDGELOOP_ARM64_PREFIX}")
endif()
if(EDGELOOP_ARM64_PREFIX)
  set(ONNX_DIR "${EDGELOOP_ARM64_PREFIX}/usr/lib/aarch64-linux-gnu/cmake/ONNX" CACHE PATH "")
  set(yaml-cpp_DIR "${EDGELOOP_ARM64_PREFIX}/usr/lib/aarch64-linux-gnu/cmake/yaml-cpp"
      CACHE PATH "")
endif()
