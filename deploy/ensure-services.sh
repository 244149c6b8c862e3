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
# PostgreSQL's default of 100 connections; the setting needs a restart to take effect.
connections="$(psql -h 127.0.0.1 -U postgres -tAc 'SHOW max_connections' 2>/dev/null || echo 0)"
if [ "$connections" -gt 0 ] && [ "$connections" -lt 300 ]; then
  echo "raising PostgreSQL max_connections to 300 (restart)"
  psql -h 127.0.0.1 -U postgres -qc "ALTER SYSTEM SET max_connections = 300"
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
