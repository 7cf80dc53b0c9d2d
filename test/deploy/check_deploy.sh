#!/usr/bin/env bash
# The deploy/ files stay true: the alert rules pass `promtool check rules` and their unit
# tests (`promtool test rules`), the Grafana dashboard is valid JSON, and every warp_* metric
# the rules and the dashboard name is one a real warpd serves (scraped here from a node
# that runs clustered, strong and RESP, so those families appear). A missing promtool FAILS:
# scripts/deps.sh installs Debian's prometheus package, which ships it.
set -euo pipefail
build=$1
src=$2
deploy=$src/deploy
command -v promtool >/dev/null || { echo "promtool missing: install Debian's prometheus (scripts/deps.sh)" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl missing (scripts/deps.sh)" >&2; exit 1; }
(cd "$deploy/prometheus" && promtool check rules warp-alerts.yml && promtool test rules warp-alerts.test.yml)
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["panels"], "no panels"' \
  "$deploy/grafana/warp-dashboard.json"

tmp=$(mktemp -d /tmp/warp-deploy-XXXXXX)
pid=
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
# The systemd unit parses, with its binary pointed at the one just built (systemd-analyze
# checks that ExecStart exists and every directive is known).
command -v systemd-analyze >/dev/null || { echo "systemd-analyze missing (Debian systemd)" >&2; exit 1; }
sed "s|/usr/local/bin/warpd|$build/apps/warpd/warpd|" "$deploy/systemd/warpd.service" >"$tmp/warpd.service"
systemd-analyze verify --man=no "$tmp/warpd.service"
grep -q '^ProtectSystem=strict' "$deploy/systemd/warpd.service"
grep -q '^DynamicUser=yes' "$deploy/systemd/warpd.service"
grep -q '^StateDirectory=warpd' "$deploy/systemd/warpd.service"
# Peers that never answer (ports 1, 2) make it clustered and strong; it still serves. The
# ABD engine: the warp_strong_ranges_* families are its.
"$build/apps/warpd/warpd" --listen 127.0.0.1:0 --http 127.0.0.1:0 --resp 127.0.0.1:0 \
  --storage memory --data-dir "$tmp/data" --peers 127.0.0.1:1,127.0.0.1:2 \
  --pattern 'strong:*=strong_distributed' --pattern '*=strong_local' --log-level warn \
  --strong-engine abd \
  >"$tmp/log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do grep -q "ready: node" "$tmp/log" && break; sleep 0.1; done
http=$(sed -n 's/.*ready: node [^ ]* http \([^ ]*\).*/\1/p' "$tmp/log" | head -n1)
resp=$(sed -n 's/.*resp \([0-9.:]*\).*/\1/p' "$tmp/log" | head -n1)
[[ -n $http ]] || { cat "$tmp/log" >&2; echo "warpd did not start" >&2; exit 1; }
# Traffic so the per-command families have samples.
if command -v redis-cli >/dev/null; then
  redis-cli -p "${resp##*:}" SET k v >/dev/null
  redis-cli -p "${resp##*:}" GET k >/dev/null
  redis-cli -p "${resp##*:}" NOSUCHCOMMAND >/dev/null || true
fi
curl -sf "http://$http/metrics" >"$tmp/metrics"
promtool check metrics <"$tmp/metrics"
# The Raft engine (warpd's default) serves the warp_raft_* families instead: a second node,
# its groups leaderless for the same reason, scraped the same way.
kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
"$build/apps/warpd/warpd" --listen 127.0.0.1:0 --http 127.0.0.1:0 --resp "" \
  --storage memory --data-dir "$tmp/data-raft" --peers 127.0.0.1:1,127.0.0.1:2 \
  --pattern 'strong:*=strong_distributed' --log-level warn --strong-engine raft \
  >"$tmp/log-raft" 2>&1 &
pid=$!
for _ in $(seq 1 300); do grep -q "ready: node" "$tmp/log-raft" && break; sleep 0.1; done
http=$(sed -n 's/.*ready: node [^ ]* http \([^ ]*\).*/\1/p' "$tmp/log-raft" | head -n1)
[[ -n $http ]] || { cat "$tmp/log-raft" >&2; echo "warpd (raft) did not start" >&2; exit 1; }
curl -sf "http://$http/metrics" >"$tmp/metrics-raft"
promtool check metrics <"$tmp/metrics-raft"
served=$(cat "$tmp/metrics" "$tmp/metrics-raft" | sed -n 's/^# TYPE \([a-z0-9_]*\) .*/\1/p' | sort -u)
# Families a node shows only in a state this one is not in (a breaker used, ...).
conditional="warp_storage_breaker_state"
named=$(cat "$deploy/prometheus/warp-alerts.yml" "$deploy/grafana/warp-dashboard.json" |
  grep -o 'warp_[a-z0-9_]*' | sed 's/_\(bucket\|sum\|count\)$//' | sort -u)
missing=0
for m in $named; do
  grep -qx "$m" <<<"$served" && continue
  grep -qw "$m" <<<"$conditional" && continue
  echo "deploy names $m, which warpd does not serve" >&2
  missing=1
done
((missing == 0))
echo "deploy check passed"
