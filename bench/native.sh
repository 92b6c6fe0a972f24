# shellcheck shell=bash
# MariaDB's own replication for bench/run (sourced): a master and N replicas of mariadbd on free
# ports, each with its own datadir under a directory of the caller's, the same small-footprint
# flags as demo/src/launcher.rs, and the binlog settings of ../shared/DESIGN.md §4 on all of
# them (replicas log their updates too, so each of them could be promoted).
#
#   native_start DIR REPLICAS   start them, replicating; sets NATIVE_PORTS (master first)
#   native_converge             wait (MASTER_GTID_WAIT) until every replica has the master's binlog
#   native_stop                 stop them (SIGTERM, then SIGKILL after 30 s); safe to call twice
#
# Needs DB_USER and DB_PASS: the account every server accepts over TCP, also used to replicate.
# BENCH_NATIVE_PARALLEL sets the replicas' slave_parallel_threads (default 0: MariaDB's default,
# one applier thread). BENCH_NATIVE_REPLICA_DURABLE=0 relaxes the replicas (not the master) to
# sync_binlog=0 and innodb_flush_log_at_trx_commit=2; by default they fsync like the master, which
# a one-thread applier pays for every transaction, where the master groups concurrent commits.

NATIVE_PORTS=()
NATIVE_PIDS=()
NATIVE_DIR=
NATIVE_PARALLEL=${BENCH_NATIVE_PARALLEL:-0}
NATIVE_REPLICA_DURABLE=${BENCH_NATIVE_REPLICA_DURABLE:-1}

