#!/usr/bin/env bash
# Make sure a Docker engine answers, starting one only if none does; stop only an engine this script started.
#   scripts/docker_engine.sh start STATE_DIR   prints "running" (an engine already answered) or "started"
#   scripts/docker_engine.sh stop STATE_DIR    stops the engine that `start` started, if any
# Exit code 3 with one line on stderr: no engine can be started here (the caller skips, printing the reason).
set -euo pipefail

cmd=${1:?usage: docker_engine.sh start|stop STATE_DIR}
state=${2:?usage: docker_engine.sh start|stop STATE_DIR}
mkdir -p "$state"
pidfile=$state/dockerd.pid

log() { echo "[docker-engine] $*" >&2; }
cannot() { echo "no Docker engine: $*" >&2; exit 3; }
answers() { docker info >/dev/null 2>&1; }

start() {
    command -v docker >/dev/null || cannot "the docker client is not installed"
    if answers; then rm -f "$pidfile"; echo running; return; fi
    if ! command -v dockerd >/dev/null; then
        [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || cannot "dockerd is missing and cannot be installed (needs root and apt-get)"
        log "installing Debian's docker.io"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io; } \
            >"$state/apt.log" 2>&1 || cannot "apt-get install docker.io failed (see $state/apt.log)"
    fi
    [ "$(id -u)" = 0 ] || cannot "dockerd is installed but not running, and starting it needs root"
    log "starting dockerd (log: $state/dockerd.log)"
    setsid dockerd >"$state/dockerd.log" 2>&1 </dev/null &
    echo $! >"$pidfile"
    for _ in $(seq 120); do
        if answers; then echo started; return; fi
        kill -0 "$(cat "$pidfile")" 2>/dev/null || cannot "dockerd exited: $(tail -n 1 "$state/dockerd.log")"
        sleep 0.5
    done
    cannot "dockerd did not answer within 60 s: $(tail -n 1 "$state/dockerd.log")"
}

stop() {
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    rm -f "$pidfile"
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
}

case $cmd in
    start) start ;;
    stop) stop ;;
    *) echo "usage: docker_engine.sh start|stop STATE_DIR" >&2; exit 2 ;;
esac
