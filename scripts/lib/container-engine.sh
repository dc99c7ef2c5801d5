# Sourced by the container scripts: one-line logging, and the choice of container engine.
# The sourcing script sets SCRIPT_NAME first.

log() { printf '%s: %s\n' "${SCRIPT_NAME}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ENGINE if set, else docker where an engine answers `docker info`, else podman.
container_engine() {
    if [[ -n "${ENGINE:-}" ]]; then
        echo "${ENGINE}"
    elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
        echo docker
    elif command -v podman >/dev/null 2>&1; then
        echo podman
    else
        die "neither podman nor a running docker engine found (scripts/ensure-container-tools.sh installs podman)"
    fi
}