native_bin() { # name -> path (/usr/sbin is often not in PATH)
  local d
  for d in ${PATH//:/ } /usr/sbin /usr/local/sbin /usr/local/mysql/bin /usr/local/mysql/scripts; do
    [ -x "$d/$1" ] && { echo "$d/$1"; return 0; }
  done
  echo "$1 not found: apt-get install mariadb-server" >&2
  return 1
}

native_quote() { # a single-quoted SQL string literal
  local s=${1//\\/\\\\}
  s=${s//\'/\\\'}
  printf "'%s'" "$s"
}

native_root_args() { [ "$(id -u)" = 0 ] && echo --user=root || true; }

# The launcher's footprint (many servers share 2 cores) without its --skip-log-bin.
NATIVE_FOOTPRINT=(--innodb-buffer-pool-size=32M --innodb-log-file-size=16M --innodb-use-native-aio=0)

native_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

native_sql() { # port sql  (over TCP, as DB_USER)
  mariadb --no-defaults --protocol=TCP -h127.0.0.1 -P"$1" -u"$DB_USER" -p"$DB_PASS" -N -e "$2"
}

native_launch() { # index -> starts server <index> (0 = master), sets NATIVE_PORTS/NATIVE_PIDS[index]
  local i=$1 d="$NATIVE_DIR/db$1" mariadbd port pid attempt sync=1 flush=1
  mariadbd=$(native_bin mariadbd)
  if [ "$i" != 0 ] && [ "$NATIVE_REPLICA_DURABLE" = 0 ]; then
    sync=0
    flush=2
  fi
  for attempt in 1 2 3; do
    port=$(native_free_port)
    [ "$port" = 3306 ] && continue
    : >"$d/error.log" # this attempt's log only: a taken port is recognised in it
    # shellcheck disable=SC2046
    "$mariadbd" --no-defaults --datadir="$d/data" --port="$port" --socket="$d/sock" \
      --bind-address=127.0.0.1 --skip-name-resolve --pid-file="$d/pid" --log-error="$d/error.log" \
      --tmpdir="$d/tmp" --secure-file-priv="$d" "${NATIVE_FOOTPRINT[@]}" --skip-performance-schema \
      --max-connections=500 --key-buffer-size=8M --aria-pagecache-buffer-size=8M \
      --max-connect-errors=1000000 \
      --server-id=$((101 + i)) --log-bin="$d/data/binlog" --binlog-format=ROW \
      --binlog-row-image=FULL --sync-binlog=$sync --innodb-flush-log-at-trx-commit=$flush \
      --log-slave-updates=1 --gtid-strict-mode=1 --relay-log="$d/data/relay" --skip-slave-start \
      --slave-parallel-threads="$NATIVE_PARALLEL" $(native_root_args) \
      </dev/null >/dev/null 2>&1 &
    pid=$!
    NATIVE_PIDS[i]=$pid
    # Ready when our own socket answers (mariadbd binds TCP first and aborts if it cannot).
    for _ in $(seq 600); do
      if ! kill -0 "$pid" 2>/dev/null; then
        wait "$pid" || true
        break
      fi
      if mariadb --no-defaults --socket="$d/sock" -uroot -N -e 'SELECT 1' >/dev/null 2>&1; then
        NATIVE_PORTS[i]=$port
        return 0
      fi
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "native server $i on port $port not ready after 60 s:" >&2
      tail -20 "$d/error.log" >&2
      return 1
    fi
    grep -q 'Bind on TCP/IP port' "$d/error.log" || { tail -20 "$d/error.log" >&2; return 1; }
    echo "port $port taken, retrying" >&2
  done
  echo "native server $i: no free port after 3 attempts" >&2
  return 1
}

native_accounts() { # index -> DB_USER@'%' with all privileges; no password-less root left
  local u p
  u=$(native_quote "$DB_USER")
  p=$(native_quote "$DB_PASS")
  # sql_log_bin=0: account setup stays out of the binlogs, so every server starts at an empty GTID
  # position and the replicas take everything after it from the master.
  mariadb --no-defaults --socket="$NATIVE_DIR/db$1/sock" -uroot -e "
    SET sql_log_bin = 0;
    DELETE FROM mysql.global_priv WHERE User = '' OR (User = 'root' AND Host NOT IN ('localhost', '127.0.0.1', '::1'));
    FLUSH PRIVILEGES;
    CREATE USER IF NOT EXISTS $u@'%' IDENTIFIED BY $p;
    ALTER USER $u@'%' IDENTIFIED BY $p;
    GRANT ALL PRIVILEGES ON *.* TO $u@'%' WITH GRANT OPTION;
    ALTER USER IF EXISTS 'root'@'localhost' IDENTIFIED BY $p;
    ALTER USER IF EXISTS 'root'@'127.0.0.1' IDENTIFIED BY $p;
    ALTER USER IF EXISTS 'root'@'::1' IDENTIFIED BY $p;"
}

native_slave_status() { # port -> "IO SQL" running flags, e.g. "Yes Yes"
  mariadb --no-defaults --protocol=TCP -h127.0.0.1 -P"$1" -u"$DB_USER" -p"$DB_PASS" -E \
    -e 'SHOW SLAVE STATUS' | awk '$1 == "Slave_IO_Running:" { io = $2 } $1 == "Slave_SQL_Running:" { s = $2 } END { print io, s }'
}

native_start() { # dir replicas
  NATIVE_DIR=$1
  local replicas=$2 i install_db
  install_db=$(native_bin mariadb-install-db)
  mkdir -p "$NATIVE_DIR/seed/tmp"
  # One install, copied: every server starts from the same fresh datadir, as replicas must.
  "$install_db" --no-defaults --datadir="$NATIVE_DIR/seed/data" --auth-root-authentication-method=normal \
    --skip-test-db --force --tmpdir="$NATIVE_DIR/seed/tmp" "${NATIVE_FOOTPRINT[@]}" $(native_root_args) \
    >"$NATIVE_DIR/install.log" 2>&1 || { tail -20 "$NATIVE_DIR/install.log" >&2; return 1; }
  for i in $(seq 0 "$replicas"); do
    mkdir -p "$NATIVE_DIR/db$i/tmp"
    cp -a "$NATIVE_DIR/seed/data" "$NATIVE_DIR/db$i/data"
    native_launch "$i"
    native_accounts "$i"
  done
  for i in $(seq 1 "$replicas"); do
    native_sql "${NATIVE_PORTS[i]}" "
      CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = ${NATIVE_PORTS[0]},
        MASTER_USER = $(native_quote "$DB_USER"), MASTER_PASSWORD = $(native_quote "$DB_PASS"),
        MASTER_CONNECT_RETRY = 1, MASTER_USE_GTID = slave_pos;
      START SLAVE;"
  done
  for i in $(seq 1 "$replicas"); do
    local state=""
    for _ in $(seq 300); do
      state=$(native_slave_status "${NATIVE_PORTS[i]}")
      [ "$state" = "Yes Yes" ] && break
      sleep 0.1
    done
    if [ "$state" != "Yes Yes" ]; then
      echo "native replica $i did not start replicating:" >&2
      native_sql "${NATIVE_PORTS[i]}" 'SHOW SLAVE STATUS\G' >&2
      return 1
    fi
  done
  native_converge
}

native_converge() { # every replica has applied the master's whole binlog (up to 10 minutes)
  local pos i r
  pos=$(native_sql "${NATIVE_PORTS[0]}" 'SELECT @@gtid_binlog_pos')
  for i in $(seq 1 $((${#NATIVE_PORTS[@]} - 1))); do
    r=$(native_sql "${NATIVE_PORTS[i]}" "SELECT MASTER_GTID_WAIT('$pos', 600)")
    if [ "$r" != 0 ]; then
      echo "native replica $i did not reach $pos:" >&2
      native_sql "${NATIVE_PORTS[i]}" 'SHOW SLAVE STATUS\G' >&2
      return 1
    fi
  done
}

native_stop() {
  local pid left
  for pid in "${NATIVE_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 300); do
    left=0
    for pid in "${NATIVE_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && left=1; done
    [ "$left" = 0 ] && break
    sleep 0.1
  done
  for pid in "${NATIVE_PIDS[@]}"; do
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  NATIVE_PIDS=()
  NATIVE_PORTS=()
}
