#!/usr/bin/env bash
# One prepared command for a lent GPU machine (no network there): install the project without network, run
# the test suite on the GPU, the quick benchmark suite and the quick end-to-end training step, and leave logs
# and results in $OUT (at most 8 files come back; the default stages write 8: env.log, tests.log, perf.log,
# results.json, report.md, bandwidth.png, e2e.log, e2e.json). Each stage stops at its timeout with SIGINT, so
# pytest prints its summary and the benchmarks write what they measured (a kill follows 20 s later); the
# default timeouts (200 + 200 + 150 s) fit one call's 600 s. Commit what comes back under
# perf/results/<device>-<date>/, untouched.
#
#   TRITONLAYERS_COMMIT=$(git rev-parse --short=12 HEAD) bash perf/device_check.sh
#
# PERF_ARGS="--quick --graphs" times every case as CUDA-graph replays (kernels only, no host time) instead.
#
# A shorter recheck: pick tests and benchmarks, skip a stage with a timeout of 0, and add the host/GPU
# time split of perf.kernel_times (kernel_times.log and kernel_times.json; skip e2e to stay within 8 files)
# and perf.host_profile's launch floor and per-case profiles (host_profile.log, HP_TIMEOUT / HP_ARGS); KT_OUT
# elsewhere than $OUT keeps kernel_times.json (the log's table, as JSON) out of the 8 files; PROFILE_TIMEOUT adds
# perf.profile's per-layer table of the ResNet-26 step (profile.log):
#   TEST_ARGS="tests/test_gemm_layers.py" PERF_ARGS="--quick --ops gemm" E2E_TIMEOUT=0 KT_TIMEOUT=60 \
#     bash perf/device_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-perf/out/device_check}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1

stage() {  # stage TIMEOUT LOG COMMAND...: run unless TIMEOUT is 0; prints the exit status
  local limit=$1 log=$2
  shift 2
  if [ "$limit" = 0 ]; then echo "$log: skipped"; return; fi
  timeout -s INT -k 20 "$limit" "$@" >"$OUT/$log" 2>&1
  echo "$log: exit $?"
}

{
  date -u
  nvidia-smi
  "$PY" -c "import sys, torch, triton, numpy; print(sys.version); print('torch', torch.__version__, 'triton', triton.__version__, 'numpy', numpy.__version__)"
  "$PY" -m pip install --no-deps --no-build-isolation --no-index -e .
} >"$OUT/env.log" 2>&1
echo "install exit $?"

# shellcheck disable=SC2086  # the argument lists split on purpose
stage "${TEST_TIMEOUT:-200}" tests.log "$PY" -m pytest -q -n "${TEST_WORKERS:-16}" -p no:cacheprovider -rfEs ${TEST_ARGS:-}
tail -n 5 "$OUT/tests.log" 2>/dev/null
# shellcheck disable=SC2086
stage "${PERF_TIMEOUT:-200}" perf.log "$PY" -m perf ${PERF_ARGS:---quick} --out "$OUT"
tail -n 4 "$OUT/perf.log" 2>/dev/null
[ -f "$OUT/report.md" ] && grep -A 40 "Geometric-mean" "$OUT/report.md"
# after perf: its compiled kernels are in Triton's cache by then
# shellcheck disable=SC2086
stage "${KT_TIMEOUT:-0}" kernel_times.log "$PY" -m perf.kernel_times ${KT_ARGS:---quick} --out "${KT_OUT:-$OUT}"
grep -E "^\| [a-z_0-9]+ \|" "$OUT/kernel_times.log" 2>/dev/null | cut -c1-150
# shellcheck disable=SC2086
stage "${HP_TIMEOUT:-0}" host_profile.log "$PY" -m perf.host_profile ${HP_ARGS:---quick}
grep -E "^\| |^## |^host us|^backward on" "$OUT/host_profile.log" 2>/dev/null
stage "${E2E_TIMEOUT:-150}" e2e.log "$PY" -m perf.e2e --quick --out "$OUT"
tail -n 50 "$OUT/e2e.log" 2>/dev/null
# per-layer kernel time of the converted ResNet-26 step against eager (CUDA-graph replays): profile.log holds
# its table; PROFILE_OUT elsewhere than $OUT keeps profile.json / .md / .png out of the 8 files
# shellcheck disable=SC2086
stage "${PROFILE_TIMEOUT:-0}" profile.log "$PY" -m perf.profile ${PROFILE_ARGS:---model resnet26-quick} \
  --out "${PROFILE_OUT:-$OUT}"
grep -E "total|^# " "$OUT/profile.log" 2>/dev/null
ls "$OUT"
