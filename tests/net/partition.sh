#!/usr/bin/env bash
# Multi-host fault test: the master and two slaves, each with its own MariaDB, in their own
# network namespaces joined by veth pairs (master <-> slave1, master <-> slave2). Under a write
# load through the master it adds latency and loss between master and slave1 (tc netem, when the
# kernel has it), then cuts that link completely (both ends down) for PARTITION_SECS, heals it, and
# checks that slave1 catches up, that `myrelay checksum` finds all three nodes equal, and that
# every write the master acknowledged is on every node. Prints the figures.
#
# Needs root (ip netns), iproute2, mariadbd, mariadb-install-db, the mariadb client and the built
# binary (MYRELAY_BIN, default $CARGO_TARGET_DIR/debug/myrelay). Exits 0 with the reason when it
# cannot create namespaces.
set -euo pipefail
cd "$(dirname "$0")/../.."

PARTITION_SECS="${PARTITION_SECS:-15}"
LOAD_SECS="${LOAD_SECS:-10}"
BIN="${MYRELAY_BIN:-${CARGO_TARGET_DIR:-target}/debug/myrelay}"
PASS=rootroot
SECRET=partition-test-cluster-secret
PFX="mrnet$$"
NS_M="${PFX}m" NS_1="${PFX}s1" NS_2="${PFX}s2"

