# egress_add_bpf_skeleton(NAME <name> SOURCE <file.bpf.c> DEPENDS <headers...>)
# Builds <name>.bpf.o with clang -target bpf, generates <name>.skel.h with bpftool and
# exposes both through an INTERFACE target <name>_skel.
find_program(EGRESS_CLANG NAMES clang clang-14 REQUIRED)
find_program(EGRESS_BPFTOOL NAMES bpftool PATHS /usr/sbin /usr/local/sbin REQUIRED)

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64")
  set(EGRESS_BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64")
  set(EGRESS_BPF_ARCH arm64)
else()
  set(EGRESS_BPF_ARCH ${CMAKE_SYSTEM_PROCESSOR})
endif()

function(egress_add_bpf_skeleton)
  cmake_parse_arguments(ARG "" "NAME;SOURCE" "DEPENDS" ${ARGN})
  set(obj ${CMAKE_CURRENT_BINARY_DIR}/${ARG_NAME}.bpf.o)
  set(skel ${CMAKE_CURRENT_BINARY_DIR}/${ARG_NAME}.skel.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${EGRESS_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_${EGRESS_BPF_ARCH}
            -Wall -Werror
            -idirafter /usr/include/${CMAKE_LIBRARY_ARCHITECTURE}
            -I${CMAKE_CURRENT_SOURCE_DIR}/include -I${CMAKE_CURRENT_SOURCE_DIR}
            -c ${CMAKE_CURRENT_SOURCE_DIR}/${ARG_SOURCE} -o ${obj}
    DEPENDS ${ARG_SOURCE} ${ARG_DEPENDS}
    COMMENT "BPF ${ARG_SOURCE}")
  add_custom_command(
    OUTPUT ${skel}
    # Not VERBATIM: the redirection is for the shell.
    COMMAND ${EGRESS_BPFTOOL} gen skeleton ${obj} name ${ARG_NAME} > ${skel}.tmp
    COMMAND mv ${skel}.tmp ${skel}
    DEPENDS ${obj}
    COMMENT "skeleton ${ARG_NAME}.skel.h")
  add_custom_target(${ARG_NAME}_gen DEPENDS ${skel})
  add_library(${ARG_NAME}_skel INTERFACE)
  add_dependencies(${ARG_NAME}_skel ${ARG_NAME}_gen)
  target_include_directories(${ARG_NAME}_skel INTERFACE ${CMAKE_CURRENT_BINARY_DIR})
  target_link_libraries(${ARG_NAME}_skel INTERFACE PkgConfig::LIBBPF egress_abi)
endfunction()
