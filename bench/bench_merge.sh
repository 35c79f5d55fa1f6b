#!/bin/sh
# bench/bench_merge.sh: bench/bench_merge.py (the scale-out simulation of docs/scale.md).
exec python3 "$(dirname "$0")/bench_merge.py"
