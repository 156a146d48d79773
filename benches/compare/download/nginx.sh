#!/usr/bin/env bash
# The main job against a real server: the `download` example vs
# `curl --parallel` (libcurl's multi interface), fetching static files from
# a local nginx that this script installs (if missing), configures, starts
# and stops. See README.md ("Against nginx").
#
#   bash nginx.sh                      # both cases, 5 runs per client each
#   bash nginx.sh --reps 9 --cases big
#
# Arguments go to `compare-nginx run` (--reps, --cases small,big,
# --clients greenlet,greenlet-new,curl, --client-core). Environment: DOWNLOAD (another
# build of the example to measure, e.g. an older one), WORK (files, config,
# logs; default target/nginx), OUT (downloads; default a directory in
# /dev/shm, so writeback to disk does not disturb later runs),
# SERVER_CORE (nginx's core, default 1).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
work="${WORK:-$here/target/nginx}"
if [ -d /dev/shm ]; then default_out="/dev/shm/greenlet-nginx-$$"; else default_out="$work/out"; fi
out="${OUT:-$default_out}"
server_core="${SERVER_CORE:-1}"

# nginx lives in /usr/sbin, which a non-login shell may not have on PATH.
export PATH="$PATH:/usr/sbin:/sbin"
if ! command -v nginx >/dev/null; then
    echo "nginx.sh: installing nginx" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light || \
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx
fi
command -v curl >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl

# The user-facing build of the example (the default release profile), and
# this package's runner.
(cd "$root" && cargo build --release --example download)
(cd "$here" && cargo build --release --bin compare-nginx)
runner="$here/target/release/compare-nginx"
download="${DOWNLOAD:-$root/target/release/examples/download}"

mkdir -p "$work" "$out"
"$runner" gen --root "$work/www"
port="$("$runner" port)"

mkdir -p "$work/tmp"
user_line=""
if [ "$(id -u)" = 0 ]; then user_line="user root;"; fi
cat > "$work/nginx.conf" <<CONF
# Written by nginx.sh: one worker, static files from $work/www.
$user_line
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    default_type application/octet-stream;
    client_body_temp_path $work/tmp/body;
    proxy_temp_path $work/tmp/proxy;
    fastcgi_temp_path $work/tmp/fastcgi;
    uwsgi_temp_path $work/tmp/uwsgi;
    scgi_temp_path $work/tmp/scgi;
    server {
        listen 127.0.0.1:$port backlog=4096;
        root $work/www;
    }
}
CONF

# nginx in the foreground as our child, on its own core; stopped on exit.
taskset -c "$server_core" nginx -e "$work/error.log" -p "$work" -c "$work/nginx.conf" -g 'daemon off;' &
nginx_pid=$!
cleanup() {
    kill "$nginx_pid" 2>/dev/null || true
    wait "$nginx_pid" 2>/dev/null || true
    rm -rf "$out"
}
trap cleanup EXIT

for _ in $(seq 100); do
    if curl -sf -o /dev/null "http://127.0.0.1:$port/small/f001.bin"; then break; fi
    kill -0 "$nginx_pid" 2>/dev/null || { cat "$work/error.log" >&2; exit 1; }
    sleep 0.05
done

echo "nginx $(nginx -v 2>&1 | sed 's/.*nginx\///') on 127.0.0.1:$port (core $server_core); $(curl --version | head -1 | cut -d' ' -f1-2); load: $(uptime | sed 's/.*load average: //')"
"$runner" run --port "$port" --root "$work/www" --out "$out" --download "$download" "$@"
echo "load after: $(uptime | sed 's/.*load average: //')"
