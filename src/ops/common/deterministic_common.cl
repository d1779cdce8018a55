// Deterministic backward: the bucket steps shared by both operators (see
// src/ops/common/deterministic.h). Everything is integer work on one workspace of
// 4-byte words; `*_off` arguments are word offsets of its regions.
//
// Build-time define: DET_SEGMENT (buckets per scan segment).

#ifndef DET_SEGMENT
#define DET_SEGMENT 256
#endif

// Sum of each segment's counts.
__kernel void det_scan_partial(__global int *ws, const int count_off,
                               const int segment_off, const int buckets,
                               const int segments) {
  const int s = (int)get_global_id(0);
  if (s >= segments)
    return;
  __global const int *count = ws + count_off;
  const int begin = s * DET_SEGMENT;
  const int end = min(begin + DET_SEGMENT, buckets);
  int sum = 0;
  for (int b = begin; b < end; b++)
    sum += count[b];
  ws[segment_off + s] = sum;
}

// Exclusive prefix sum of the segment sums, in place (one work-item); the
// total goes to offset[buckets].
__kernel void det_scan_top(__global int *ws, const int segment_off,
                           const int offset_off, const int buckets,
                           const int segments) {
  if (get_global_id(0) != 0)
    return;
  __global int *seg = ws + segment_off;
  int run = 0;
  for (int s = 0; s < segments; s++) {
    const int c = seg[s];
    seg[s] = run;
    run += c;
  }
  ws[offset_off + buckets] = run;
}

// offset[b] = first slot of bucket b.
__kernel void det_scan_final(__global int *ws, const int count_off,
                             const int segment_off, const int offset_off,
                             const int buckets, const int segments) {
  const int s = (int)get_global_id(0);
  if (s >= segments)
    return;
  __global const int *count = ws + count_off;
  __global int *offset = ws + offset_off;
  const int begin = s * DET_SEGMENT;
  const int end = min(begin + DET_SEGMENT, buckets);
  int run = ws[segment_off + s];
  for (int b = begin; b < end; b++) {
    offset[b] = run;
    run += count[b];
  }
}

// Writes each point inside its image into its bucket. The slot within the
// bucket depends on scheduling; det_sort removes that. The counts go back
// to zero.
__kernel void det_fill(__global int *ws, const int key_off, const int count_off,
                       const int offset_off, const int record_off,
                       const int points) {
  const int p = (int)get_global_id(0);
  if (p >= points)
    return;
  const int key = ws[key_off + p];
  if (key < 0)
    return;
  const int left = atomic_dec((volatile __global int *)(ws + count_off + key));
  ws[record_off + ws[offset_off + key] + left - 1] = p;
}

// Sorts each bucket's point indices (distinct) ascending: heapsort, in
// place, O(n log n) even for a bucket holding every point.
__kernel void det_sort(__global int *ws, const int offset_off,
                       const int record_off, const int buckets) {
  const int b = (int)get_global_id(0);
  if (b >= buckets)
    return;
  const int begin = ws[offset_off + b];
  const int n = ws[offset_off + b + 1] - begin;
  if (n < 2)
    return;
  __global int *a = ws + record_off + begin;
  if (n <= 16) { // insertion sort for the usual small buckets
    for (int i = 1; i < n; i++) {
      const int v = a[i];
      int j = i - 1;
      while (j >= 0 && a[j] > v) {
        a[j + 1] = a[j];
        j--;
      }
      a[j + 1] = v;
    }
    return;
  }
  for (int end = n, start = n / 2 - 1;;) {
    int root;
    if (start >= 0) { // building the heap
      root = start--;
    } else { // moving the maximum behind the heap
      if (--end == 0)
        break;
      const int t = a[0];
      a[0] = a[end];
      a[end] = t;
      root = 0;
    }
    const int v = a[root];
    for (;;) {
      int child = 2 * root + 1;
      if (child >= end)
        break;
      if (child + 1 < end && a[child + 1] > a[child])
        child++;
      if (a[child] <= v)
        break;
      a[root] = a[child];
      root = child;
    }
    a[root] = v;
  }
}
