#!/usr/bin/env bash
# Registers and spills of linear_mma.cl (the 16-bit GEMM, tensor-core PTX)
# for sm_80/sm_90 without a GPU: clang's NVPTX back end and libclc (Debian:
# clang-15, libclc-15), then ptxas -v (CUDA toolkit). A proxy, as
# clang_ptx_regs.sh says: NVIDIA's OpenCL compiler is not clang; useful to
# compare variants of the same kernel and to check that the PTX assembles.
#
#   bash tools/device/clang_ptx_mma.sh SRC_DIR "TUNING" [DTYPE OUT EPILOGUE]
#
# TUNING: "TM TN TK WM WN STAGES SWIZZLE STAGED PREFETCH RASTER" (the
# build-time defines linear.c passes; WM x WN warps); DTYPE 1/2 (fp16/bf16),
# OUT 0 (fp32) or DTYPE, EPILOGUE 0/1/2 (default 1 1 0). KEEP_PTX=FILE keeps
# the PTX; ARCH (default sm_90) the ptxas target.
set -euo pipefail
[ $# -ge 2 ] || {
  echo "usage: clang_ptx_mma.sh SRC_DIR \"TM TN TK WM WN STAGES SWIZZLE STAGED PREFETCH RASTER\" [DTYPE OUT EPILOGUE]" >&2
  exit 2
}
dir=$1
read -r tm tn tk wm wn stages swizzle staged prefetch raster <<<"$2"
dtype=${3:-1} out=${4:-1} epilogue=${5:-0}
clc=/usr/lib/clc/nvptx64--nvidiacl.bc
for need in clang-15 ptxas "$clc"; do
  command -v "$need" >/dev/null 2>&1 || [ -e "$need" ] ||
    { echo "missing $need" >&2; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# linear_mma's recipe (src/programs/program_registry.c).
cat "$dir/ops/common/common.clh" "$dir/ops/common/warp_mma.clh" \
  "$dir/ops/linear/linear_out.clh" "$dir/ops/linear/linear_mma.cl" >"$tmp/k.cl"
clang-15 -x cl -cl-std=CL1.2 -target nvptx64-nvidia-nvcl -O3 -S \
  -Xclang -target-cpu -Xclang sm_80 -Xclang -target-feature -Xclang +ptx74 \
  -Xclang -mlink-builtin-bitcode -Xclang "$clc" -Wno-linker-warnings \
  -Xclang -finclude-default-header -Dasm=__asm__ \
  "-Dinline=static inline __attribute__((always_inline))" \
  -DIDX64=0 -DDTYPE="$dtype" -DOUT_DTYPE="$out" -DEPILOGUE="$epilogue" \
  -DTM="$tm" -DTN="$tn" -DTK="$tk" -DWM="$wm" -DWN="$wn" -DSTAGES="$stages" \
  -DSWIZZLE="$swizzle" -DSTAGED="$staged" -DPREFETCH="$prefetch" \
  -DRASTER="$raster" -DWARP_MMA_PTX=1 ${EXTRA_DEFINES:-} \
  -o "$tmp/k.ptx" "$tmp/k.cl"
[ -z "${KEEP_PTX:-}" ] || cp "$tmp/k.ptx" "$KEEP_PTX"
ptxas -arch="${ARCH:-sm_90}" -v "$tmp/k.ptx" -o "$tmp/k.cubin" 2>&1 |
  grep -E "registers|spill|error" | sed "s/^ptxas info *: //"
