#!/usr/bin/env bash
# Runs every GPU path of the package on GPU 0, each log into the folder OUT:
# the gpu tests with --require-gpu, the port's 20 epochs (and 5 with
# --clip binary), xnor_infer.py on the port's and the paper's model,
# benchmark.py, and the paper preset until the time is up. Made to finish within 9 minutes,
# install included: each step has its own time limit, and none runs past
# the whole's. A failed step does not stop the others; OUT/summary.tsv holds
# each step's exit status (124: out of time) and seconds, and any failure
# makes the exit status 1.
#
# Usage: gpu_check.sh OUT. PYTHON names the interpreter (default python3).
# Where Chainer does not import and .device/whl holds wheels (chainer 7.8.1
# and setuptools<81, for a machine without network), they are installed
# first, into a temporary folder.
set -uo pipefail
prog=gpu_check.sh
python=${PYTHON:-python3}
deadline=$((SECONDS + 520))

fail() {
    echo "$prog: $*" >&2
    exit 1
}

[ $# -eq 1 ] || fail "usage: $prog OUT (the folder for the logs)"
command -v nvidia-smi > /dev/null || fail 'no CUDA here: no nvidia-smi'
gpus=$(nvidia-smi -L 2>&1) || fail "no CUDA here: $(head -n 1 <<< "$gpus")"
mkdir -p "$1" && out=$(cd "$1" && pwd) || exit 1
cd "$(dirname "$0")" || exit 1
work=$(mktemp -d) || exit 1
trap 'rm -rf "$work"' EXIT
export PYTHONUNBUFFERED=1

if ! "$python" -c 'import compat, chainer' 2> /dev/null; then
    wheels=(.device/whl/*.whl)
    [ -e "${wheels[0]}" ] ||
        fail "Chainer does not import with $python and .device/whl holds" \
            'no wheels: make setup GPU=cuda12x (or cuda13x) sets up a venv'
    "$python" -m pip install -q --no-index --no-deps --target "$work/site" \
        "${wheels[@]}" > "$out/install.log" 2>&1 ||
        fail "installing .device/whl failed: see $out/install.log"
    export PYTHONPATH=$work/site${PYTHONPATH:+:$PYTHONPATH}
fi
why=$("$python" -c '
import sys
from utils import cli
try:
    cli.get_device(0)
except cli.UsageError as e:
    sys.exit(str(e))' 2>&1) || fail "$(tail -n 1 <<< "$why")"

nvidia-smi > "$out/nvidia-smi.txt"
printf 'step\tstatus\tseconds\n' > "$out/summary.tsv"
failed=0

# step NAME SECONDS COMMAND...: COMMAND for at most SECONDS, less where the
# deadline is nearer by then; its output in OUT/NAME.log. SIGNAL (TERM by
# default) ends it at its limit; a step ended by INT is meant to stop there,
# and its status is 'stopped'.
step() {
    local name=$1 limit=$2 signal=${SIGNAL:-TERM} start=$SECONDS status
    shift 2
    ((limit < deadline - SECONDS)) || limit=$((deadline - SECONDS))
    if ((limit <= 0)); then
        status='no time left'
    else
        echo "== $name: $* (at most ${limit}s)"
        timeout -s "$signal" -k 15 "$limit" "$@" 2>&1 | tee "$out/$name.log"
        status=${PIPESTATUS[0]}
        [ "$signal" = INT ] && [ "$status" = 124 ] && status=stopped
        [ -f "$work/$name/log.json" ] &&
            cp "$work/$name/log.json" "$out/$name.log.json"
    fi
    printf '%s\t%s\t%s\n' "$name" "$status" $((SECONDS - start)) \
        >> "$out/summary.tsv"
    [ "$status" = 0 ] || [ "$status" = stopped ] || failed=1
}

# The limits are estimates (no GPU has run this yet), chosen to fit the
# 520 s deadline with the paper preset's 2 minutes, which take what the
# steps before it leave: the gpu tests alone (-m gpu: the CPU suite runs in
# CI) are about 25 tests and a dozen first-time kernel compiles; an H200
# runs a port epoch of the fast path in a second or two, so 20 epochs,
# start and compiles fit in 80 s; a second port run with --clip binary
# checks that clip's path in 5 epochs; xnor_infer.py is two passes over
# the test set and a fold; benchmark.py's product, inference and training
# parts took about a minute on the CPU and should take less on a GPU; the
# torch7 preset's 2 epochs (shift-based AdaMax's kernel, the shift-based
# BatchNormalization and the stochastic activations in CuPy) take seconds.
step tests 75 "$python" -m pytest -q -rs --require-gpu -m gpu tests
step port 80 "$python" train_mnist.py --gpu 0 --out "$work/port"
step xnor-port 40 "$python" xnor_infer.py --gpu 0 \
    --model "$work/port/mlp.model"
step port-clip-binary 35 "$python" train_mnist.py --gpu 0 --clip binary \
    --epoch 5 --out "$work/port-clip-binary"
step benchmark 75 "$python" benchmark.py --gpu 0
step torch7 45 "$python" train_mnist.py --preset torch7 --gpu 0 --epoch 2 \
    --out "$work/torch7"
# Its 1000 epochs would take hours: Ctrl-C's path stops it, leaving 45 s
# for the packed inference of its best model.
SIGNAL=INT step paper $((deadline - SECONDS - 45)) "$python" train_mnist.py \
    --preset paper --gpu 0 --out "$work/paper"
step xnor-paper 45 "$python" xnor_infer.py --gpu 0 \
    --model "$work/paper/mlp_best.model"

printf 'total\t%s\t%s\n' "$failed" "$SECONDS" >> "$out/summary.tsv"
cat "$out/summary.tsv"
exit "$failed"
