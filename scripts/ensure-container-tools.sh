#!/usr/bin/env bash
# Install what the container tests and the benchmark need, from Debian packages, if anything is missing:
# podman, buildah, runc, debootstrap, fuse-overlayfs, slirp4netns, uidmap and wrk. Quick when all are present.
#
# Installing needs root and apt-get. Where that is not possible the script says what is missing and exits 0,
# so `make test` still runs (the container tests then skip), unless REQUIRE_CONTAINER_TESTS=1 (CI), where
# missing tools are an error.
set -euo pipefail

# command -> Debian package providing it
declare -rA PACKAGE_OF=(
    [podman]=podman
    [buildah]=buildah
    [runc]=runc
    [debootstrap]=debootstrap
    [fuse-overlayfs]=fuse-overlayfs
    [slirp4netns]=slirp4netns
    [newuidmap]=uidmap
    [wrk]=wrk
)

log() { printf 'ensure-container-tools: %s\n' "$*" >&2; }

missing_packages() {
    local command
    for command in "${!PACKAGE_OF[@]}"; do
        # debootstrap, runc and newuidmap live in sbin, which is not on every user's PATH.
        if ! PATH="${PATH}:/usr/sbin:/sbin" command -v "${command}" >/dev/null 2>&1; then
            echo "${PACKAGE_OF[${command}]}"
        fi
    done | sort -u
}

# cannot_install REASON PACKAGE...
cannot_install() {
    local reason="$1"
    shift
    log "missing packages: $*; ${reason}"
    if [[ "${REQUIRE_CONTAINER_TESTS:-0}" == 1 ]]; then
        exit 1
    fi
    log "the container tests will be skipped"
    exit 0
}

main() {
    local -a missing
    mapfile -t missing < <(missing_packages)
    if ((${#missing[@]} == 0)); then
        return
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        cannot_install "no apt-get on this machine; install them with your package manager" "${missing[@]}"
    fi
    if [[ "$(id -u)" != 0 ]]; then
        cannot_install "not root; run: sudo apt-get install ${missing[*]}" "${missing[@]}"
    fi
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -qq -y "${missing[@]}" >/dev/null
}

main "$@"
