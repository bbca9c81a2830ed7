#!/usr/bin/env bash
# Runs Debian's nginx as a benchmark peer, in the foreground, from a throw-away prefix.
#
# Usage: run_nginx.sh --port PORT --root DIR [--cpus LIST]
#   --port  TCP port on 127.0.0.1 (required).
#   --root  directory to serve (required; must be readable by this user).
#   --cpus  CPUs for the workers, e.g. "0" or "0,1" or "0-3": one worker per CPU, each pinned
#           with worker_cpu_affinity. Default: this process's allowed CPUs (what taskset gave).
#
# Prints "listening on PORT" once nginx accepts connections. On SIGTERM or SIGINT it asks nginx
# for a graceful stop (SIGQUIT), waits up to 5 s (then SIGKILL), deletes the prefix and exits 0.
# Exits non-zero if nginx is missing, fails to start, or dies on its own.
set -euo pipefail

NGINX=${NGINX:-/usr/sbin/nginx}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
port="" root="" cpus=""
while (($#)); do
  case $1 in
    --port) port=$2; shift 2 ;;
    --port=*) port=${1#*=}; shift ;;
    --root) root=$2; shift 2 ;;
    --root=*) root=${1#*=}; shift ;;
    --cpus) cpus=$2; shift 2 ;;
    --cpus=*) cpus=${1#*=}; shift ;;
    *) echo "run_nginx.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[[ $port =~ ^[0-9]+$ && -n $root ]] || { echo "usage: run_nginx.sh --port PORT --root DIR [--cpus LIST]" >&2; exit 2; }
[[ -x $NGINX ]] || { echo "run_nginx.sh: $NGINX not found (apt-get install nginx-light)" >&2; exit 1; }
root=$(cd "$root" && pwd)
[[ -n $cpus ]] || cpus=$(awk '/^Cpus_allowed_list:/ {print $2}' /proc/self/status)

# Expand "0-2,5" into "0 1 2 5".
cpu_list=()
IFS=, read -r -a parts <<<"$cpus"
for part in "${parts[@]}"; do
  if [[ $part =~ ^([0-9]+)-([0-9]+)$ ]]; then
    for ((c = BASH_REMATCH[1]; c <= BASH_REMATCH[2]; c++)); do cpu_list+=("$c"); done
  elif [[ $part =~ ^[0-9]+$ ]]; then
    cpu_list+=("$part")
  else
    echo "run_nginx.sh: bad --cpus '$cpus'" >&2; exit 2
  fi
done
# worker_cpu_affinity takes one bit mask per worker, CPU 0 rightmost.
affinity=""
for c in "${cpu_list[@]}"; do
  mask=1
  for ((i = 0; i < c; i++)); do mask+=0; done
  affinity+="$mask "
done

prefix=$(mktemp -d /tmp/kev-nginx.XXXXXX)
chmod 755 "$prefix"
user_directive=""
# As root the workers would switch to 'nobody'; keep this user so they can read any root dir.
if [[ $(id -u) -eq 0 ]]; then user_directive="user root root;"; fi
sed -e "s|@PREFIX@|$prefix|g" -e "s|@PORT@|$port|g" -e "s|@ROOT@|$root|g" \
    -e "s|@WORKERS@|${#cpu_list[@]}|g" -e "s|@AFFINITY@|${affinity% }|g" \
    -e "s|@USER_DIRECTIVE@|$user_directive|g" \
    "$here/nginx.conf.in" >"$prefix/nginx.conf"

nginx_pid=""
cleanup() {
  if [[ -n $nginx_pid ]] && kill -0 "$nginx_pid" 2>/dev/null; then
    kill -QUIT "$nginx_pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      kill -0 "$nginx_pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$nginx_pid" 2>/dev/null; then
      echo "run_nginx.sh: nginx ignored SIGQUIT for 5 s, killing it" >&2
      kill -KILL "$nginx_pid" 2>/dev/null || true
    fi
    wait "$nginx_pid" 2>/dev/null || true
  fi
  rm -rf "$prefix"
}
trap 'cleanup; exit 0' TERM INT
trap cleanup EXIT

"$NGINX" -p "$prefix" -c "$prefix/nginx.conf" -e stderr &
nginx_pid=$!

# Ready when the port accepts a connection (bash's /dev/tcp: no extra tools needed).
for ((i = 0; i < 100; i++)); do
  if ! kill -0 "$nginx_pid" 2>/dev/null; then
    wait "$nginx_pid" && status=0 || status=$?
    echo "run_nginx.sh: nginx exited during start-up (status $status)" >&2
    nginx_pid=""
    exit 1
  fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "listening on $port"
    break
  fi
  sleep 0.1
done
if ((i == 100)); then
  echo "run_nginx.sh: nginx did not accept on port $port within 10 s" >&2
  exit 1
fi

# `wait` returns early when a trapped signal arrives, so the TERM trap runs promptly.
wait "$nginx_pid" && status=0 || status=$?
nginx_pid=""
echo "run_nginx.sh: nginx exited on its own (status $status)" >&2
exit 1
