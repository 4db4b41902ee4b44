#!/usr/bin/env bash
# Installs the CPU build of torch into a virtual environment: PIP TORCH_SPEC TORCH_INDEX.
#
# On Linux, PyPI's torch wheel is the CUDA build (its nvidia-* libraries weigh 2+ GB), so the
# pin alone would pull it. Where the pin already resolves to a CPU wheel (a machine that keeps
# the +cpu wheel locally, macOS, Windows), the plain pin is installed; elsewhere torch comes
# from PyTorch's CPU wheel index (TORCH_INDEX). pip's --dry-run report tells which wheel the
# pin would take without downloading it.
set -euo pipefail
pip="$1"; spec="$2"; index="$3"
plan="$(mktemp)"
trap 'rm -f "$plan"' EXIT
if "$pip" install --quiet --dry-run --ignore-installed --report "$plan" "$spec" 2>/dev/null \
   && python3 - "$plan" <<'PY'
import json, sys
wheels = [i["download_info"]["url"] for i in json.load(open(sys.argv[1]))["install"]
          if i["metadata"]["name"] == "torch"]
# A CPU wheel: a +cpu local version (URL-quoted as %2B), or a platform without CUDA builds.
sys.exit(0 if wheels and any(k in wheels[0] for k in ("%2Bcpu", "+cpu", "macosx", "win_")) else 1)
PY
then
    "$pip" install --quiet "$spec"
else
    echo "installing $spec from $index (the CPU build)"
    "$pip" install --quiet "$spec" --index-url "$index"
fi