skip() { echo "net/partition: skipped: $*"; exit 0; }
[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
command -v ip >/dev/null || skip "iproute2 (ip) not installed"
MARIADBD="$(command -v mariadbd || echo /usr/sbin/mariadbd)"
[ -x "$MARIADBD" ] || skip "mariadbd not installed"
command -v mariadb-install-db >/dev/null || skip "mariadb-install-db not installed"
command -v mariadb >/dev/null || skip "mariadb client not installed"
ip netns add "${PFX}probe" 2>/dev/null || skip "cannot create network namespaces here"
ip netns del "${PFX}probe"
[ -x "$BIN" ] || cargo build --locked
WORK="$(mktemp -d)"
PIDS=()

cleanup() {
  set +e
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  wait 2>/dev/null
  for ns in "$NS_M" "$NS_1" "$NS_2"; do ip netns del "$ns" 2>/dev/null; done
  if [ "${KEEP:-0}" = 1 ]; then echo "net/partition: logs kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

in_ns() { local ns="$1"; shift; ip netns exec "$ns" "$@"; }

# Namespaces and links: master 10.78.N.1 <-> slaveN 10.78.N.2.
for ns in "$NS_M" "$NS_1" "$NS_2"; do
  ip netns add "$ns"
  ip -n "$ns" link set lo up
done
for n in 1 2; do
  ns_var="NS_$n"
  ip link add "${PFX}m$n" type veth peer name "${PFX}s$n"
  ip link set "${PFX}m$n" netns "$NS_M"
  ip link set "${PFX}s$n" netns "${!ns_var}"
  ip -n "$NS_M" addr add "10.78.$n.1/24" dev "${PFX}m$n"
  ip -n "${!ns_var}" addr add "10.78.$n.2/24" dev "${PFX}s$n"
  ip -n "$NS_M" link set "${PFX}m$n" up
  ip -n "${!ns_var}" link set "${PFX}s$n" up
done

# One MariaDB per namespace, on that namespace's own loopback.
start_backend() { # ns server_id
  local ns="$1" dir="$WORK/$1" id="$2"
  mkdir -p "$dir/tmp"
  mariadb-install-db --no-defaults --datadir="$dir/data" --auth-root-authentication-method=normal \
    --skip-test-db --user=root --innodb-buffer-pool-size=32M --innodb-log-file-size=16M \
    --innodb-use-native-aio=0 >"$dir/install.log" 2>&1
  cat >"$dir/init.sql" <<SQL
SET sql_log_bin = 0;
ALTER USER IF EXISTS 'root'@'localhost' IDENTIFIED BY '$PASS';
ALTER USER IF EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '$PASS';
ALTER USER IF EXISTS 'root'@'::1' IDENTIFIED BY '$PASS';
CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY '$PASS';
ALTER USER 'root'@'%' IDENTIFIED BY '$PASS';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;
SQL
  ip netns exec "$ns" "$MARIADBD" --no-defaults --datadir="$dir/data" --port=13306 --bind-address=127.0.0.1 \
    --socket="$dir/sock" --log-bin=binlog --binlog-format=ROW --binlog-row-image=FULL --sync-binlog=1 \
    --innodb-flush-log-at-trx-commit=1 --log-slave-updates --server-id="$id" --skip-name-resolve --user=root --init-file="$dir/init.sql" \
    --tmpdir="$dir/tmp" --log-error="$dir/error.log" --innodb-buffer-pool-size=32M \
    --innodb-log-file-size=16M --innodb-use-native-aio=0 --skip-performance-schema &
  PIDS+=($!)
}
wait_sql() { # ns port [host]
  local ns="$1" port="$2" host="${3:-127.0.0.1}"
  for _ in $(seq 1 150); do
    in_ns "$ns" mariadb --no-defaults --protocol=TCP -h"$host" -P"$port" -uroot -p"$PASS" \
      -e 'SELECT 1' >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "net/partition: nothing answers on $ns $host:$port"; exit 1
}

node_config() { # name role listen master replication-line
  cat <<TOML
[node]
name = "$1"
role = "$2"
listen = "$3"
backend = "127.0.0.1:13306"
$4

[[users]]
name = "root"
role = "admin"
password_env = "DB_PASS"

[replication]
$5
TOML
}

id=0
for ns in "$NS_M" "$NS_1" "$NS_2"; do id=$((id + 1)); start_backend "$ns" "$id"; done
for ns in "$NS_M" "$NS_1" "$NS_2"; do wait_sql "$ns" 13306; done

export DB_USER=root DB_PASS="$PASS" CLUSTER_SECRET="$SECRET" RUST_LOG="${RUST_LOG:-info}"
node_config master master 0.0.0.0:3307 "" \
  "listen = \"0.0.0.0:4307\"" >"$WORK/master.toml"
for n in 1 2; do
  node_config "slave$n" slave "10.78.$n.2:3308" "master = \"10.78.$n.1:3307\"" \
    "master = \"10.78.$n.1:4307\"" >"$WORK/slave$n.toml"
done
ip netns exec "$NS_M" "$BIN" node --config "$WORK/master.toml" 2>"$WORK/master.log" &
PIDS+=($!)
wait_sql "$NS_M" 3307
for n in 1 2; do
  ns_var="NS_$n"
  ip netns exec "${!ns_var}" "$BIN" node --config "$WORK/slave$n.toml" 2>"$WORK/slave$n.log" &
  PIDS+=($!)
done
wait_sql "$NS_1" 3308 10.78.1.2
wait_sql "$NS_2" 3308 10.78.2.2

sql() { # host port sql
  in_ns "$NS_M" mariadb --no-defaults --protocol=TCP -h"$1" -P"$2" -uroot -p"$PASS" \
    --batch --skip-column-names -e "$3"
}
sql 127.0.0.1 3307 "CREATE DATABASE net; CREATE TABLE net.t (id INT PRIMARY KEY, at DATETIME(6))"

# The load: one acknowledged INSERT after another, each id recorded once the master said OK.
: >"$WORK/acked"
load() {
  local i=0
  while [ ! -e "$WORK/stop" ]; do
    i=$((i + 1))
    if sql 127.0.0.1 3307 "INSERT INTO net.t VALUES ($i, NOW(6))" >/dev/null 2>&1; then
      echo "$i" >>"$WORK/acked"
    fi
  done
}
load &
LOAD_PID=$!
PIDS+=("$LOAD_PID")
acked() { wc -l <"$WORK/acked"; }

LINK="${PFX}m1"
sleep "$LOAD_SECS"
if in_ns "$NS_M" tc qdisc add dev "$LINK" root netem delay 50ms 10ms loss 5% 2>/dev/null; then
  before=$(acked)
  sleep "$LOAD_SECS"
  in_ns "$NS_M" tc qdisc del dev "$LINK" root
  echo "net/partition: netem 50±10 ms, 5% loss on master-slave1 for ${LOAD_SECS}s: $(( $(acked) - before )) writes"
else
  echo "net/partition: tc netem unavailable here (no sch_netem): latency and loss phase skipped"
fi

before=$(acked)
ip -n "$NS_M" link set "$LINK" down
ip -n "$NS_1" link set "${PFX}s1" down
sleep "$PARTITION_SECS"
during=$(( $(acked) - before ))
ip -n "$NS_M" link set "$LINK" up
ip -n "$NS_1" link set "${PFX}s1" up
healed_at=$(date +%s.%N)
# Catch-up: slave1 has every row the master had when the link came back (the load goes on).
want=$(sql 127.0.0.1 3307 "SELECT COUNT(*) FROM net.t")
caught=""
for _ in $(seq 1 600); do
  got=$(sql 10.78.1.2 3308 "SELECT COUNT(*) FROM net.t" 2>/dev/null || echo 0)
  if [ "$got" -ge "$want" ]; then caught=$(date +%s.%N); break; fi
  sleep 0.1
done
[ -n "$caught" ] || { echo "net/partition: FAIL: slave1 has $got of $want rows 60s after the heal"; exit 1; }
sleep "$LOAD_SECS"
touch "$WORK/stop"
wait "$LOAD_PID" || true
# Then everything converges: both slaves have all of the master's rows.
want=$(sql 127.0.0.1 3307 "SELECT COUNT(*) FROM net.t")
for host in 10.78.1.2 10.78.2.2; do
  for _ in $(seq 1 300); do
    got=$(sql "$host" 3308 "SELECT COUNT(*) FROM net.t" 2>/dev/null || echo 0)
    [ "$got" = "$want" ] && break
    sleep 0.1
  done
done

fail=0
for hostport in "127.0.0.1 3307" "10.78.1.2 3308" "10.78.2.2 3308"; do
  # shellcheck disable=SC2086
  sql $hostport "SELECT id FROM net.t ORDER BY id" | sort -n >"$WORK/present"
  lost=$(sort -n "$WORK/acked" | comm -23 - "$WORK/present" | wc -l)
  if [ "$lost" != 0 ]; then
    echo "net/partition: FAIL: $lost acknowledged writes missing on $hostport"
    fail=1
  fi
done
if in_ns "$NS_M" "$BIN" checksum 127.0.0.1:3307 10.78.1.2:3308 10.78.2.2:3308 >"$WORK/checksum" 2>&1; then
  checksums="equal"
else
  checksums="DIFFERENT"
  cat "$WORK/checksum"
  fail=1
fi
printf 'net/partition: %d acknowledged writes, %d during the %ss partition of slave1;\n' \
  "$(acked)" "$during" "$PARTITION_SECS"
echo "net/partition: slave1 caught up $(awk "BEGIN { printf \"%.1f\", $caught - $healed_at }")s after the heal"
echo "net/partition: checksums of master, slave1, slave2: $checksums"
[ "$fail" = 0 ] && echo "net/partition: ok"
exit "$fail"
