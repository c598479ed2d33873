#!/bin/bash
# build-image.sh [IMAGE]: build the demo image of tinytemp's container handler
# (default name localhost/tinytemp-container-demo:latest) with podman, from
# image/ in this directory and the host's static busybox: FROM scratch, no
# base image, no registry, nothing downloaded.  Needs Debian's podman and
# busybox-static packages.
#   TINYTEMP_PODMAN   the podman program (default podman)
#   BUSYBOX           a statically linked busybox (default /bin/busybox)
# Extra podman global options (--root, --storage-driver...) can be given with
# CONTAINERS_STORAGE_CONF and CONTAINERS_CONF, as for any podman command.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
image=${1:-localhost/tinytemp-container-demo:latest}
podman=${TINYTEMP_PODMAN:-podman}
busybox=${BUSYBOX:-/bin/busybox}

if [ ! -x "$busybox" ]; then
	echo "build-image.sh: no busybox at $busybox (apt-get install busybox-static)" >&2
	exit 1
fi
# The image has no libraries: the busybox must be the static one.
if ldd "$busybox" >/dev/null 2>&1; then
	echo "build-image.sh: $busybox is dynamically linked (apt-get install busybox-static)" >&2
	exit 1
fi

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "$here/image/Containerfile" "$here/image/job.sh" "$context/"
cp "$busybox" "$context/busybox"
"$podman" build --pull=never --network=none --file "$context/Containerfile" --tag "$image" "$context"
