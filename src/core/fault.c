/* Fault injection for tests (compiled only with DCNV4_FAULT_INJECTION).
 *
 * The counter is thread-local test state, not library state: a test sets
 * DCNV4_FAULT_AT=n in its own thread via dcnv4_test_fault_set(), runs a
 * workload, and every allocation or wrapped OpenCL call counts one; the n-th
 * fails. */
#include "core/fault.h"

#ifdef DCNV4_FAULT_INJECTION
#include <string.h>

static _Thread_local long fault_at = 0; /* 0: never fail */
static _Thread_local long fault_count = 0;
static _Thread_local const char *fault_site = NULL;

DCNV4_API void dcnv4_test_fault_set(long fail_at) {
  fault_at = fail_at;
  fault_count = 0;
  fault_site = NULL;
}

DCNV4_API long dcnv4_test_fault_count(void) { return fault_count; }

DCNV4_API const char *dcnv4_test_fault_site(void) { return fault_site; }

bool dcn_fault_hit(const char *site) {
  fault_count++;
  if (fault_at > 0 && fault_count == fault_at) {
    fault_site = site;
    return true;
  }
  return false;
}
#else
/* Keeps the translation unit non-empty (ISO C). */
typedef int dcn_fault_unused;
#endif
