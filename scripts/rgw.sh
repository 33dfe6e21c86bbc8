#!/usr/bin/env bash
# Throwaway single-node Ceph cluster with a radosgw on loopback, for tests and benchmarks.
#
#   scripts/rgw.sh start DIR   starts mon, osd (memstore) and radosgw under DIR, creates the test user and
#                              buckets, and writes DIR/env (shell exports for the tests)
#   scripts/rgw.sh stop DIR    stops what start started, by PID, in the order Ceph needs
#
# Ports come from RGW_PORT / MON_PORT (defaults 7480 / 3300). Settings are those of ../shared/FACTS.md:
# crc messenger mode (else radosgw hangs ~300 s), no cephx, pool size one, tcp_nodelay on the frontend.
set -euo pipefail

cmd=${1:?usage: rgw.sh start|stop DIR}
dir=${2:?usage: rgw.sh start|stop DIR}
RGW_PORT=${RGW_PORT:-7480}
MON_PORT=${MON_PORT:-3300}
ACCESS_KEY=${RGW_ACCESS_KEY:-S3CANARYTESTKEY00001}
SECRET_KEY=${RGW_SECRET_KEY:-s3canary-test-secret-0123456789abcdefghij}
BUCKETS=${RGW_BUCKETS:-canary-path canary-vh canary-misc}

log() { printf '[rgw] %s\n' "$*" >&2; }
die() { log "FAILED: $*"; [ -d "$dir/log" ] && tail -n 20 "$dir"/log/*.log >&2 2>/dev/null; exit 1; }

stop() {
    for name in radosgw osd mon; do
        local pidfile="$dir/$name.pid"
        [ -f "$pidfile" ] || continue
        local pid; pid=$(cat "$pidfile")
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$pidfile"
    done
}

start() {
    for bin in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool ceph-authtool curl; do
        command -v "$bin" >/dev/null || die "$bin is not installed (apt-get install radosgw ceph-mon ceph-osd curl)"
    done
    rm -rf "$dir"; mkdir -p "$dir"/{log,run,mon.a,osd.0,rgw}
    local fsid; fsid=$(cat /proc/sys/kernel/random/uuid)
    local conf="$dir/ceph.conf"
    cat > "$conf" <<CONF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$MON_PORT
public addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
ms client mode = crc
ms cluster mode = crc
ms service mode = crc
ms mon service mode = crc
ms mon cluster mode = crc
ms bind ipv6 = false
mon data avail warn = 1
mon data avail crit = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
osd pool default size = 1
osd pool default min size = 1
osd crush chooseleaf type = 0
osd pool default pg autoscale mode = off
osd pool default pg num = 8
osd pool default pgp num = 8
run dir = $dir/run
log file = $dir/log/\$name.log
pid file = $dir/run/\$name.pid
admin socket = $dir/run/\$name.asok
keyring = $dir/keyring
[mon.a]
mon data = $dir/mon.a
[osd.0]
osd data = $dir/osd.0
osd objectstore = memstore
memstore device bytes = 1073741824
[client.rgw.test]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1
rgw dns name = localhost
rgw data = $dir/rgw
CONF
    ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
    monmaptool --create --addv a "[v2:127.0.0.1:$MON_PORT]" --fsid "$fsid" "$dir/monmap" >/dev/null
    ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/keyring" >/dev/null 2>&1 \
        || die "ceph-mon --mkfs"
    ceph-mon -c "$conf" -i a -f > "$dir/log/mon.out" 2>&1 &
    echo $! > "$dir/mon.pid"
    local ceph=(ceph -c "$conf" --connect-timeout 20)
    local id; id=$(timeout 60 "${ceph[@]}" osd create) || die "ceph osd create (monitor not answering)"
    ceph-osd -c "$conf" -i "$id" --mkfs >/dev/null 2>&1 || die "ceph-osd --mkfs"
    ceph-osd -c "$conf" -i "$id" -f > "$dir/log/osd.out" 2>&1 &
    echo $! > "$dir/osd.pid"
    "${ceph[@]}" osd crush add "osd.$id" 1.0 root=default >/dev/null 2>&1 || die "crush add"
    for _ in $(seq 1 120); do
        "${ceph[@]}" osd stat 2>/dev/null | grep -q '1 up' && break
        sleep 0.5
    done
    "${ceph[@]}" osd stat 2>/dev/null | grep -q '1 up' || die "the OSD did not come up"
    radosgw -c "$conf" -n client.rgw.test -f > "$dir/log/rgw.out" 2>&1 &
    echo $! > "$dir/radosgw.pid"
    for _ in $(seq 1 240); do
        curl -s -o /dev/null "http://127.0.0.1:$RGW_PORT/" && break
        kill -0 "$(cat "$dir/radosgw.pid")" 2>/dev/null || die "radosgw exited"
        sleep 0.5
    done
    curl -s -o /dev/null "http://127.0.0.1:$RGW_PORT/" || die "radosgw does not answer on port $RGW_PORT"
    radosgw-admin -c "$conf" -n client.rgw.test user create --uid=s3canary-test --display-name="s3-canary tests" \
        --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >/dev/null 2>&1 || die "radosgw-admin user create"
    for bucket in $BUCKETS; do
        local code
        for _ in $(seq 1 20); do
            code=$(curl -s -o "$dir/log/bucket.out" -w '%{http_code}' -X PUT --aws-sigv4 "aws:amz:us-east-1:s3" \
                --user "$ACCESS_KEY:$SECRET_KEY" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
                "http://127.0.0.1:$RGW_PORT/$bucket") || true
            [ "$code" = 200 ] && break
            sleep 0.5
        done
        [ "$code" = 200 ] || die "creating bucket $bucket answered $code: $(cat "$dir/log/bucket.out")"
    done
    # The first write to a fresh RGW creates its data pool (~2 s): do it here, not in a test with a short timeout.
    for bucket in $BUCKETS; do
        curl -s -o /dev/null -X PUT --aws-sigv4 "aws:amz:us-east-1:s3" --user "$ACCESS_KEY:$SECRET_KEY" \
            -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" --data-binary warm-up "http://127.0.0.1:$RGW_PORT/$bucket/warm-up" \
            || die "warm-up PUT to $bucket"
        curl -s -o /dev/null -X DELETE --aws-sigv4 "aws:amz:us-east-1:s3" --user "$ACCESS_KEY:$SECRET_KEY" \
            -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "http://127.0.0.1:$RGW_PORT/$bucket/warm-up" || true
    done
    # Virtual-host addressing needs BUCKET.localhost to resolve to loopback.
    for bucket in $BUCKETS; do
        grep -q "[[:space:]]$bucket.localhost\$" /etc/hosts 2>/dev/null || echo "127.0.0.1 $bucket.localhost" >> /etc/hosts
    done
    cat > "$dir/env" <<ENV
export S3CANARY_TEST_RGW_ENDPOINT=http://127.0.0.1:$RGW_PORT
export S3CANARY_TEST_RGW_VH_ENDPOINT=http://localhost:$RGW_PORT
export S3CANARY_TEST_RGW_ACCESS_KEY=$ACCESS_KEY
export S3CANARY_TEST_RGW_SECRET_KEY=$SECRET_KEY
export S3CANARY_TEST_RGW_BUCKETS="$BUCKETS"
export S3CANARY_TEST_RGW_DIR=$dir
ENV
    log "up: http://127.0.0.1:$RGW_PORT (buckets: $BUCKETS)"
}

case "$cmd" in
    start) start ;;
    stop) stop ;;
    *) die "unknown command $cmd" ;;
esac
