#!/usr/bin/env bash
# Installs Intel's oneAPI OpenCL CPU runtime (a second OpenCL implementation,
# independent of PoCL: its own compiler and vectorizer) into .deps/, from the
# PyPI wheels, for tools/with_intel_opencl.sh. Nothing outside .deps/ is
# touched: no ICD file in /etc, no system library path. Re-running it with
# the same versions does nothing. Needs python3 with pip (tools/setup.sh
# installs python3-pip): `pip download` only fetches the wheels, it installs
# nothing into the system's Python.
#   bash tools/setup_intel_opencl.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# Exact versions and hashes. The runtime's cl.cfg names TBB 2023.2.0; the
# compiler runtime (libimf, libsvml, libirng, libintlc) comes from the same
# oneAPI release as the OpenCL runtime.
requirements='intel-opencl-rt==2026.2.0 --hash=sha256:6b6215a420598b4999ee01caca6d5cbe106aa4155c46c52377619c5aafce9f67
tbb==2023.2.0 --hash=sha256:7d80615b6e970f11671fa05b6eaa9483ac864fbfe525ac280271a78b37870b7c
intel-cmplr-lib-rt==2026.2.0 --hash=sha256:9f713083073a820d2496a6da8e8d4f3482aba6640f74521d25ea48dcebe72748'

root=.deps/intel-opencl
stamp="$root/installed"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$requirements" &&
      -f "$root/lib/libintelocl.so" ]]; then
  echo "Intel OpenCL CPU runtime: already in $root"
else
  rm -rf "$root"
  mkdir -p "$root/wheels" "$root/lib"
  printf '%s\n' "$requirements" >"$root/requirements.txt"
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --require-hashes -r "$root/requirements.txt" -d "$root/wheels"
  # Only the libraries the runtime loads: not the wheel's own ICD loader
  # (libOpenCL.so*: Debian's loader stays the only one), nor the duplicate
  # copies wheels hold in place of symbolic links, nor the compiler's LTO
  # plugin.
  python3 - "$root/wheels" "$root/lib" <<'EOF'
import fnmatch, os, sys, zipfile
wheels, lib = sys.argv[1], sys.argv[2]
keep = ["libintelocl.so", "libcommon_clang.so.*", "libocl_svml_*.so",
        "clbltfn*.rtl", "cllibrary*", "cl.cfg",
        "libimf.so", "libsvml.so", "libirng.so", "libintlc.so.5", "libirc.so",
        "libtbb.so.12", "libtbbmalloc.so.2"]
for wheel in sorted(os.listdir(wheels)):
    with zipfile.ZipFile(os.path.join(wheels, wheel)) as z:
        for member in z.namelist():
            folder, name = os.path.split(member)
            if folder.endswith(".data/data/lib") and any(
                    fnmatch.fnmatch(name, k) for k in keep):
                with z.open(member) as src, \
                        open(os.path.join(lib, name), "wb") as dst:
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)
EOF
  rm -rf "$root/wheels"
  printf '%s\n' "$requirements" >"$stamp"
  echo "Intel OpenCL CPU runtime: installed into $root"
fi

# The ICD folder tools/with_intel_opencl.sh hands to Debian's loader
# (OCL_ICD_VENDORS): Intel's runtime plus the system's ICDs (PoCL), refreshed
# on every run.
lib="$(cd "$root/lib" && pwd)"
rm -rf "$root/vendors"
mkdir -p "$root/vendors"
echo "$lib/libintelocl.so" >"$root/vendors/intel-cpu.icd"
for icd in /etc/OpenCL/vendors/*.icd; do
  [[ -e "$icd" ]] && ln -s "$icd" "$root/vendors/"
done
true
