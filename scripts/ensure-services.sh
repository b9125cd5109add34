#!/usr/bin/env bash
# Start the local PostgreSQL, Redis and RabbitMQ if they are installed here but not running.
# Anything still unreachable afterwards is reported by `fleetctl check` with what to run.
set -u

pg_up() { pg_isready -q -h 127.0.0.1 -p "${PGPORT:-5432}" 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; }
rabbit_up() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }

if ! pg_up && command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi
if ! redis_up && command -v redis-server >/dev/null; then
  echo "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
fi
if ! rabbit_up && command -v rabbitmq-server >/dev/null; then
  echo "starting RabbitMQ"
  rabbitmq-server -detached || true
fi

# Give freshly started servers a moment to accept connections.
for _ in $(seq 1 60); do
  if pg_up && redis_up && rabbit_up; then exit 0; fi
  sleep 1
done
exit 0
