#!/usr/bin/env bash
# Reproduce the Python task-queue baseline from a fresh Debian 12 machine (run as root).
# Installs Redis, PostgreSQL 15 and RabbitMQ from Debian, starts them on 127.0.0.1,
# builds two virtualenvs (arq needs redis-py<6, the others need redis-py>=6/8),
# then runs bench.py, which writes results.json and RESULTS.md under ./bench/results/peers of the folder it is run from.
#
#   bash bench/peers/run.sh             # full run (from the project root)
#   BENCH_ARGS="--n 2000 --reps 1" bash bench/peers/run.sh   # quick smoke run
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$HOME/.cache/peer-bench"

VENV=${QBENCH_VENV:-$HOME/.cache/peer-bench/venv}
ARQ_VENV=${QBENCH_ARQ_VENV:-$HOME/.cache/peer-bench/venv-arq}
export QBENCH_VENV=$VENV QBENCH_ARQ_VENV=$ARQ_VENV DEBIAN_FRONTEND=noninteractive

# --- servers ---------------------------------------------------------------
if ! command -v redis-server >/dev/null || ! command -v pg_ctlcluster >/dev/null \
   || ! command -v rabbitmq-server >/dev/null; then
  apt-get update
  apt-get install -y redis-server postgresql rabbitmq-server
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --pidfile "$HOME/.cache/peer-bench/redis.pid" --logfile "$HOME/.cache/peer-bench/redis.log"
fi

if ! pg_isready -h 127.0.0.1 -q 2>/dev/null; then
  PGVER=$(ls /usr/lib/postgresql | sort -n | tail -1)
  HBA=/etc/postgresql/$PGVER/main/pg_hba.conf
  if ! grep -qE '^host\s+all\s+all\s+127.0.0.1/32\s+trust' "$HBA"; then
    cp -n "$HBA" "$HBA.orig"
    sed -i -E 's/^(local|host)(\s+.*)(peer|scram-sha-256|md5)$/\1\2trust/' "$HBA"
    pg_ctlcluster "$PGVER" main reload 2>/dev/null || true
  fi
  pg_ctlcluster "$PGVER" main start 2>/dev/null || true
fi
for _ in $(seq 30); do pg_isready -h 127.0.0.1 -q && break; sleep 1; done
psql -h 127.0.0.1 -U postgres -tAc "select 1 from pg_database where datname='bench'" | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -c "create database bench"
psql -h 127.0.0.1 -U postgres -tAc "select 1 from pg_database where datname='peer_bench_jobyard'" | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -c "create database peer_bench_jobyard"
JY=${JOBYARD_VENV:-$PWD/.venv}
[ -x "$JY/bin/jobyard" ] || { echo "no jobyard at $JY: run from the project root after installing it, or set JOBYARD_VENV"; exit 2; }
JOBYARD_CONFIG="$HERE/jobyard_cfg/default.toml" PYTHONPATH="$HERE/apps" "$JY/bin/jobyard" db upgrade

if ! (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
  RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 rabbitmq-server -detached
  rabbitmqctl await_startup --timeout 60
fi

# --- Python ------------------------------------------------------------------
if [ ! -x "$VENV/bin/celery" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -U pip
  "$VENV/bin/pip" install -q "celery[redis]==5.7.0" "rq==3.0.0" "dramatiq[redis]==2.2.1" "huey==3.5.4" \
    "procrastinate==3.10.0" "psycopg[binary]==3.3.9" "taskiq==0.13.0" "taskiq-redis==1.2.4" "redis==8.1.0" "hiredis"
fi
if [ ! -x "$ARQ_VENV/bin/arq" ]; then
  python3 -m venv "$ARQ_VENV"
  "$ARQ_VENV/bin/pip" install -q -U pip
  "$ARQ_VENV/bin/pip" install -q "arq==0.28.0" hiredis
fi

# --- run ------------------------------------------------------------------------
# Per-library N: each throughput phase is sized to take roughly 5-25 s on 2 cores,
# so the whole run stays under ~20 minutes. arq's latency uses fewer jobs because
# each one waits for its 0.5 s poll.
"$VENV/bin/python" "$HERE/bench.py" ${BENCH_ARGS:---n 10000 --lat-n 1000 --reps 3 \
  --n-for rq=1000,rq-simple=3000,arq=2000,procrastinate=2000 --lat-n-for rq=500,arq=40}
