#!/usr/bin/env python3
"""Kernel variants of jobs 6 and 7, written under .device/variants/NAME/ from
the cl/ folder of 8f74cc6 (run from the project root on a checkout of it):

  pf64, pf256  stage 0 brings the offset row 64 / 256 output rows ahead into
               L2 (PTX prefetch.global.L2), one work-item per group
  om256        fp32 offset loads with a 256-byte L2 fetch (ld.global.nc.L2::256B)
  om256h       the same for fp32 and fp16 offsets
  in256        fp32 corner loads (VEC 4) with the 256-byte fetch
  both256      om256h and in256 together (what the library adopted for fp32)
"""
import os
import shutil

SRC = open('cl/dcnv4_forward.cl').read()
ANCHOR = """#define OM(i) LOAD1(om, i)
#define OFFSET_X(k) OM(2 * (k))"""
CORNER = """#define CORNER(i, piece)                                                       \\
  LOADV(input + ((uint)image_start + (uint)(i) + (uint)((piece)*PIECE_STRIDE)))"""
KERNEL = "__kernel void dcnv4_forward("
assert ANCHOR in SRC and CORNER in SRC and KERNEL in SRC
FIRST, SECOND = ANCHOR.split('\n')


def write(name, text):
    d = os.path.join('.device', 'variants', name)
    if os.path.exists(d):
        shutil.rmtree(d)
    shutil.copytree('cl', d)
    with open(os.path.join(d, 'dcnv4_forward.cl'), 'w') as f:
        f.write(text)


for rows in (64, 256):
    prefetch = f"""  // Experiment: bring the offset row {rows} output rows ahead into L2.
  if (chunk == 0 && nh + {rows} < g.batch * g.height_out) {{
    __global const storage_t *ahead =
        om + (idx_t){rows} * g.width_out * g.offset_mask_stride;
    asm volatile("prefetch.global.L2 [%0];" ::"l"(ahead));
    asm volatile("prefetch.global.L2 [%0];" ::"l"(ahead + 3 * K - 1));
  }}
"""
    write(f'pf{rows}', SRC.replace(ANCHOR, prefetch + ANCHOR))

FP32_OFFSETS = """inline float load_om_256(__global const float *p) {
  float v;
  asm("ld.global.nc.L2::256B.f32 %0, [%1];" : "=f"(v) : "l"(p));
  return v;
}

""" + KERNEL
write('om256', SRC.replace(KERNEL, FP32_OFFSETS, 1).replace(
    ANCHOR, FIRST + """
#if DTYPE == 0
#undef OM
#define OM(i) load_om_256(om + (i))
#endif
""" + SECOND))

HELPERS = """inline float load_om_256(__global const storage_t *p) {
  float v;
#if DTYPE == 0
  asm("ld.global.nc.L2::256B.f32 %0, [%1];" : "=f"(v) : "l"(p));
#else
  asm("{ .reg .b16 h; ld.global.nc.L2::256B.b16 h, [%1]; cvt.f32.f16 %0, h; }"
      : "=f"(v) : "l"(p));
#endif
  return v;
}
inline float4 load_corner_256(__global const float *p) {
  float4 v;
  asm("ld.global.nc.L2::256B.v4.f32 {%0, %1, %2, %3}, [%4];"
      : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w) : "l"(p));
  return v;
}

""" + KERNEL
OFFSETS = FIRST + """
#if DTYPE != 2
#undef OM
#define OM(i) load_om_256(om + (i))
#endif
""" + SECOND
CORNERS = CORNER.replace("  LOADV(input", "  load_corner_256(input")
base = SRC.replace(KERNEL, HELPERS, 1)
write('om256h', base.replace(ANCHOR, OFFSETS))
write('in256', base.replace(CORNER, CORNERS))
write('both256', base.replace(CORNER, CORNERS).replace(ANCHOR, OFFSETS))
