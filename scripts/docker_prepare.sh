#!/usr/bin/env bash
# What the Docker smoke test (tests/test_docker_engine.py) needs before it runs containers: an engine, then
# adapt:cpu and adapt:cuda. The tests start this in the background while other tests run.
#   scripts/docker_prepare.sh STATE_DIR
# Writes STATE_DIR/engine ("running", "started", or "none: <why no engine can be started>"), then
# STATE_DIR/cpu.rc and STATE_DIR/cuda.rc (each build's exit code; its log is STATE_DIR/build-KIND.log).
set -uo pipefail

state=$(mkdir -p "${1:?usage: docker_prepare.sh STATE_DIR}" && cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
rm -f "$state/engine" "$state/cpu.rc" "$state/cuda.rc"

publish() { echo "$2" >"$state/$1.tmp" && mv "$state/$1.tmp" "$state/$1"; }

if status=$(bash "$here/docker_engine.sh" start "$state" 2>"$state/engine.err"); then
    publish engine "$status"
else
    publish engine "none: $(tail -n 1 "$state/engine.err")"
    exit 0
fi
for kind in cpu cuda; do
    bash "$here/docker_build.sh" "$kind" "$state"
    publish "$kind.rc" "$?"
done
