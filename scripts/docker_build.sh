#!/usr/bin/env bash
# Build docker/Dockerfile.KIND as adapt:KIND, on the official base where it can be pulled, else on a stand-in.
#   scripts/docker_build.sh cpu|cuda STATE_DIR
# Needs a running engine (scripts/docker_engine.sh). A user with Docker Hub and the PyTorch index gets the
# official bases and indexes untouched. Where no registry answers, the base is built from the distribution's
# archive with debootstrap: the apt mirror, CA bundle and pip index are read from this machine at run time,
# and CPU torch comes from a simple index served on 127.0.0.1 that `pip download` fills.
set -euo pipefail

kind=${1:?usage: docker_build.sh cpu|cuda STATE_DIR}
state=$(mkdir -p "${2:?usage: docker_build.sh cpu|cuda STATE_DIR}" && cd "$2" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
dockerfile=$root/docker/Dockerfile.$kind
[ -f "$dockerfile" ] || { echo "no $dockerfile" >&2; exit 2; }
log() { echo "[docker-build:$kind] $*" >&2; }

arg_default() { sed -n "s/^ARG $1=//p" "$dockerfile" | head -n 1; }
base=$(arg_default BASE_IMAGE)
standin_tag=adapt-standin/$base  # a stand-in never takes the official tag

host_cert() { local c=${PIP_CERT:-$(pip config get global.cert 2>/dev/null || true)}; [ -f "$c" ] && echo "$c" || true; }
host_index() { echo "${PIP_INDEX_URL:-$(pip config get global.index-url 2>/dev/null || true)}"; }

debian_mirror() {  # the first non-security Debian archive in this machine's apt sources
    { sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null
      awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; break}}' /etc/apt/sources.list 2>/dev/null
    } | tr ' ' '\n' | grep -v -- '-security' | grep -m 1 . || true
}

