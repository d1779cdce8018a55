#!/usr/bin/env bash
# Run here, from the project root, before a GPU-machine job: fills the ignored
# folder .device/ with what the job needs that the GPU machine lacks:
# Debian's CLBlast, ICD loader and clinfo (../shared/device/prepare.sh),
# cJSON's, libjpeg's and stb's packages (dcnv4-classify), and a copy of the
# reference cases.
set -euo pipefail
mkdir -p .git/info
bash ../shared/device/prepare.sh >/dev/null
(cd .device/debs && for p in libcjson1 libcjson-dev libjpeg62-turbo libjpeg62-turbo-dev libjpeg-dev libstb0 libstb-dev; do
   ls ${p}_*.deb >/dev/null 2>&1 || apt-get download "$p" >/dev/null 2>&1
 done)
rm -rf .device/golden && mkdir -p .device/golden && cp -r ../shared/golden/. .device/golden/
du -sh .device
