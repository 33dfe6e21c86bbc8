#!/usr/bin/env python3
"""Packs a root file system into an OCI image archive (image-spec 1.1 layout in a tar): one gzip layer, the image
config and manifest, `index.json` naming the tag. scripts/image.sh stages the root and calls this.

It needs no daemon, no registry and no root, and the same inputs give the same bytes (files sorted, owners and
modes from the staging rules below, every mtime the commit's time), so the image's digest identifies its contents.

    scripts/oci_image.py --root DIR --out FILE.tar [--docker-out FILE.tar] --tag NAME:TAG --config CONFIG.json
                         --epoch SECONDS

--docker-out also writes the same image (same layer, same config bytes, so the same image ID) as a `docker save`
archive: the OCI image spec has no health check, and podman and Docker honour the config's `Healthcheck` only in an
image they loaded in Docker's format.

CONFIG.json is the image config's `config` object (User, Entrypoint, Cmd, Env, ExposedPorts, Labels, ...). Prints
the manifest digest, the compressed size of the layer and the size of the files in it (bytes), one per line.
"""
import argparse
import datetime
import gzip
import hashlib
import io
import json
import os
import pathlib
import stat
import sys
import tarfile

# Owned by root except what the image's user must write: nothing in the root file system itself (it runs with a
# read-only root); the state directory is a mount point, left owned by the user so a volume inherits it.
USER_OWNED = {"var/lib/s3-canary"}
UID = 65532


def layer(root, epoch):
    """The root as an uncompressed tar (bytes) and the size of the regular files in it."""
    buffer = io.BytesIO()
    unpacked = 0
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        paths = sorted(p for p in root.rglob("*"))
        for path in paths:
            relative = path.relative_to(root).as_posix()
            info = tar.gettarinfo(str(path), arcname=relative)
            info.mtime = epoch
            info.uid = info.gid = UID if relative in USER_OWNED else 0
            info.uname = info.gname = ""
            mode = stat.S_IMODE(path.lstat().st_mode)
            if info.isdir():
                info.mode = 0o755
            elif info.isfile():
                info.mode = 0o755 if mode & 0o111 else 0o644
                unpacked += info.size
            info.pax_headers = {}
            if info.isfile():
                with path.open("rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
    return buffer.getvalue(), unpacked


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def add(tar, name, data, epoch):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = epoch
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, type=pathlib.Path)
    parser.add_argument("--out", required=True, type=pathlib.Path)
    parser.add_argument("--docker-out", type=pathlib.Path)
    parser.add_argument("--tag", required=True)
    parser.add_argument("--config", required=True, type=pathlib.Path)
    parser.add_argument("--epoch", required=True, type=int)
    args = parser.parse_args()

    tar, unpacked = layer(args.root, args.epoch)
    # mtime 0 in the gzip header: the compressed bytes depend on the contents only.
    compressed = gzip.compress(tar, compresslevel=9, mtime=0)
    created = datetime.datetime.fromtimestamp(args.epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    config = {
        "created": created,
        "architecture": {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine),
        "os": "linux",
        "config": json.loads(args.config.read_text()),
        "rootfs": {"type": "layers", "diff_ids": [digest(tar)]},
        "history": [{"created": created, "created_by": "scripts/image.sh"}],
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    labels = config["config"].get("Labels", {})
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config_bytes),
                   "size": len(config_bytes)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest(compressed),
                    "size": len(compressed)}],
        "annotations": {k: v for k, v in labels.items() if k.startswith("org.opencontainers.image.")},
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest(manifest_bytes),
                       "size": len(manifest_bytes),
                       "annotations": {"org.opencontainers.image.ref.name": args.tag}}],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    temporary = args.out.with_name(args.out.name + ".partial")
    with tarfile.open(temporary, "w", format=tarfile.PAX_FORMAT) as archive:
        add(archive, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode(), args.epoch)
        add(archive, "index.json", json.dumps(index, sort_keys=True).encode(), args.epoch)
        for blob in (config_bytes, manifest_bytes, compressed):
            add(archive, "blobs/sha256/" + digest(blob).split(":", 1)[1], blob, args.epoch)
    os.replace(temporary, args.out)
    if args.docker_out:
        hexes = [digest(blob).split(":", 1)[1] for blob in (config_bytes, compressed)]
        docker_manifest = [{"Config": f"{hexes[0]}.json", "RepoTags": [args.tag], "Layers": [f"{hexes[1]}.tar.gz"]}]
        temporary = args.docker_out.with_name(args.docker_out.name + ".partial")
        with tarfile.open(temporary, "w", format=tarfile.PAX_FORMAT) as archive:
            add(archive, "manifest.json", json.dumps(docker_manifest).encode(), args.epoch)
            add(archive, f"{hexes[0]}.json", config_bytes, args.epoch)
            add(archive, f"{hexes[1]}.tar.gz", compressed, args.epoch)
        os.replace(temporary, args.docker_out)
    print(digest(manifest_bytes))
    print(len(compressed))
    print(unpacked)
    return 0


if __name__ == "__main__":
    sys.exit(main())
