# The fuzz tree (-DEGRESS_FUZZ=ON, clang): every object is built with
# libFuzzer's coverage and ASan + UBSan, and UBSan does not recover, so any
# finding stops the run with a reproducer. Only what the fuzz targets link is
# configured here (no libbpf, no daemon), which keeps this tree small: the main
# tree builds it on every build (tests/fuzz/CMakeLists.txt).
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "EGRESS_FUZZ needs clang (libFuzzer): configure with "
    "-DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++")
endif()

set(EGRESS_FUZZ_SANITIZERS -fsanitize=address,undefined
  -fno-sanitize-recover=all -fno-omit-frame-pointer)
# -O1 and line tables only: this tree is compiled on every build and in CI,
# and the sanitizers' reports need no more.
add_compile_options(-O1 -gline-tables-only -fsanitize=fuzzer-no-link
  ${EGRESS_FUZZ_SANITIZERS})
add_link_options(${EGRESS_FUZZ_SANITIZERS})

find_package(absl REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(Threads REQUIRED)

add_subdirectory(bpf)  # egress_abi only in this tree
add_subdirectory(userspace/common)
add_subdirectory(userspace/policy)
add_subdirectory(userspace/control)
add_subdirectory(userspace/events)
add_subdirectory(userspace/cli)  # egress_cli only in this tree
add_subdirectory(tests/fuzz/targets)
