# edgeloop_device_code(<target>): code that edgeloop-agent links. Each function and each
# object goes into its own section, so that the agent's link with --gc-sections
# (src/cli/CMakeLists.txt) keeps what the agent reaches rather than every file that defines
# one function it calls: reading IDX files without the IDX writer beside it, the protobuf
# messages it sends without the rest of their file.
function(edgeloop_device_code target)
  target_compile_options(${target} PRIVATE -ffunction-sections -fdata-sections)
endfunction()
