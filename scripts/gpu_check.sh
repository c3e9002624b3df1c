#!/usr/bin/env bash
# GPU checks on one CUDA machine, at most 5.5 minutes (GPU_CHECK_BUDGET=330 s): the CUDA tests, then the training
# benchmarks at the paper's settings (23 RRDBs, batch 16, 128x128 GT) and the fp16/bf16 accuracy check.
#
#   bash scripts/gpu_check.sh [LOG]      # LOG defaults to $OUT/gpu_check.log when $OUT is set, else ./gpu_check.log
#
# Needs torch with CUDA, basicsr 1.4.2 and this project's dependencies importable (the checkout itself is put
# on PYTHONPATH, so it need not be installed). Each step runs under a time limit; a failing step is reported
# and the script goes on with the next one. The exit status is the number of failed steps.
cd "$(dirname "$0")/.." || exit 1
LOG=${1:-${OUT:+$OUT/gpu_check.log}}
LOG=${LOG:-gpu_check.log}
mkdir -p "$(dirname "$LOG")"
exec > >(tee -a "$LOG") 2>&1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python}
FAILED=0

BUDGET=${GPU_CHECK_BUDGET:-330}  # seconds for all steps together; a step gets at most what is left
step() {  # step <seconds> <title> <command...>
    local limit=$1 title=$2
    shift 2
    echo
    local left=$((BUDGET - SECONDS))
    if [ $left -lt 20 ]; then
        echo "=== $title: skipped, the ${BUDGET}s budget is spent"
        FAILED=$((FAILED + 1))
        return
    fi
    [ $limit -gt $left ] && limit=$left
    echo "=== $title ($(date -u +%H:%M:%S), limit ${limit}s)"
    local start=$SECONDS
    timeout "$limit" "$@"
    local rc=$?
    if [ $rc -ne 0 ]; then
        FAILED=$((FAILED + 1))
        if [ $rc -eq 124 ]; then echo "!!! $title: stopped after ${limit}s"; else echo "!!! $title: failed (exit $rc)"; fi
    fi
    echo "=== $title: $((SECONDS - start))s"
}

BENCH="scripts/benchmark_train.py --device cuda --num-block 23 --batch 16 --gt-size 128 --rounds 5 --steps 1 --warmup 2"

step 30 "environment" bash -c "nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; \
    $PY -c 'import sys, torch; print(sys.version.split()[0], \"torch\", torch.__version__, \"cuda\", torch.version.cuda, torch.cuda.get_device_name())' && \
    $PY -c 'import esrgan_plugin, basicsr; print(\"basicsr\", basicsr.__version__, \"esrgan_plugin\", esrgan_plugin.__version__)'"
step 150 "CUDA tests" $PY -m pytest tests/test_cuda.py -q -rs -p no:cacheprovider
step 60 "L1 step: basicsr SRModel vs ours (paper settings)" $PY $BENCH --mode l1 --rows basicsr fp32 fp32-cl bf16-cl fp16-cl
step 80 "GAN step: basicsr ESRGANModel vs ours (paper settings)" $PY $BENCH --mode gan --rows basicsr fp32 bf16-cl fp16-cl
step 45 "fp16 GAN run, 200 iterations, pixel loss vs fp32" $PY scripts/check_amp_training.py --device cuda --amp fp16
step 120 "L1 step with torch.compile and CUDA graphs (compilation takes most of the limit)" $PY $BENCH --mode l1 --rows basicsr fp32-compile fp32-cudagraphs
echo
echo "=== done: $FAILED step(s) failed; log in $LOG"
exit $FAILED
