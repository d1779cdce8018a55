// Zeroing a buffer before a backward's scatter (dcn_enqueue_zero, tuning
// `zero`): on NVIDIA this kernel writes at close to copy bandwidth where
// clEnqueueFillBuffer reaches about half of it (docs/perf-notes.md §32).

// Zeroes `words` 4-byte words from the start of p: one 16-byte store per
// work-item (p is a buffer's start, so 16-byte aligned), the last one's
// words one by one.
__kernel void zero_words(__global uint *restrict p, const ulong words) {
  const ulong i = 4 * (ulong)get_global_id(0);
  if (i + 4 <= words)
    *(__global uint4 *)(p + i) = (uint4)(0u);
  else
    for (ulong w = i; w < words; w++)
      p[w] = 0u;
}
