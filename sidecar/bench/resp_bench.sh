#!/usr/bin/env bash
# redis-benchmark against warpd's RESP sidecar and against a redis-server started in the same
# run on the same machine: GET SET INCR MSET, LPUSH LPOP ZADD ZRANGE (on 1000 random lists
# and sorted sets: the typed values are rewritten whole per write, see docs/sidecar.md), and
# a MULTI/EXEC of 5 commands (warp-bench resp-tx-load), -c 50, without and with -P 50.
# Prints a table with the ratio warp/redis per row and a JSON line last.
#
# Usage: sidecar/bench/resp_bench.sh [--warpd PATH] [--requests N] [--pipelined-requests N]
#                                    [--repeat R] [--keyspace K] [--json] [--warp-bench PATH]
# --keyspace N spreads the keys over N random names (-r N): then writes pay for the
# storage adapter's and L1's lookups at that size, not just for one hot key.
# Each row takes the best of R runs per server (these machines are noisy); the servers are
# measured alternately so drift hits both.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
warpd="${WARPD:-}"
requests=200000
prequests=2000000
repeat=2
keyspace=0  # 0 = redis-benchmark's default (one key per test); N = -r N random keys
json_only=0
warp_bench=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --warpd) warpd="$2"; shift 2 ;;
    --requests) requests="$2"; shift 2 ;;
    --pipelined-requests) prequests="$2"; shift 2 ;;
    --repeat) repeat="$2"; shift 2 ;;
    --keyspace) keyspace="$2"; shift 2 ;;
    --json) json_only=1; shift ;;
    --warp-bench) warp_bench="$2"; shift 2 ;;
    -h|--help) sed -n 2,9p "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
if [[ -z "$warpd" ]]; then
  for d in build-sidecar build build-release; do
    [[ -x "$root/$d/apps/warpd/warpd" ]] && { warpd="$root/$d/apps/warpd/warpd"; break; }
  done
fi
for tool in redis-server redis-benchmark python3; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool not found" >&2; exit 1; }
done
[[ -x "$warpd" ]] || { echo "FAIL: warpd not found (build it or pass --warpd)" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "FAIL: nothing listens on $1" >&2; return 1
}

work="$(mktemp -d /tmp/warp-resp-bench.XXXXXX)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

wport="$(free_port)"
"$warpd" --listen "" --http "" --storage memory --data-dir "$work/warp" \
  --resp "127.0.0.1:$wport" --log-level warn >"$work/warpd.log" 2>&1 &
pids+=($!)
rport="$(free_port)"
redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
  >"$work/redis.log" 2>&1 &
pids+=($!)
wait_port "$wport"
wait_port "$rport"

# One redis-benchmark run; prints requests per second.
random_keys=()
[[ "$keyspace" -gt 0 ]] && random_keys=(-r "$keyspace")
alive() {
  kill -0 "${pids[0]}" 2>/dev/null || { echo "FAIL: warpd exited; its log:" >&2; cat "$work/warpd.log" >&2; exit 1; }
  kill -0 "${pids[1]}" 2>/dev/null || { echo "FAIL: redis-server exited" >&2; exit 1; }
}
# Typed rows: a command of redis-benchmark's own (its title starts with the test name), on
# 1000 random keys so each list or sorted set stays small.
declare -A custom=(
  [lpush]="LPUSH bench:list:__rand_int__ job"
  [lpop]="LPOP bench:list:__rand_int__"
  [zadd]="ZADD bench:zset:__rand_int__ __rand_int__ m:__rand_int__"
  [zrange]="ZRANGE bench:zset:__rand_int__ 0 9 WITHSCORES"
)
rps() {  # port test pipeline requests
  alive
  if [[ "$2" == tx ]]; then  # MULTI + 5 commands + EXEC: transactions per second
    [[ -x "$warp_bench" ]] || { echo 0; return; }
    local per=$(( $4 / 10 ))
    timeout 300 "$warp_bench" resp-tx-load --port "$1" --clients 50 --pipeline "$3" \
      --transactions "$per" 2>/dev/null | tail -1
    return
  fi
  local what=(-t "$2") keys=("${random_keys[@]}")
  if [[ -n "${custom[$2]:-}" ]]; then
    read -r -a what <<<"${custom[$2]}"
    [[ ${#keys[@]} -eq 0 ]] && keys=(-r 1000)
  fi
  # redis-benchmark retries a vanished server forever: bound every run.
  timeout 300 redis-benchmark -h 127.0.0.1 -p "$1" -c 50 -P "$3" -n "$4" "${keys[@]}" --csv "${what[@]}" 2>/dev/null |
    awk -F'"' -v t="$(echo "$2" | tr a-z A-Z)" 'NR > 1 && index(toupper($2), t) == 1 { print $4; exit }'
}

tests=(get set incr mset lpush lpop zadd zrange tx)
declare -A best
for pipeline in 1 50; do
  n="$requests"; [[ "$pipeline" -gt 1 ]] && n="$prequests"
  # Fill the keyspace first so GET measures hits on both servers.
  for port in "$wport" "$rport"; do
    redis-benchmark -h 127.0.0.1 -p "$port" -t set -c 50 -P 50 -n $((keyspace * 4 + 1000)) "${random_keys[@]}" -q >/dev/null 2>&1
  done
  for t in "${tests[@]}"; do
    for ((i = 0; i < repeat; i++)); do
      for side in warp redis; do
        port="$wport"; [[ "$side" == redis ]] && port="$rport"
        v="$(rps "$port" "$t" "$pipeline" "$n")"
        v="${v:-0}"
        key="$side/$t/$pipeline"
        cur="${best[$key]:-0}"
        best[$key]="$(python3 -c "print(max(float('$v'), float('$cur')))")"
      done
    done
  done
done

python3 - "$json_only" "$requests" "$prequests" "$repeat" "$keyspace" <<PY
import json, sys
json_only = sys.argv[1] == "1"
best = {$(for k in "${!best[@]}"; do printf '"%s": %s, ' "$k" "${best[$k]}"; done)}
rows = []
for pipeline in (1, 50):
    for t in ("get", "set", "incr", "mset", "lpush", "lpop", "zadd", "zrange", "tx"):
        w = best.get(f"warp/{t}/{pipeline}", 0.0)
        r = best.get(f"redis/{t}/{pipeline}", 0.0)
        rows.append({"test": "MULTI5" if t == "tx" else t.upper(), "pipeline": pipeline, "warp_rps": round(w), "redis_rps": round(r),
                     "ratio": round(w / r, 3) if r else 0.0})
if not json_only:
    print(f"{'test':<6} {'-P':>3} {'warp req/s':>12} {'redis req/s':>12} {'ratio':>7}")
    for row in rows:
        print(f"{row['test']:<6} {row['pipeline']:>3} {row['warp_rps']:>12,} {row['redis_rps']:>12,} {row['ratio']:>7.2f}")
    print(f"(-c 50, best of {sys.argv[4]} runs, {sys.argv[2]} requests unpipelined, {sys.argv[3]} pipelined, keyspace {sys.argv[5] or 'default'};")
    print(" LPUSH..ZRANGE on 1000 random keys; MULTI5 = MULTI SET INCR LPUSH LPOP ZADD EXEC, transactions/s, a tenth of the requests)")
print(json.dumps({"bench": "resp", "clients": 50, "keyspace": int(sys.argv[5]), "rows": rows,
                  "min_ratio": min(r["ratio"] for r in rows)}))
PY
