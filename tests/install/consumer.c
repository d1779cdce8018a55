/* Uses the installed header and library: version check, a shape query and a
 * context on the default device. C99 on purpose. */
#include <dcnv4.h>
#include <stdio.h>

int main(void) {
  dcnv4_params p;
  dcnv4_shape s;
  dcnv4_context *ctx = NULL;
  if (dcnv4_version() != DCNV4_VERSION_NUMBER) {
    fprintf(stderr, "header %s, library %s\n", DCNV4_VERSION_STRING,
            dcnv4_version_string());
    return 1;
  }
  dcnv4_params_init(&p);
  p.batch = 1;
  p.height_in = 8;
  p.width_in = 8;
  p.group = 2;
  p.group_channels = 16;
  if (dcnv4_get_shape(&p, &s) != DCNV4_SUCCESS || s.height_out != 8)
    return 1;
  if (dcnv4_context_create(NULL, &ctx) != DCNV4_SUCCESS)
    return 1;
  dcnv4_context_destroy(ctx);
  printf("dcnv4 %s consumer ok\n", dcnv4_version_string());
  return 0;
}
