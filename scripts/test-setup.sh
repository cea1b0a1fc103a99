#!/usr/bin/env bash
# What the tests need from the machine, set up when it is missing: Redis and PostgreSQL (installed,
# started, database `test`), Chromium for the browser tests, GNOME Keyring and D-Bus for the keychain
# store's tests against a real Secret Service. `npm test` runs it first (package.json#pretest) and
# .ci/run through `npm test`; on a machine that has everything it only checks, in about a second.
#
#   scripts/test-setup.sh            install what is missing (apt), start the services, create `test`
#   scripts/test-setup.sh --missing  print the apt packages that are missing, one a line (.ci/run
#                                    installs them in the background while npm ci compiles)
#
# Only 127.0.0.1 is used: REDIS_URL / DATABASE_URL pointing elsewhere are taken as given.
# Fails (never skips) when something is missing and cannot be installed: not root and no sudo,
# or no apt-get; the message says what to install.
set -euo pipefail
cd "$(dirname "$0")/.."

REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
CHROMIUM=${CHROMIUM_PATH:-/usr/bin/chromium}
local_redis() { [[ $REDIS_URL =~ ^redis://(127\.0\.0\.1|localhost)(:6379)?/?$ ]]; }
local_postgres() { [[ $DATABASE_URL =~ ^postgres(ql)?://postgres@(127\.0\.0\.1|localhost)(:5432)?/test$ ]]; }

log() { printf '== test-setup: %s\n' "$*" >&2; }
die() { printf 'test-setup: %s\n' "$*" >&2; exit 1; }

redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
postgres_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }

missing_packages() {
  # redis-server on the PATH too: some tests start Redis servers of their own to restart them.
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null || echo redis-server
  if local_postgres && ! postgres_up; then
    command -v pg_ctlcluster >/dev/null || echo postgresql
  fi
  command -v pg_isready >/dev/null && command -v psql >/dev/null || echo postgresql-client
  [ -x "$CHROMIUM" ] || echo chromium
  command -v gnome-keyring-daemon >/dev/null || echo gnome-keyring
  command -v dbus-daemon >/dev/null || echo dbus
}

if [ "${1:-}" = --missing ]; then
  missing_packages | sort -u
  exit 0
fi

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo "$@"
  else die "needs root to run: $* (run it yourself, or npm test as root)"
  fi
}

wait_for() { # name, command: 30 tries, 1 s apart
  local name=$1; shift
  for _ in $(seq 1 30); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  die "$name did not come up"
}

mapfile -t packages < <(missing_packages | sort -u)
if [ ${#packages[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || die "missing ${packages[*]}, and no apt-get to install them: install them, then run npm test again"
  log "installing ${packages[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  mapfile -t still < <(missing_packages | sort -u)
  [ ${#still[@]} -eq 0 ] || die "still missing after apt-get install: ${still[*]}"
fi

if local_redis && ! redis_up; then
  log "starting Redis on 127.0.0.1:6379"
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/test-setup.log
  wait_for Redis redis_up
fi

if local_postgres && ! postgres_up; then
  log "starting PostgreSQL on 127.0.0.1:5432"
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$version" ]; then
    version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
    as_root pg_createcluster "$version" main >/dev/null
  fi
  conf=/etc/postgresql/$version/main
  # The tests connect as postgres without a password over TCP (trust, 127.0.0.1 only).
  if ! as_root grep -q '^host all all 127.0.0.1/32 trust' "$conf/pg_hba.conf"; then
    as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$conf/pg_hba.conf"
  fi
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_for PostgreSQL postgres_up
fi

if local_postgres && ! psql "$DATABASE_URL" -c 'select 1' >/dev/null 2>&1; then
  log "creating database test"
  psql -h 127.0.0.1 -U postgres -d postgres -c 'create database test' >/dev/null 2>&1 ||
    as_root su postgres -c "psql -c 'create database test'" >/dev/null
  psql "$DATABASE_URL" -c 'select 1' >/dev/null 2>&1 || die "cannot connect to $DATABASE_URL (trust authentication for postgres on 127.0.0.1?)"
fi

redis-cli -u "$REDIS_URL" ping 2>/dev/null | grep -q PONG || die "Redis does not answer at $REDIS_URL"
pg_isready -d "$DATABASE_URL" -q || die "PostgreSQL does not answer at $DATABASE_URL"
