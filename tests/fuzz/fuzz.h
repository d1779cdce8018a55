/* libFuzzer entry shared by the fuzz targets of this folder. Each target
 * defines LLVMFuzzerTestOneInput; with DCNV4_BUILD_FUZZERS (clang) it links
 * with -fsanitize=fuzzer, and in every build it also links with replay.c,
 * which feeds it the committed corpus files (seeds and regression inputs).
 * A target reports a broken invariant with FUZZ_CHECK, which aborts. */
#ifndef DCNV4_FUZZ_H
#define DCNV4_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__,     \
              #cond);                                                          \
      abort();                                                                 \
    }                                                                          \
  } while (0)

#endif
