#!/usr/bin/env bash
# The container image: FROM scratch, the stripped release binary, exactly the shared libraries it loads (ldd), CA
# certificates, tzdata, /etc/passwd with the non-root user s3-canary (uid 65532), OCI labels with the version and
# commit, entrypoint s3-canary, port 9340, a health check (`s3-canary healthcheck`: no shell or curl in the image).
#
#   scripts/image.sh [BINARY]   build (BINARY: a binary scripts/release.sh built; without it, it runs release.sh)
#
# Writes the OCI archive .build-image/s3-canary-VERSION.oci.tar (scripts/oci_image.py packs it: no daemon, no root,
# the same inputs give the same digest; `skopeo copy oci-archive:FILE docker://REGISTRY/...` pushes it), the same
# image as a `docker save` archive (.docker.tar: `docker load` / `podman load` keep its health check), and
# .build-image/image.json (name, digest, sizes); loads the image into podman when podman is installed. Prints the
# image's name last. Sizes: bench/REPORT.md.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.build-image
binary=${1:-}
if [ -z "$binary" ]; then
    binary=$(scripts/release.sh | tail -1)
fi
[ -x "$binary" ] || { echo "image: $binary is not an executable" >&2; exit 1; }
stamp=$(python3 scripts/stamp.py --print "$binary")
revision=$(sed -n 's/.*revision=\([^ ]*\).*/\1/p' <<<"$stamp")
[ -n "$revision" ] || { echo "image: $binary carries no build stamp: build it with scripts/release.sh" >&2; exit 1; }
version=$("$binary" --version | sed -n '1s/^s3-canary //p')
name="ghcr.io/s3-canary/s3-canary:$version"
# Every timestamp in the image is the commit's, so a rebuild of the same commit gives the same digest.
epoch=$(git log -1 --format=%ct 2>/dev/null || echo 0)

root="$out/rootfs"
rm -rf "$root"
mkdir -p "$root/usr/bin" "$root/etc/ssl/certs" "$root/usr/share" "$root/etc/s3-canary" "$root/var/lib/s3-canary"
strip --strip-all -o "$root/usr/bin/s3-canary" "$binary"
# The libraries the loader maps, and the loader itself, each at the path the binary asks for (copied, not linked).
ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u | while read -r library; do
    mkdir -p "$root$(dirname "$library")"
    cp -L "$library" "$root$library"
done
# NIOSSL reads the system's trust store at this path (Debian's layout).
cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
cp -a /usr/share/zoneinfo "$root/usr/share/zoneinfo"
printf 'root:x:0:0:root:/root:/sbin/nologin\ns3-canary:x:65532:65532:s3-canary:/var/lib/s3-canary:/sbin/nologin\n' \
    >"$root/etc/passwd"
printf 'root:x:0:\ns3-canary:x:65532:\n' >"$root/etc/group"
# glibc's resolver: /etc/hosts first, then DNS (its built-in default puts DNS first).
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"

created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)
# The image config (image-spec's `config`). Healthcheck is Docker's field: podman and Docker run it, Kubernetes uses
# its own probes (Config/kubernetes). The state directory is a volume: the root file system can be read-only.
cat >"$out/config.json" <<EOF
{
  "User": "65532:65532",
  "Entrypoint": ["/usr/bin/s3-canary"],
  "Cmd": ["run", "--log-format", "json"],
  "Env": ["S3CANARY_CONFIG=/etc/s3-canary/s3-canary.yaml", "TZ=UTC"],
  "ExposedPorts": {"9340/tcp": {}},
  "Volumes": {"/var/lib/s3-canary": {}},
  "WorkingDir": "/var/lib/s3-canary",
  "StopSignal": "SIGTERM",
  "Healthcheck": {"Test": ["CMD", "/usr/bin/s3-canary", "healthcheck"], "Interval": 30000000000,
                  "Timeout": 5000000000, "StartPeriod": 10000000000, "Retries": 3},
  "Labels": {
    "org.opencontainers.image.title": "s3-canary",
    "org.opencontainers.image.description": "Probes S3-compatible backends through circuit breakers and exports Prometheus metrics.",
    "org.opencontainers.image.version": "$version",
    "org.opencontainers.image.revision": "$revision",
    "org.opencontainers.image.created": "$created",
    "org.opencontainers.image.source": "https://github.com/s3-canary/s3-canary",
    "org.opencontainers.image.documentation": "https://github.com/s3-canary/s3-canary/blob/main/docs/operations.md"
  }
}
EOF
archive="$out/s3-canary-$version.oci.tar"
docker_archive="$out/s3-canary-$version.docker.tar"
{ read -r digest; read -r compressed; read -r unpacked; } < <(python3 scripts/oci_image.py --root "$root" \
    --out "$archive" --docker-out "$docker_archive" --tag "$name" --config "$out/config.json" --epoch "$epoch")
printf '{"name": "%s", "archive": "%s", "digest": "%s", "compressed_bytes": %s, "unpacked_bytes": %s}\n' \
    "$name" "$archive" "$digest" "$compressed" "$unpacked" >"$out/image.json"
echo "image: $archive ($digest): $((compressed / 1000000)) MB compressed, $((unpacked / 1000000)) MB unpacked" >&2
if command -v podman >/dev/null; then
    # Docker's format, which keeps the health check (scripts/oci_image.py); the same image ID as the OCI archive's.
    podman load --quiet --input "$docker_archive" >&2
fi
echo "$name"
