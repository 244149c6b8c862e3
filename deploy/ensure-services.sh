#!/usr/bin/env bash
# Make sure the local PostgreSQL and RabbitMQ (with its management API, which the service
# tests use to make a virtual host per test) are up; start them if they are not.
set -euo pipefail

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q; }
if ! pg_up; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  for _ in $(seq 60); do pg_up && break; sleep 1; done
  pg_up || { echo "PostgreSQL did not start" >&2; exit 1; }
fi

# Nine services, the gateway and a test stack beside a developer's `make run` outgrow
# PostgreSQL's default of 100 connections.  Its default shared_buffers (128 MB) is less
# than one 200,000-client table with its indexes: the searches' tails were reads from the
# OS cache (the client name search's SQL p99 34 -> 21 ms with 1 GB, 2026-12-08).  A
# quarter of the memory, at most 1 GB (PostgreSQL's own advice for a dedicated server
# is 25 %; this one shares the box with the services).  Both need a restart.
pg() { psql -h 127.0.0.1 -U postgres -tAc "$1" 2>/dev/null; }
restart=""
connections="$(pg 'SHOW max_connections' || echo 0)"
if [ "${connections:-0}" -gt 0 ] && [ "$connections" -lt 300 ]; then
  echo "raising PostgreSQL max_connections to 300"
  pg "ALTER SYSTEM SET max_connections = 300" >/dev/null
  restart=1
fi
memory_mb=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 ))
wanted_mb=$(( memory_mb / 4 < 1024 ? memory_mb / 4 : 1024 ))
# in 8 kB pages, whatever unit SHOW would print
buffers_mb=$(( $(pg "SELECT setting FROM pg_settings WHERE name = 'shared_buffers'" || echo 0) * 8 / 1024 ))
if [ "$buffers_mb" -gt 0 ] && [ "$buffers_mb" -lt "$wanted_mb" ]; then
  echo "raising PostgreSQL shared_buffers to ${wanted_mb} MB"
  pg "ALTER SYSTEM SET shared_buffers = '${wanted_mb}MB'" >/dev/null
  restart=1
fi
if [ -n "$restart" ]; then
  echo "restarting PostgreSQL for its new settings"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main restart
  for _ in $(seq 60); do pg_up && break; sleep 1; done
  pg_up || { echo "PostgreSQL did not come back" >&2; exit 1; }
fi

rabbit_up() { rabbitmq-diagnostics -q check_port_connectivity >/dev/null 2>&1; }
if ! rabbit_up; then
  echo "starting RabbitMQ"
  rabbitmq-server -detached || true
  for _ in $(seq 90); do rabbit_up && break; sleep 1; done
  rabbit_up || { echo "RabbitMQ did not start" >&2; exit 1; }
fi
if ! rabbitmq-plugins list -e -m 2>/dev/null | grep -qx rabbitmq_management; then
  rabbitmq-plugins enable rabbitmq_management >/dev/null
fi
for _ in $(seq 60); do
  curl -fsS -u guest:guest http://127.0.0.1:15672/api/overview >/dev/null 2>&1 && break
  sleep 1
done
