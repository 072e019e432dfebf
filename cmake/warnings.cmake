# edgeloop_warnings(<target>): strict warnings on our own code only; third-party headers
# come in as SYSTEM includes and are not affected.
function(edgeloop_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wno-unused-parameter)
  # GCC 12 reports -Wrestrict false positives inside libstdc++'s std::string at -O2/-O3
  # (GCC bug 105329); they say nothing about our code.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(${target} PRIVATE -Wno-restrict)
  endif()
  if(EDGELOOP_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# edgeloop_test(<name> SOURCES ... LIBS ... [LABELS ...] [RESOURCE_LOCK name]): one GoogleTest
# executable registered with CTest.
function(edgeloop_test name)
  cmake_parse_arguments(T "" "RESOURCE_LOCK;TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES} ${PROJECT_SOURCE_DIR}/tests/test_env.cpp)
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE EDGELOOP_TEST_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
                                             EDGELOOP_TEST_BINARY_DIR="${PROJECT_BINARY_DIR}")
  edgeloop_warnings(${name})
  set(env "")
  if(CMAKE_CROSSCOMPILING_EMULATOR)
    # Helper programs a test starts run under the emulator too (src/edge/test_util.hpp).
    list(JOIN CMAKE_CROSSCOMPILING_EMULATOR " " emulator)
    set(env ENVIRONMENT "EDGELOOP_TEST_EMULATOR=${emulator}")
  endif()
  if(T_TIMEOUT)
    list(APPEND env TIMEOUT ${T_TIMEOUT})  # seconds, for each test of the binary
  endif()
  if(T_RESOURCE_LOCK)
    # Tests holding the same lock never run at the same time (ctest -j still runs others).
    gtest_discover_tests(${name} DISCOVERY_TIMEOUT 120 PROPERTIES LABELS "${T_LABELS}"
                         RESOURCE_LOCK "${T_RESOURCE_LOCK}" ${env})
  else()
    gtest_discover_tests(${name} DISCOVERY_TIMEOUT 120 PROPERTIES LABELS "${T_LABELS}" ${env})
  endif()
endfunction()
