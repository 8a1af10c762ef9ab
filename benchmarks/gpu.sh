#!/usr/bin/env bash
# The performance benchmarks on CUDA in one command, within 10 minutes on one data-centre GPU:
#
#     bash benchmarks/gpu.sh            # from the repository root, on a machine with an NVIDIA driver
#
# Needs a venv whose onnxruntime has the CUDA provider: `pip install -e '.[service-gpu,trainer,dev]'
# onnxconverter-common` (service-gpu swaps onnxruntime for onnxruntime-gpu; never install both). Set PY to
# use another interpreter than .venv/bin/python. The trained bench model is reused from runs/bench/ when
# present (copy it over from a CPU run to save its training, about 2 minutes on 16 cores).
#
# Runs: perf_bench.py (a)–(f) on the late-dropout model (the onnxruntime variants run on CUDA with IOBinding,
# the PyTorch rows on the CPU wheel), gpu_bench.py (fp32 against an fp16 prefix, offered only where the
# ranking-fidelity gate holds), pool_bench.py (ScorePool over gRPC against in-process, SQLite only).
# Each step is capped so the whole stays under 10 minutes; a step that hits its cap says so and the rest run.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-runs/bench/gpu}
mkdir -p "$OUT"

if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L; then
  echo "gpu.sh: no NVIDIA GPU visible (nvidia-smi); nothing run" >&2
  exit 2
fi
if ! "$PY" -c 'import onnxruntime as o, sys; sys.exit("CUDAExecutionProvider" not in o.get_available_providers())'; then
  echo "gpu.sh: $PY's onnxruntime has no CUDA provider; pip install -e '.[service-gpu,trainer]'" >&2
  exit 2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"

step() {  # step NAME SECONDS COMMAND...: run with a cap, log to $OUT/NAME.log
  local name=$1 cap=$2
  shift 2
  echo "===== $name (cap ${cap}s) =====" | tee -a "$OUT/summary.log"
  timeout "$cap" "$@" 2>&1 | tee "$OUT/$name.log"
  local rc=${PIPESTATUS[0]}
  [ "$rc" = 124 ] && echo "$name: stopped at its ${cap}s cap" | tee -a "$OUT/summary.log"
  echo "$name: exit $rc" | tee -a "$OUT/summary.log"
}

step model 150 "$PY" benchmarks/bench_model.py --placement last_decoder
step perf 240 "$PY" benchmarks/perf_bench.py --placement last_decoder --images 4 --repeats 3 --threads 0
step gpu 90 "$PY" benchmarks/gpu_bench.py --placement last_decoder
step pool 100 "$PY" benchmarks/pool_bench.py --images 2000 --threads 0 --no-postgres
echo "results in $OUT/"
