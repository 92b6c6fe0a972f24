#!/usr/bin/env python3
"""Replication lag by heartbeat, the same way for any master and its replicas.

Usage: lag_probe.py HOST USER PASSWORD TABLE WRITE_PORT READ_PORT[,READ_PORT...] [STATUS_PORT]

Writes one row (`INSERT INTO TABLE (id) VALUES (n)`, n = 1, 2, ...) every 10 ms on WRITE_PORT,
one autocommit transaction each, and notes when each was acknowledged. Every 10 ms it reads
`MAX(id)` on each READ_PORT. A sample's lag is how long before the read was sent the master had
acknowledged the oldest heartbeat the replica still lacks (0 when it lacks none that was
acknowledged by then): the age of the oldest committed transaction not yet visible there.
With STATUS_PORT (a myrelay master) it also reads `SHOW MYRELAY STATUS` every 100 ms and keeps
each slave's own `lag_ms`.

Prints `ready` once the first heartbeat is acknowledged and every connection is up. When stdin
closes (the load is over) it stops writing, writes one last heartbeat and times how long until
every replica shows it, then prints one line per sample and a summary:

    heartbeat PORT LAG_MS        one per replica sample
    reported NAME LAG_MS         one per slave row of SHOW MYRELAY STATUS (with STATUS_PORT)
    heartbeats N                 heartbeats acknowledged
    caught_up_ms MS              load end to the last heartbeat on every replica (-1: not in 300 s)

Standard library only, like idle_connections.py (no MySQL driver is installed for python3).
"""
import struct
import sys
import threading
import time

from idle_connections import login, read_packet

EVERY = 0.010
STATUS_EVERY = 0.100
CATCH_UP_LIMIT = 300.0


def lenenc(buf, pos):
    first = buf[pos]
    if first < 0xFB:
        return first, pos + 1
    if first == 0xFB:
        return None, pos + 1
    size = {0xFC: 2, 0xFD: 3, 0xFE: 8}[first]
    return int.from_bytes(buf[pos + 1:pos + 1 + size], "little"), pos + 1 + size


class Conn:
    """One logged-in connection speaking COM_QUERY (text protocol, EOF-terminated results)."""

    def __init__(self, host, port, user, password):
        self.sock = login(host, port, user, password)

    def query(self, sql):
        body = b"\x03" + sql.encode()
        self.sock.sendall(struct.pack("<I", len(body))[:3] + b"\x00" + body)
        _, first = read_packet(self.sock)
        if first[0] == 0xFF:
            raise RuntimeError(f"{sql!r}: {first[3:].decode(errors='replace')}")
        if first[0] == 0x00:
            return []
        columns, _ = lenenc(first, 0)
        for _ in range(columns):
            read_packet(self.sock)
        _, eof = read_packet(self.sock)
        assert eof[0] == 0xFE, "expected EOF after column definitions"
        rows = []
        while True:
            _, packet = read_packet(self.sock)
            if packet[0] == 0xFE and len(packet) < 9:
                return rows
            if packet[0] == 0xFF:
                raise RuntimeError(f"{sql!r}: {packet[3:].decode(errors='replace')}")
            row, pos = [], 0
            for _ in range(columns):
                length, pos = lenenc(packet, pos)
                if length is None:
                    row.append(None)
                else:
                    row.append(packet[pos:pos + length].decode())
                    pos += length
            rows.append(row)


def main():
    host, user, password, table, write_port, read_ports = sys.argv[1:7]
    status_port = int(sys.argv[7]) if len(sys.argv) > 7 else None
    writer = Conn(host, int(write_port), user, password)
    readers = [(int(p), Conn(host, int(p), user, password)) for p in read_ports.split(",")]
    status = Conn(host, status_port, user, password) if status_port else None

    acked = []  # acked[n - 1] = when heartbeat n was acknowledged (time.monotonic)
    samples, reported = [], []
    stop = threading.Event()
    failed = []

    def beat():
        writer.query(f"INSERT INTO {table} (id) VALUES ({len(acked) + 1})")
        acked.append(time.monotonic())

    def write_loop():
        next_at = time.monotonic()
        while not stop.is_set():
            beat()
            next_at = max(next_at + EVERY, time.monotonic())
            stop.wait(next_at - time.monotonic())

    def read_loop(port, conn):
        next_at = time.monotonic()
        while not stop.is_set():
            sent = time.monotonic()
            have = int(conn.query(f"SELECT COALESCE(MAX(id), 0) FROM {table}")[0][0])
            lag = 0.0
            if have < len(acked) and acked[have] <= sent:
                lag = (sent - acked[have]) * 1000
            samples.append((port, lag))
            next_at = max(next_at + EVERY, time.monotonic())
            stop.wait(next_at - time.monotonic())

    def status_loop():
        while not stop.is_set():
            rows = status.query("SHOW MYRELAY STATUS")
            reported.extend((r[0], int(r[6])) for r in rows if r[1] == "slave" and r[6] is not None)
            stop.wait(STATUS_EVERY)

    def guarded(f, *args):
        def run():
            try:
                f(*args)
            except Exception as e:  # reported on stderr, the run fails
                failed.append(e)
                stop.set()
        return threading.Thread(target=run, daemon=True)

    beat()
    threads = [guarded(write_loop)] + [guarded(read_loop, p, c) for p, c in readers]
    if status:
        threads.append(guarded(status_loop))
    for t in threads:
        t.start()
    print("ready", flush=True)
    sys.stdin.read()
    load_end = time.monotonic()
    stop.set()
    for t in threads:
        t.join()
    if failed:
        sys.exit(f"lag_probe: {failed[0]}")

    beat()
    last = len(acked)
    caught_up = -1
    pending = list(readers)
    while pending and time.monotonic() - load_end < CATCH_UP_LIMIT:
        pending = [(p, c) for p, c in pending
                   if int(c.query(f"SELECT COALESCE(MAX(id), 0) FROM {table}")[0][0]) < last]
        if pending:
            time.sleep(EVERY)
    if not pending:
        caught_up = round((time.monotonic() - load_end) * 1000)

    out = [f"heartbeat {p} {lag:.1f}" for p, lag in samples]
    out += [f"reported {name} {lag}" for name, lag in reported]
    out += [f"heartbeats {last}", f"caught_up_ms {caught_up}"]
    print("\n".join(out), flush=True)


if __name__ == "__main__":
    main()
