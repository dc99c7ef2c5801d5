# Sourced by the container scripts: one-line logging, the choice of container engine, and the environment that
# engine needs on this host. The sourcing script sets SCRIPT_NAME first. scripts/container-env.sh prints the same
# choice for scripts/demo.py, so the decision is made here only.

log() { printf '%s: %s\n' "${SCRIPT_NAME}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

_LIB_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# runc and lower default ulimits, for sandboxed hosts (README, Troubleshooting); a normal Linux host needs neither.
SANDBOX_CONTAINERS_CONF="${_LIB_ROOT}/tests/container/containers.conf"

# ENGINE if set, else docker where an engine answers `docker info`, else podman; nothing when there is neither.
find_container_engine() {
    if [[ -n "${ENGINE:-}" ]]; then
        echo "${ENGINE}"
    elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
        echo docker
    elif command -v podman >/dev/null 2>&1; then
        echo podman
    fi
}

container_engine() {
    local engine
    engine="$(find_container_engine)"
    [[ -n "${engine}" ]] ||
        die "neither podman nor a running docker engine found (scripts/ensure-container-tools.sh installs podman)"
    echo "${engine}"
}

# Run a throwaway container from a root filesystem made here (the host's `true` and the libraries it loads), so
# the answer needs no image and holds on an empty container storage. On failure, prints podman's error.
podman_runs_a_container() {
    local rootfs name true_bin library output status=0
    rootfs="$(mktemp -d "${TMPDIR:-/tmp}/podman-probe.XXXXXX")"
    name="ml-inference-probe-$$-${RANDOM}"
    true_bin="$(type -P true)"
    cp -L "${true_bin}" "${rootfs}/true"
    for library in $(ldd "${true_bin}" 2>/dev/null | grep -o '/[^ )]*'); do
        cp -L --parents "${library}" "${rootfs}"
    done
    output="$(podman run --rm --name "${name}" --network=none --rootfs "${rootfs}" /true 2>&1)" || status=$?
    # --rm removes what ran; a container whose creation failed may stay behind in state Created.
    podman rm --force "${name}" >/dev/null 2>&1 || true
    rm -rf "${rootfs}"
    if ((status != 0)); then
        echo "${output}" | tail -n 1
    fi
    return "${status}"
}

# Export CONTAINERS_CONF=SANDBOX_CONTAINERS_CONF where podman can run a container only with it (crun rejecting the
# cgroup layout, or root without CAP_SYS_RESOURCE for podman's default ulimits). A CONTAINERS_CONF the caller set
# is kept. Where podman runs no container either way, warn and leave the environment alone: the run that follows
# reports the real error.
select_containers_conf() {
    local engine="$1" plain sandboxed
    [[ "${engine}" == podman && -z "${CONTAINERS_CONF:-}" ]] || return 0
    plain="$(podman_runs_a_container)" && return 0
    if sandboxed="$(CONTAINERS_CONF="${SANDBOX_CONTAINERS_CONF}" podman_runs_a_container)"; then
        export CONTAINERS_CONF="${SANDBOX_CONTAINERS_CONF}"
        log "podman needs ${SANDBOX_CONTAINERS_CONF#"${_LIB_ROOT}/"} on this host (runc, lower ulimits)"
        return 0
    fi
    log "warning: podman cannot run a container here: ${plain}; with ${SANDBOX_CONTAINERS_CONF#"${_LIB_ROOT}/"}: ${sandboxed}"
}
