#!/usr/bin/env bash
# One prepared command for a lent GPU machine (no network there): install the project without network, run
# the test suite on the GPU, run the quick benchmark suite and the quick end-to-end training step, and leave
# logs and results in $OUT (at most 8 files come back; this writes 8: env.log, tests.log, perf.log,
# results.json, report.md, bandwidth.png, e2e.log, e2e.json). The stages' timeouts (200 + 240 + 110 s, each
# SIGINT so that pytest prints its summary and perf / perf.e2e write what they measured, then a kill 20 s
# later) fit one call's 600 s. Commit what comes back under perf/results/<device>-<date>/, untouched.
#
#   TRITONLAYERS_COMMIT=$(git rev-parse --short=12 HEAD) bash perf/device_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-perf/out/device_check}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1

{
  date -u
  nvidia-smi
  "$PY" -c "import sys, torch, triton, numpy; print(sys.version); print('torch', torch.__version__, 'triton', triton.__version__, 'numpy', numpy.__version__)"
  "$PY" -m pip install --no-deps --no-build-isolation --no-index -e .
} >"$OUT/env.log" 2>&1
echo "install exit $?"

timeout -s INT -k 20 "${TEST_TIMEOUT:-200}" "$PY" -m pytest -q -n 12 -p no:cacheprovider -rfEs >"$OUT/tests.log" 2>&1
tests_rc=$?
tail -n 5 "$OUT/tests.log"

timeout -s INT -k 20 "${PERF_TIMEOUT:-240}" "$PY" -m perf --quick --out "$OUT" >"$OUT/perf.log" 2>&1
perf_rc=$?
tail -n 4 "$OUT/perf.log"
[ -f "$OUT/report.md" ] && tail -n 12 "$OUT/report.md"
timeout -s INT -k 20 "${E2E_TIMEOUT:-110}" "$PY" -m perf.e2e --quick --out "$OUT" >"$OUT/e2e.log" 2>&1
e2e_rc=$?
tail -n 8 "$OUT/e2e.log"
echo "tests exit $tests_rc, perf exit $perf_rc, e2e exit $e2e_rc"
ls "$OUT"
