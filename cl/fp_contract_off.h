// First file of the deterministic backward programs (program_registry.c):
// their results must not depend on work-group sizes, and an implementation
// may contract a * b + c into an fma in some work-items and not in others
// (Intel's CPU runtime runs whole vectors of work-items in vector code and
// the leftovers in scalar code, which contract differently). Contraction
// off makes every rounding the one the source writes, on any device. The
// default programs keep contraction, which they are tuned with.
#pragma OPENCL FP_CONTRACT OFF
