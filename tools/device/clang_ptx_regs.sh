#!/usr/bin/env bash
# Registers and spills of the DCNv4 forward for sm_90 without a GPU: builds a
# source folder (src/ or a variant of it) with clang's NVPTX back end and libclc
# (Debian: clang-15, libclc-15), then runs ptxas -v (CUDA toolkit). A proxy
# only: NVIDIA's OpenCL compiler is not clang, and absolute counts differ
# (clang spills fp16 at 40 registers where NVIDIA's build does not). Useful
# for comparing variants of the same kernel, e.g. a second copy of the point
# loop: fp32 at 48 registers spilled 248 bytes in clang's build and ran
# 9-19 % slower on the H100 (docs/perf-notes.md §11).
#
#   bash tools/device/clang_ptx_regs.sh SRC_DIR DTYPE VEC PIECES D REGS
#
# DTYPE 0/1/2 (fp32/fp16/bf16), VEC and PIECES as the tuning parameters, D
# the group's channels, REGS the register cap (0: none). Stage 0, 3x3,
# specialized, NVIDIA's 256-byte L2 fetches on; STAGE=3 for the footprint
# stage. EXTRA_DEFINES adds -D options; KEEP_PTX=FILE keeps the PTX. ptxas
# reports the kernel and the out-of-line forward_documented_order
# separately; the kernel's stack frame includes the callee's.
set -euo pipefail
[ $# -eq 6 ] || {
  echo "usage: clang_ptx_regs.sh SRC_DIR DTYPE VEC PIECES D REGS" >&2
  exit 2
}
dir=$1 dtype=$2 vec=$3 pieces=$4 d=$5 regs=$6
clc=/usr/lib/clc/nvptx64--nvidiacl.bc
for need in clang-15 ptxas "$clc"; do
  command -v "$need" >/dev/null 2>&1 || [ -e "$need" ] ||
    { echo "missing $need" >&2; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The forward's recipe (src/programs/program_registry.c).
cat "$dir/ops/common/common.clh" "$dir/ops/dcnv4/dcnv4_forward.cl" >"$tmp/k.cl"
# clang treats `inline` as C99 inline and may leave a call to a function
# that has no out-of-line body; NVIDIA's compiler inlines everything.
clang-15 -x cl -cl-std=CL1.2 -target nvptx64-nvidia-nvcl -O3 -S \
  -Xclang -target-cpu -Xclang sm_80 -Xclang -target-feature -Xclang +ptx74 \
  -Xclang -mlink-builtin-bitcode -Xclang "$clc" -Wno-linker-warnings \
  -Xclang -finclude-default-header -Dasm=__asm__ \
  "-Dinline=static inline __attribute__((always_inline))" \
  -DDCNV4_OP=1 -DDTYPE="$dtype" -DVEC="$vec" -DIDX64=0 -DUNROLL=1 \
  -DSPECIALIZE=1 -DGROUP_CHANNELS="$d" -DKH=3 -DKW=3 -DREMOVE_CENTER=0 \
  -DSOFTMAX=0 -DFIXED_GEOMETRY=1 -DSTRIDE_H=1 -DSTRIDE_W=1 -DPAD_H=1 \
  -DPAD_W=1 -DDILATION_H=1 -DDILATION_W=1 -DOFFSET_SCALE_BITS=0x3f800000 \
  -DOM_STAGE="${STAGE:-0}" -DPIECES="$pieces" -DNV_L2_FETCH_256=1 ${EXTRA_DEFINES:-} \
  -o "$tmp/k.ptx" "$tmp/k.cl"
[ -z "${KEEP_PTX:-}" ] || cp "$tmp/k.ptx" "$KEEP_PTX"
cap=()
[ "$regs" = 0 ] || cap=(-maxrregcount "$regs")
ptxas -arch=sm_90 -v "${cap[@]}" "$tmp/k.ptx" -o "$tmp/k.cubin" 2>&1 |
  grep -E "registers|spill|Compiling|Function properties" | sed "s/^ptxas info *: //"
