/* The smallest complete use of the core operator: one DCNv4 forward on the
 * default device, on host data, with every status checked. The README shows
 * this program. */
#include <dcnv4.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
  dcnv4_context *ctx;
  if (dcnv4_context_create(NULL, &ctx) != DCNV4_SUCCESS) {
    fprintf(stderr, "no OpenCL device\n");
    return 1;
  }
  dcnv4_params p;
  dcnv4_params_init(&p); /* 3x3, stride 1, pad 1, fp32, ... */
  p.batch = 1;
  p.height_in = p.width_in = 16;
  p.group = 4;
  p.group_channels = 16; /* C = 64 */
  dcnv4_shape s;
  if (dcnv4_get_shape(&p, &s) != DCNV4_SUCCESS)
    return 1;

  float *input = calloc(s.input_elements, sizeof(float));
  float *offset_mask = calloc(s.offset_mask_elements, sizeof(float));
  float *output = malloc(s.output_bytes);
  for (size_t i = 0; i < s.input_elements; i++)
    input[i] = (float)(i % 7) - 3.0f;
  /* Zero offsets, every weight 1/K: a 3x3 box filter per channel. Group g's
   * lanes of a row: 2K offsets (dx, dy interleaved), then K weights. */
  for (size_t row = 0; row < s.offset_mask_elements / s.offset_mask_stride;
       row++)
    for (int g = 0; g < p.group; g++)
      for (int k = 0; k < s.points; k++)
        offset_mask[row * s.offset_mask_stride + g * s.points * 3 +
                    2 * s.points + k] = 1.0f / (float)s.points;

  cl_context cl = dcnv4_context_cl_context(ctx);
  cl_command_queue queue = dcnv4_context_queue(ctx);
  cl_int err;
  cl_mem in = clCreateBuffer(cl, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                             s.input_bytes, input, &err);
  cl_mem om = clCreateBuffer(cl, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                             s.offset_mask_bytes, offset_mask, &err);
  cl_mem out =
      clCreateBuffer(cl, CL_MEM_WRITE_ONLY, s.output_bytes, NULL, &err);
  dcnv4_status st = dcnv4_forward(ctx, &p, in, om, out, 0, NULL, NULL);
  if (st != DCNV4_SUCCESS)
    fprintf(stderr, "%s: %s\n", dcnv4_status_string(st),
            dcnv4_context_last_error(ctx));
  else
    clEnqueueReadBuffer(queue, out, CL_TRUE, 0, s.output_bytes, output, 0, NULL,
                        NULL);
  /* Pixel (5,5), channel 0: the mean of its 3x3 neighbourhood. */
  double expect = 0;
  for (int dy = -1; dy <= 1; dy++)
    for (int dx = -1; dx <= 1; dx++)
      expect += input[((5 + dy) * 16 + (5 + dx)) * 64] / 9.0;
  int ok = st == DCNV4_SUCCESS && output[(5 * 16 + 5) * 64] - expect < 1e-5 &&
           expect - output[(5 * 16 + 5) * 64] < 1e-5;
  printf("output[5][5][0] = %g (expected %g): %s\n", output[(5 * 16 + 5) * 64],
         expect, ok ? "ok" : "WRONG");
  clReleaseMemObject(in);
  clReleaseMemObject(om);
  clReleaseMemObject(out);
  free(input);
  free(offset_mask);
  free(output);
  dcnv4_context_destroy(ctx);
  return ok ? 0 : 1;
}
