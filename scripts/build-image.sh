#!/usr/bin/env bash
# Build the inference image from inference_image/Dockerfile with podman, or docker where an engine runs.
#
#   scripts/build-image.sh
#   CA_BUNDLE=/path/to/ca-bundle.pem scripts/build-image.sh      # building behind a TLS-intercepting proxy
#   BASE_IMAGE=localhost/ml-inference-base:bookworm scripts/build-image.sh   # a base of your choice
#
# Environment:
#   IMAGE       tag to build. Default: localhost/ml-inference:latest
#   BASE_IMAGE  the Dockerfile's BASE_IMAGE build argument. Default: the local debootstrap base
#               (localhost/ml-inference-base:bookworm) where it exists, else the Dockerfile's public Python slim
#               image where it can be pulled, else the local base, built first with scripts/build-base-image.sh
#               (no registry needed, about a minute)
#   CA_BUNDLE   PEM bundle pip trusts inside the build (the full bundle, e.g. the host's, not only the proxy CA).
#               Passed as a build secret: mounted read-only for the one RUN step that installs packages, never
#               stored in a layer. Default: none
#   FLAVOUR     the Dockerfile's FLAVOUR build argument: sklearn (scikit-learn only) or full (scikit-learn,
#               XGBoost, LightGBM and ONNX Runtime; about 65 MB more). Default: the Dockerfile's, sklearn
#   ENGINE      podman or docker. Default: docker where `docker info` works, else podman
#   CONTEXT     build context holding the Dockerfile. Default: inference_image/ of this repository
# Extra arguments are passed to the engine's build command (e.g. --no-cache, --pull=never).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO_ROOT
IMAGE="${IMAGE:-localhost/ml-inference:latest}"
CONTEXT="${CONTEXT:-${REPO_ROOT}/inference_image}"

readonly LOCAL_BASE_IMAGE=localhost/ml-inference-base:bookworm

SCRIPT_NAME=build-image
# shellcheck source=scripts/lib/container-engine.sh
source "${REPO_ROOT}/scripts/lib/container-engine.sh"

# choose_base_image ENGINE: print the base to build on (see BASE_IMAGE above); logs why.
choose_base_image() {
    local engine="$1" public
    if [[ -n "${BASE_IMAGE:-}" ]]; then
        echo "${BASE_IMAGE}"
        return
    fi
    if "${engine}" image inspect "${LOCAL_BASE_IMAGE}" >/dev/null 2>&1; then
        log "base image ${LOCAL_BASE_IMAGE} (found locally)"
        echo "${LOCAL_BASE_IMAGE}"
        return
    fi
    public="$(sed -n 's/^ARG BASE_IMAGE=//p' "${CONTEXT}/Dockerfile")"
    if [[ -n "${public}" ]] && "${engine}" pull "${public}" >/dev/null 2>&1; then
        log "base image ${public} (pulled)"
        echo "${public}"
        return
    fi
    log "base image: ${public:-the default base} cannot be pulled here; building ${LOCAL_BASE_IMAGE} with debootstrap (about a minute)"
    ENGINE="${engine}" BASE_IMAGE="${LOCAL_BASE_IMAGE}" "${REPO_ROOT}/scripts/build-base-image.sh" >&2 ||
        die "building the base image failed"
    echo "${LOCAL_BASE_IMAGE}"
}

main() {
    local engine base
    local -a args
    engine="$(container_engine)"
    [[ -f "${CONTEXT}/Dockerfile" ]] || die "no Dockerfile in ${CONTEXT}"
    select_containers_conf "${engine}"  # the build's RUN steps run containers too
    base="$(choose_base_image "${engine}")"
    args=(build --tag "${IMAGE}" --file "${CONTEXT}/Dockerfile" --build-arg "BASE_IMAGE=${base}")
    if [[ -n "${FLAVOUR:-}" ]]; then
        args+=(--build-arg "FLAVOUR=${FLAVOUR}")
    fi
    if [[ -n "${CA_BUNDLE:-}" ]]; then
        [[ -r "${CA_BUNDLE}" ]] || die "CA_BUNDLE=${CA_BUNDLE} is not a readable file"
        args+=(--secret "id=ca_bundle,src=${CA_BUNDLE}")
    fi
    log "${engine} ${args[*]} $* ${CONTEXT}"
    "${engine}" "${args[@]}" "$@" "${CONTEXT}"
    log "built ${IMAGE} on ${base}"
}

main "$@"
