# Writes OUT from IN with EDGELOOP_GIT_VERSION set to `git describe` of SOURCE_DIR, touching OUT
# only when the text changes. Run at every build (src/common/CMakeLists.txt), so the version
# that models' lineage and benchmarks' JSON record is the commit actually built, not the one
# that was checked out when CMake was configured.
execute_process(COMMAND git describe --always --dirty --tags
                WORKING_DIRECTORY ${SOURCE_DIR}
                OUTPUT_VARIABLE EDGELOOP_GIT_VERSION OUTPUT_STRIP_TRAILING_WHITESPACE
                ERROR_QUIET)
if(NOT EDGELOOP_GIT_VERSION)
  set(EDGELOOP_GIT_VERSION "unknown")
endif()
configure_file(${IN} ${OUT}.new @ONLY)
file(COPY_FILE ${OUT}.new ${OUT} ONLY_IF_DIFFERENT)
file(REMOVE ${OUT}.new)
