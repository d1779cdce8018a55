/* Compiled with -std=c99 -pedantic -Werror on every build: the public header
 * must stay C99-clean. */
#include "dcnv4.h"

int dcnv4_c99_header_check(void);
int dcnv4_c99_header_check(void) { return DCNV4_VERSION_NUMBER > 0; }
