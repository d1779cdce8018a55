# Installs the build into a fresh prefix and builds consumers against it:
# find_package (shared and static) and pkg-config, and the installed header
# with -std=c99 -pedantic -Werror.
# cmake -DBUILD_DIR=... -DSOURCE_DIR=... -DWORK_DIR=... [-DSANITIZE=...]
#       -P install_test.cmake
# SANITIZE: the build's DCNV4_SANITIZE; the consumers are built with the same
# -fsanitize flags (the installed static library needs their runtimes).
file(REMOVE_RECURSE "${WORK_DIR}")
set(san_flags "")
if(SANITIZE)
  set(san_flags "-fsanitize=${SANITIZE}")
endif()
set(prefix "${WORK_DIR}/prefix")
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

run(${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${prefix}")
foreach(f include/dcnv4.h bin/dcnv4-run bin/dcnv4-devices)
  if(NOT EXISTS "${prefix}/${f}")
    message(FATAL_ERROR "${f} was not installed")
  endif()
endforeach()
file(GLOB_RECURSE config "${prefix}/*/dcnv4Config.cmake")
file(GLOB_RECURSE pc "${prefix}/*/dcnv4.pc")
file(GLOB_RECURSE static_lib "${prefix}/*/libdcnv4.a")
if(NOT config OR NOT pc OR NOT static_lib)
  message(FATAL_ERROR "package files missing: '${config}' '${pc}' '${static_lib}'")
endif()

# find_package
run(${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${WORK_DIR}/consumer"
    "-DCMAKE_PREFIX_PATH=${prefix}" "-DCMAKE_C_FLAGS=${san_flags}"
    "-DCMAKE_EXE_LINKER_FLAGS=${san_flags}")
run(${CMAKE_COMMAND} --build "${WORK_DIR}/consumer")
run("${WORK_DIR}/consumer/consumer_shared")
run("${WORK_DIR}/consumer/consumer_static")

# pkg-config
get_filename_component(pc_dir "${pc}" DIRECTORY)
get_filename_component(lib_dir "${pc_dir}" DIRECTORY)
set(ENV{PKG_CONFIG_PATH} "${pc_dir}")
run(pkg-config --cflags --libs dcnv4)
string(STRIP "${last_output}" flags)
separate_arguments(flags UNIX_COMMAND "${flags}")
run(cc -std=c99 -pedantic -Wall -Wextra -Werror ${san_flags}
    "${SOURCE_DIR}/consumer.c" ${flags} -o "${WORK_DIR}/consumer_pc" "-Wl,-rpath,${lib_dir}")
run("${WORK_DIR}/consumer_pc")
run(pkg-config --static --libs dcnv4)
message(STATUS "install test passed: ${prefix}")
