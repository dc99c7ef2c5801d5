#!/usr/bin/env bash
# Print the container engine of this machine and the environment it needs, as NAME=value lines:
#
#   ENGINE=podman
#   CONTAINERS_CONF=<repository>/tests/container/containers.conf    (only where podman needs it)
#
# ENGINE is empty when there is neither podman nor a running docker engine. scripts/demo.py reads this; the build
# scripts make the same choice (scripts/lib/container-engine.sh). The check runs a throwaway container from a tiny
# root filesystem made on the spot, so it gives the right answer on an empty container storage too.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO_ROOT

SCRIPT_NAME=container-env
# shellcheck source=scripts/lib/container-engine.sh
source "${REPO_ROOT}/scripts/lib/container-engine.sh"

main() {
    local engine
    engine="$(find_container_engine)"
    select_containers_conf "${engine}"
    echo "ENGINE=${engine}"
    if [[ -n "${CONTAINERS_CONF:-}" ]]; then
        echo "CONTAINERS_CONF=${CONTAINERS_CONF}"
    fi
}

main "$@"
