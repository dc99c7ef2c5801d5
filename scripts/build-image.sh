#!/usr/bin/env bash
# Build the inference image from inference_image/Dockerfile with podman, or docker where an engine runs.
#
#   scripts/build-image.sh
#   CA_BUNDLE=/path/to/ca-bundle.pem scripts/build-image.sh      # building behind a TLS-intercepting proxy
#   BASE_IMAGE=localhost/ml-inference-base:bookworm scripts/build-image.sh   # no registry: scripts/build-base-image.sh
#
# Environment:
#   IMAGE       tag to build. Default: localhost/ml-inference:latest
#   BASE_IMAGE  the Dockerfile's BASE_IMAGE build argument. Default: the Dockerfile's (a public Python slim image)
#   CA_BUNDLE   PEM bundle pip trusts inside the build (the full bundle, e.g. the host's, not only the proxy CA).
#               Passed as a build secret: mounted read-only for the one RUN step that installs packages, never
#               stored in a layer. Default: none
#   ENGINE      podman or docker. Default: docker where `docker info` works, else podman
#   CONTEXT     build context holding the Dockerfile. Default: inference_image/ of this repository
# Extra arguments are passed to the engine's build command (e.g. --no-cache, --pull=never).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO_ROOT
IMAGE="${IMAGE:-localhost/ml-inference:latest}"
CONTEXT="${CONTEXT:-${REPO_ROOT}/inference_image}"

SCRIPT_NAME=build-image
# shellcheck source=scripts/lib/container-engine.sh
source "${REPO_ROOT}/scripts/lib/container-engine.sh"

main() {
    local engine
    local -a args
    engine="$(container_engine)"
    [[ -f "${CONTEXT}/Dockerfile" ]] || die "no Dockerfile in ${CONTEXT}"
    args=(build --tag "${IMAGE}" --file "${CONTEXT}/Dockerfile")
    if [[ -n "${BASE_IMAGE:-}" ]]; then
        args+=(--build-arg "BASE_IMAGE=${BASE_IMAGE}")
    fi
    if [[ -n "${CA_BUNDLE:-}" ]]; then
        [[ -r "${CA_BUNDLE}" ]] || die "CA_BUNDLE=${CA_BUNDLE} is not a readable file"
        args+=(--secret "id=ca_bundle,src=${CA_BUNDLE}")
    fi
    log "${engine} ${args[*]} $* ${CONTEXT}"
    "${engine}" "${args[@]}" "$@" "${CONTEXT}"
    log "built ${IMAGE}"
}

main "$@"
