# Writes a C file holding the OpenCL sources as byte arrays.
# Run as: cmake -DOUTPUT=<file.c> -DSOURCES=<a.cl;b.clh;...> -DBASE=<src dir>
#         -P embed_kernels.cmake
# Each source is named by its path relative to BASE (e.g. ops/dcnv4/dcnv4_forward.cl).
set(body "/* Generated from the .cl and .clh files under src/ by cmake/embed_kernels.cmake. Do not edit. */\n")
string(APPEND body "#include \"core/internal.h\"\n\n")
set(table "")
set(index 0)
foreach(path IN LISTS SOURCES)
  file(RELATIVE_PATH name "${BASE}" "${path}")
  file(READ "${path}" hex HEX)
  string(LENGTH "${hex}" hex_length)
  math(EXPR size "${hex_length} / 2")
  # Two hex digits per byte -> "0xNN," ; a terminating zero keeps it a string.
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){16})" "\\1\n  " bytes "${bytes}")
  string(APPEND body "static const char source_${index}[] = {\n  ${bytes}0x00};\n\n")
  string(APPEND table "  {\"${name}\", source_${index}, ${size}},\n")
  math(EXPR index "${index} + 1")
endforeach()
string(APPEND body "const dcn_embedded_source dcn_embedded_sources[] = {\n${table}};\n")
string(APPEND body "const size_t dcn_embedded_source_count = ${index};\n")
# Only touch the file when it changes, so dependants are not rebuilt needlessly.
if(EXISTS "${OUTPUT}")
  file(READ "${OUTPUT}" previous)
  if(previous STREQUAL body)
    return()
  endif()
endif()
file(WRITE "${OUTPUT}" "${body}")
