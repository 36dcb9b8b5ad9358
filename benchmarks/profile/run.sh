#!/usr/bin/env bash
# Reproduces every file in this directory from the module root's parent
# layout (the traces at ../shared/traces, or TRACES=dir).
set -euo pipefail
cd "$(dirname "$0")"
T=${TRACES:-../../../shared/traces}
B=$T/bitbrains-rnd-2013-7
go build -o /tmp/updraft-forecast ../../examples/forecast
run() { # run OUT ARGS...
  out=$1; shift
  { echo "# go run ./examples/forecast $*"
    echo "# $(date -u +%Y-%m-%dT%H:%MZ) GOARCH=$(go env GOARCH) $(go version | cut -d' ' -f3) CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') ($(nproc) cores)"
    /tmp/updraft-forecast "$@"; } > "$out"
}
run forecast-bitbrains.txt -trace "$B"
run forecast-bitbrains-1-10-tuned.txt -trace "$(echo $B/{1,2,3,4,5,6,7,8,9,10}.csv.gz | tr ' ' ,)"
run forecast-bitbrains-11-19.txt -trace "$(echo $B/{11,12,13,14,15,16,17,18,19}.csv.gz | tr ' ' ,)"
run forecast-alibaba.txt -trace "$T/alibaba-2018"
run sweep-bitbrains.txt -trace "$B" -sweep -plot sweep-bitbrains
run sweep-alibaba.txt -trace "$T/alibaba-2018" -sweep -plot sweep-alibaba
