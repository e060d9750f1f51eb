#!/usr/bin/env bash
# The whole GPU check in one run, on a machine with an NVIDIA GPU (bench/README.md, "On a GPU machine"):
#   1. put what the machine lacks on PYTHONPATH: onnxruntime-gpu (a .tar.xz of the wheel's files, in parts)
#      and FlashML's other wheels, from GPU_PARTS (default /tmp/gpu-parts);
#   2. run the GPU-marked tests (pytest -m gpu);
#   3. run bench/run.py on ResNet-50 with CUDA against raw ONNX Runtime CUDA and the naive server.
# Logs and figures go to $OUT (default ./gpu-out). Where pip can install 'onnxruntime-gpu[cuda,cudnn]' and
# '.[test,bench]' directly, do that instead of step 1 and run steps 2 and 3 as they stand.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu-out}
PARTS=${GPU_PARTS:-/tmp/gpu-parts}
SITE=${GPU_SITE:-/tmp/gpu-site}
CLIENTS=${BENCH_CLIENTS:-1,32,128}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT" "$SITE"
PY=${PYTHON:-python3}

if [ -d "$PARTS" ] && [ ! -d "$SITE/onnxruntime" ]; then
    echo "== unpacking onnxruntime-gpu and the wheels from $PARTS"
    cat "$PARTS"/ort.part* | "$PY" -c "import sys, tarfile; tarfile.open(fileobj=sys.stdin.buffer, mode='r|xz').extractall('$SITE')" || exit 1
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$PARTS"/*.whl \
        2>&1 | tail -3
fi
export PYTHONPATH=$PWD:$SITE${PYTHONPATH:+:$PYTHONPATH}
# The CUDA 13 and cuDNN 9 libraries of pip's nvidia-* packages (from PyTorch, or onnxruntime-gpu's extras).
NV=$("$PY" -c "
import os
try:
    import nvidia
except ImportError:
    raise SystemExit
dirs = []
for base in nvidia.__path__:
    for name in sorted(os.listdir(base)):
        for sub in ('lib', 'lib64'):
            if os.path.isdir(os.path.join(base, name, sub)):
                dirs.append(os.path.join(base, name, sub))
print(':'.join(dirs))")
export LD_LIBRARY_PATH=${NV}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

{
    echo "== machine"; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; nproc; "$PY" -V
    "$PY" - <<'EOF'
import onnxruntime as ort
print("onnxruntime", ort.__version__, ort.__file__)
print("providers listed:", ort.get_available_providers())
ort.preload_dlls()
from onnx import TensorProto, helper
x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "probe", [x], [y])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=9).SerializeToString()
for providers in (["CUDAExecutionProvider"], ["TensorrtExecutionProvider", "CUDAExecutionProvider"]):
    try:
        print(providers, "->", ort.InferenceSession(m, providers=providers).get_providers())
    except Exception as exc:
        print(providers, "failed:", exc)
EOF
} 2>&1 | tee "$OUT/machine.txt"

echo "== pytest -m gpu"
timeout "${PYTEST_TIMEOUT:-240}" "$PY" -m pytest -m gpu -v -p no:cacheprovider tests/test_gpu.py tests/test_gpu_memory.py \
    2>&1 | tee "$OUT/pytest_gpu.log"

echo "== bench: ResNet-50 on cuda:0"
BENCH_SERVER_LOG=$OUT/flashml_server.log timeout "${BENCH_TIMEOUT:-420}" "$PY" -m bench.run --device cuda:0 --models resnet50 --clients "$CLIENTS" \
    --rounds "${BENCH_ROUNDS:-2}" --seconds "${BENCH_SECONDS:-4}" --instances "${BENCH_INSTANCES:-1,2,4}" \
    --out "$OUT/results_gpu.json" \
    2>&1 | tee "$OUT/bench_gpu.log"
