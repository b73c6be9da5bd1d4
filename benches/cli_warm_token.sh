#!/usr/bin/env bash
# The cost of a warm `en-core-auth token` (a valid token stored, nothing sent): file
# storage against keyring storage (GNOME Keyring's Secret Service in a private D-Bus
# session), median and p95 over RUNS runs each, one process per run.
#   bash benches/cli_warm_token.sh [path/to/en-core-auth]   (default target/release/)
# Needs: the local_idp example built (cargo build --all-features --example local_idp),
# dbus-daemon, gnome-keyring, secret-tool.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/en-core-auth}
IDP=$(ls target/debug/examples/local_idp 2>/dev/null || true)
RUNS=${RUNS:-50}
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

"$IDP" --port 0 --client-id svc --client-secret bench-s3cret >"$work/idp.out" 2>/dev/null &
pids+=($!)
until grep -q listening "$work/idp.out" 2>/dev/null; do sleep 0.05; done
url=$(sed -n 's/^listening on //p' "$work/idp.out")

mkdir -p "$work/home" "$work/run" && chmod 700 "$work/run"
# A bus that starts nothing by itself (no service files): only our unlocked keyring.
cat >"$work/bus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:path=$work/bus</listen>
<policy context="default"><allow send_destination="*" eavesdrop="true"/>
<allow eavesdrop="true"/><allow own="*"/></policy></busconfig>
CONF
dbus-daemon --nofork --nopidfile --config-file="$work/bus.conf" >/dev/null 2>&1 &
pids+=($!)
until [ -S "$work/bus" ]; do sleep 0.05; done
export HOME="$work/home" XDG_RUNTIME_DIR="$work/run" DBUS_SESSION_BUS_ADDRESS="unix:path=$work/bus"
printf bench-pw | gnome-keyring-daemon --foreground --unlock --components=secrets >/dev/null 2>&1 &
pids+=($!)
until printf x | secret-tool store --label=probe service probe user probe 2>/dev/null; do sleep 0.1; done

export EN_CORE_AUTH_TOKEN_URL="${url%/}/oauth2/token" EN_CORE_AUTH_CLIENT_ID=svc \
  EN_CORE_AUTH_CLIENT_SECRET=bench-s3cret EN_CORE_AUTH_CACHE_DIR="$work/cache"

measure() { # storage
  "$BIN" token --token-storage "$1" >/dev/null   # the one token request: warm from here on
  for _ in $(seq "$RUNS"); do
    start=$(date +%s%N)
    "$BIN" token --token-storage "$1" >/dev/null
    echo $(( ($(date +%s%N) - start) / 1000 ))
  done | sort -n >"$work/$1.us"
  median=$(sed -n "$(( (RUNS + 1) / 2 ))p" "$work/$1.us")
  p95=$(sed -n "$(( (RUNS * 95 + 99) / 100 ))p" "$work/$1.us")
  printf '%-8s median %6.1f ms   p95 %6.1f ms   (%s runs)\n' "$1" \
    "$(echo "$median / 1000" | bc -l)" "$(echo "$p95 / 1000" | bc -l)" "$RUNS"
}
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
measure file
measure keyring