need_tools() {
    local missing=()
    for t in debootstrap zstd; do command -v "$t" >/dev/null || missing+=("$t"); done
    [ ${#missing[@]} = 0 ] && return
    log "installing ${missing[*]}"
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# standin TAG SUITE MIRROR INCLUDE SCRIPT [debootstrap options...]: a minimal root file system for TAG.
standin() {
    local tag=$1 suite=$2 mirror=$3 include=$4 script=$5 dir
    shift 5
    need_tools
    dir=$(mktemp -d "$state/rootfs.XXXXXX")
    log "building a stand-in for $tag: debootstrap $suite from ${mirror:-the default Debian mirror}"
    # shellcheck disable=SC2086
    debootstrap --variant=minbase --include="$include" "$@" "$suite" "$dir" $mirror $script >"$state/debootstrap-$suite.log" 2>&1 \
        || { tail -n 20 "$state/debootstrap-$suite.log" >&2; rm -rf "$dir"; exit 1; }
    local cert index
    cert=$(host_cert)
    index=$(host_index)
    if [ -n "$cert" ] || [ -n "$index" ]; then
        log "pip in the stand-in uses this machine's${cert:+ CA bundle}${index:+ index}"
        { echo "[global]"
          [ -n "$cert" ] && cp "$cert" "$dir/etc/pip-ca.pem" && echo "cert = /etc/pip-ca.pem"
          [ -n "$index" ] && echo "index-url = $index"
        } >"$dir/etc/pip.conf"
    fi
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
    echo "$dir"
}

python_standin() {  # python:3.11-slim: Debian bookworm's Python 3.11 in a venv at /opt/venv, first on PATH
    local dir
    dir=$(standin "$base" bookworm "$(debian_mirror)" python3,python3-venv,ca-certificates "")
    chroot "$dir" python3 -m venv /opt/venv
    tar -C "$dir" -c . | docker import --change 'ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$standin_tag" >/dev/null
    rm -rf "$dir"
}

cuda_standin() {  # nvidia/cuda:*-ubuntu24.04: plain Ubuntu noble (no CUDA libraries: torch's wheels bring their own)
    local dir
    log "the host has no Ubuntu keyring: debootstrap runs with --no-check-gpg (apt inside the image verifies as usual)"
    dir=$(standin "$base" noble "${UBUNTU_MIRROR:-http://archive.ubuntu.com/ubuntu}" ca-certificates,ubuntu-keyring \
        /usr/share/debootstrap/scripts/gutsy --no-check-gpg --components=main,universe)
    tar -C "$dir" -c . | docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' --change 'ENV NVIDIA_VISIBLE_DEVICES=all' \
        --change 'ENV NVIDIA_DRIVER_CAPABILITIES=compute,utility' --change 'CMD ["bash"]' - "$standin_tag" >/dev/null
    rm -rf "$dir"
}

# Prints the build argument that picks the base: none for the official image, BASE_IMAGE=<stand-in> otherwise.
ensure_base() {
    local why
    if docker image inspect "$base" >/dev/null 2>&1; then
        log "base $base: the official image, already in the engine"
    elif why=$(timeout 180 docker pull -q "$base" 2>&1 >/dev/null); then
        log "base $base: the official image, pulled"
    else
        log "base $base: cannot be pulled (${why:-timed out}); using the stand-in $standin_tag"
        if docker image inspect "$standin_tag" >/dev/null 2>&1; then
            log "stand-in $standin_tag: already in the engine"
        elif [ "$kind" = cpu ]; then python_standin; else cuda_standin; fi
        printf '%s\n' --build-arg "BASE_IMAGE=$standin_tag"
    fi
}

# The CPU torch index: the official one where it answers, else a simple index of `pip download`ed wheels on 127.0.0.1.
torch_index_args() {
    local official version wheels port
    official=$(arg_default TORCH_INDEX_URL)
    [ -n "$official" ] || return 0
    if curl -sf --max-time 10 -o /dev/null "${official%/}/torch/"; then log "torch from $official"; return; fi
    version=$(arg_default TORCH_VERSION)
    wheels=$state/torch-index/simple
    if [ ! -f "$wheels/.complete-$version" ]; then
        log "$official does not answer: pip download torch==$version (CPU, CPython 3.11) into a local index"
        local tmp
        tmp=$(mktemp -d "$state/wheels.XXXXXX")
        pip download -q "torch==$version" --only-binary=:all: --platform manylinux_2_28_x86_64 --python-version 3.11 \
            --implementation cp -d "$tmp" >&2
        rm -rf "$wheels" && mkdir -p "$wheels"
        for whl in "$tmp"/*.whl; do
            local name
            name=$(basename "$whl" | cut -d- -f1 | tr '[:upper:]_.' '[:lower:]--')
            mkdir -p "$wheels/$name" && mv "$whl" "$wheels/$name/"
        done
        rm -rf "$tmp"
        touch "$wheels/.complete-$version"
    fi
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    python3 -m http.server "$port" --bind 127.0.0.1 --directory "$wheels" >"$state/torch-index.log" 2>&1 &
    echo $! >"$state/torch-index.pid"
    for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$port/torch/" && break; sleep 0.1; done
    log "torch from the local index http://127.0.0.1:$port/"
    printf '%s\n' --build-arg "TORCH_INDEX_URL=http://127.0.0.1:$port/"
}

stop_index() { [ -f "$state/torch-index.pid" ] && kill "$(cat "$state/torch-index.pid")" 2>/dev/null; rm -f "$state/torch-index.pid"; }
trap stop_index EXIT

{ ensure_base; torch_index_args; } >"$state/build-args-$kind"  # in this shell: a failure stops the build here
mapfile -t extra <"$state/build-args-$kind"
start=$(date +%s)
# README's build line, as written, from the repository root, plus what this machine needs (logged in full)
build=(docker build --network host "${extra[@]}" -f "docker/Dockerfile.$kind" -t "adapt:$kind" .)
log "${build[*]} (log: $state/build-$kind.log)"
(cd "$root" && "${build[@]}") >"$state/build-$kind.log" 2>&1 || { tail -n 30 "$state/build-$kind.log" >&2; exit 1; }
log "built adapt:$kind in $(($(date +%s) - start)) s, $(docker image inspect -f '{{.Size}}' "adapt:$kind" | awk '{printf "%.2f GB", $1 / 1e9}')"
