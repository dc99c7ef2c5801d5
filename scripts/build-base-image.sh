#!/usr/bin/env bash
# Build a local Debian bookworm image with Python 3.11, for machines that cannot pull from a registry.
#
# debootstrap installs a minimal system from the host's own apt mirror (read from the host's apt sources at
# run time, never written into the repository), then the root filesystem is imported as an image. Use it as
# the Dockerfile's base:
#
#   scripts/build-base-image.sh
#   BASE_IMAGE=localhost/ml-inference-base:bookworm scripts/build-image.sh
#
# Environment:
#   BASE_IMAGE  tag of the image to create. Default: localhost/ml-inference-base:bookworm
#   MIRROR      Debian mirror URL. Default: the first bookworm source in /etc/apt/sources.list{,.d/}
#   ENGINE      podman or docker. Default: docker where `docker info` works, else podman
#   FORCE=1     rebuild even if the image already exists
# Needs root (debootstrap) and takes about a minute.
set -euo pipefail

readonly SUITE=bookworm
# python3-venv brings ensurepip's wheels, so the image's venv gets its own pip; the system python3-pip (~20 MB with
# setuptools and wheel) would only weigh down every image built on this base.
readonly PACKAGES=python3,python3-venv,ca-certificates
# A tarball import has no environment; Dockerfiles extend PATH with ${PATH}, so set Debian's default.
readonly IMAGE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO_ROOT
BASE_IMAGE="${BASE_IMAGE:-localhost/ml-inference-base:${SUITE}}"

SCRIPT_NAME=build-base-image
# shellcheck source=scripts/lib/container-engine.sh
source "${REPO_ROOT}/scripts/lib/container-engine.sh"

image_exists() {
    "$1" image inspect "$2" >/dev/null 2>&1
}

# Print the URI of the first "deb" source for $SUITE in the host's apt configuration (deb822 or one-line format).
host_mirror() {
    local file uri
    for file in /etc/apt/sources.list.d/*.sources; do
        [[ -r "${file}" ]] || continue
        uri="$(awk -v suite="${SUITE}" '
            function flush() {
                if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ") && uris != "") { split(uris, u, " "); print u[1]; found = 1; exit }
                types = ""; suites = ""; uris = ""
            }
            /^[ \t]*$/ { flush(); next }
            /^#/ { next }
            tolower($1) == "types:" { $1 = ""; types = $0 }
            tolower($1) == "suites:" { $1 = ""; suites = $0 }
            tolower($1) == "uris:" { $1 = ""; uris = $0 }
            END { if (!found) flush() }
        ' "${file}" | sed 's/^ *//')"
        if [[ -n "${uri}" ]]; then
            echo "${uri}"
            return
        fi
    done
    for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -r "${file}" ]] || continue
        # deb [options] URI suite components...
        uri="$(sed -E 's/\[[^]]*\]//' "${file}" | awk -v suite="${SUITE}" '$1 == "deb" && $3 == suite { print $2; exit }')"
        if [[ -n "${uri}" ]]; then
            echo "${uri}"
            return
        fi
    done
}

# Unmount anything debootstrap left mounted inside the root filesystem, then remove it.
remove_rootfs() {
    local rootfs="$1" mount_point
    [[ -d "${rootfs}" ]] || return 0
    awk -v root="${rootfs}/" 'index($2, root) == 1 { print $2 }' /proc/mounts | sort -r |
        while read -r mount_point; do umount -l "${mount_point}" || true; done
    rm -rf --one-file-system "${rootfs}"
}

# Drop what a runtime image never reads: downloaded .debs, apt lists, documentation, man pages, translations.
slim_rootfs() {
    local rootfs="$1"
    rm -rf "${rootfs}"/var/cache/apt/archives/*.deb "${rootfs}"/var/lib/apt/lists/* \
        "${rootfs}"/usr/share/man/* "${rootfs}"/usr/share/info/* "${rootfs}"/var/log/*.log
    find "${rootfs}/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
    find "${rootfs}/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete
    find "${rootfs}/usr/share/doc" -mindepth 1 -type d -empty -delete
}

main() {
    local engine mirror rootfs
    engine="$(container_engine)"
    if [[ "${FORCE:-0}" != 1 ]] && image_exists "${engine}" "${BASE_IMAGE}"; then
        log "${BASE_IMAGE} already exists (FORCE=1 rebuilds it)"
        return
    fi
    [[ "$(id -u)" == 0 ]] || die "debootstrap needs root"
    command -v debootstrap >/dev/null 2>&1 || die "debootstrap not found (scripts/ensure-container-tools.sh)"
    mirror="${MIRROR:-$(host_mirror)}"
    [[ -n "${mirror}" ]] || die "no '${SUITE}' source in the host's apt configuration; set MIRROR=<debian mirror URL>"

    mkdir -p "${REPO_ROOT}/build"
    rootfs="$(mktemp -d "${REPO_ROOT}/build/base-rootfs.XXXXXX")"
    # shellcheck disable=SC2064  # expand now: the trap must remove this very directory
    trap "remove_rootfs '${rootfs}'" EXIT

    log "debootstrap ${SUITE} (${PACKAGES}) from the host's mirror"
    if ! debootstrap --variant=minbase --include="${PACKAGES}" "${SUITE}" "${rootfs}" "${mirror}" >/dev/null; then
        tail -n 30 "${rootfs}/debootstrap/debootstrap.log" >&2 || true
        die "debootstrap failed"
    fi
    slim_rootfs "${rootfs}"

    log "importing as ${BASE_IMAGE} with ${engine}"
    tar --numeric-owner -C "${rootfs}" -c . |
        "${engine}" import --change "ENV PATH=${IMAGE_PATH}" --change 'ENV LANG=C.UTF-8' \
            --change 'CMD ["python3"]' - "${BASE_IMAGE}" >/dev/null
    log "done: ${BASE_IMAGE}"
}

main "$@"
