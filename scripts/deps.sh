#!/usr/bin/env bash
# Installs the Debian packages Warp needs to build, test and run. Idempotent: quiet and
# fast when everything is present. Runs apt-get only for what is missing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libcaf-dev librdkafka-dev libmsgpack-cxx-dev libspdlog-dev catch2
  libcli11-dev nlohmann-json3-dev libcpp-httplib-dev libbenchmark-dev libssl-dev
  libsqlite3-dev libpqxx-dev libhiredis-dev libnats-dev
  postgresql redis-server redis-tools nats-server sqlite3 prometheus
  nodejs npm procps iproute2 curl openssl python3 python3-redis zsh systemd etcd-server
  faketime
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# Node.js may come from outside Debian on some images; accept a working `node` and `npm`.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  tmp=()
  for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || tmp+=("$p"); done
  missing=("${tmp[@]+"${tmp[@]}"}")
fi

if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
