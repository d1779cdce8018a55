// Shared by the FlashDeformAttn programs (after common.h): the geometry
// argument and the split of normalized sampling locations.
//
// Build-time defines (besides common.h): MAX_LEVELS and MAX_SAMPLES (the
// host's DCNV4_FDA_MAX_LEVELS and DCNV4_FDA_MAX_SAMPLES), SPECIALIZE, and
// with SPECIALIZE 1 GROUP_CHANNELS (D), LEVELS (L), POINTS (K per level).
// SPECIALIZE 0 reads D, L and K from the geometry argument `g`, so one
// program serves every shape (CPUs, where programs compile slowly).

#if SPECIALIZE
#define D GROUP_CHANNELS
#define L LEVELS
#define K POINTS
#else
#define D (g.group_channels)
#define L (g.levels)
#define K (g.points)
#endif
#define LK (L * K) // sampling points per (batch, query, head)
#define CHUNKS (D / VEC)

// Mirrors fda_geometry_arg in src/fda_op.c (4-byte fields only). Level l is
// an height[l] x width[l] image starting at value row start[l].
typedef struct fda_geometry {
  int value_len, queries, group, group_channels, levels, points;
  int height[MAX_LEVELS];
  int width[MAX_LEVELS];
  int start[MAX_LEVELS];
} fda_geometry;

// The level coordinate loc * size - 0.5 of a normalized location, split as
// an exact integer and a small float part (then as split_coord does). The
// product is formed error-free (p + e == loc * size exactly, e from fma), so
// the fractional part keeps float precision however large the level is;
// a plain loc * size - 0.5 in float would lose up to ulp(size) / 2.
// Locations whose product is not finite or beyond 2^25 in magnitude are far
// outside every level (sizes are at most 2^24) and count as outside.
inline sample_coord fda_coord(float loc, int size) {
  const float s = (float)size; // exact
  const float p = loc * s;
  if (!(fabs(p) < 33554432.0f)) { // 2^25; false for NaN and infinities
    sample_coord c;
    c.low = 0;
    c.frac = 0.0f;
    c.inside = 0;
    return c;
  }
  const float e = fma(loc, s, -p); // rounding error of p, exact
  const float fl = floor(p);
  // (p - fl) is exact; subtracting 0.5 is exact once |p| >= 0.5 and rounds
  // by at most 2^-25 below; e is at most half an ulp of p.
  const float part = ((p - fl) - 0.5f) + e;
  return split_coord((int)fl, part, size);
}
