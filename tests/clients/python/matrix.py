#!/usr/bin/env python3
"""The client matrix scenario (../README.md) for PyMySQL and mysql-connector-python."""
import argparse
import datetime
import decimal
import math
import sys

COLUMNS = "ti, si, i, bi, ubi, f, d, dc, c, vc, tx, bn, vb, bl, dt, tm, dtm, ts, yr, bt, en, js"
TYPES_TABLE = """CREATE TABLE types (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  ti TINYINT, si SMALLINT, i INT, bi BIGINT, ubi BIGINT UNSIGNED,
  f FLOAT, d DOUBLE, dc DECIMAL(12,4),
  c CHAR(5), vc VARCHAR(50), tx TEXT,
  bn BINARY(4), vb VARBINARY(16), bl BLOB,
  dt DATE, tm TIME(3), dtm DATETIME(6), ts TIMESTAMP(3) NULL,
  yr YEAR, bt BIT(8), en ENUM('red','green'), js JSON
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"""
LITERAL_ROW = (
    "-128, -32768, -2147483648, -9223372036854775808, 18446744073709551615, 1.5, -2.25, "
    "12345678.1234, 'ab', 'héllo wörld ✓', 'a long text', X'00FF10', X'00FFFE7F80', "
    "X'DEADBEEF00', '2024-02-29', '-838:59:59.000', '2024-02-29 23:59:59.123456', "
    "'2024-03-01 00:00:01.500', 2024, b'10100101', 'green', '{\"k\": [1, null, \"x\"]}'"
)
BOUND_ROW = (
    127, 32767, 2147483647, 9223372036854775807, 0, -0.5, math.pi, decimal.Decimal("0.0001"),
    "x", "quote ' \" \\ end", "", b"\x00\x01\x02", b"\x00", bytes(range(256)),
    datetime.date(1999, 12, 31), datetime.timedelta(hours=12, minutes=34, seconds=56, microseconds=789000),
    datetime.datetime(2000, 1, 1, 0, 0, 0, 1), datetime.datetime(2038, 1, 19, 3, 14, 7, 999000),
    1999, b"\x01", "red", "[]",
)


def render(value):
    if isinstance(value, (bytes, bytearray)):
        return f"{type(value).__name__}:{bytes(value).hex()}"
    return f"{type(value).__name__}:{value!r}"


class Driver:
    """What differs between the two drivers: connecting, errors, and the prepared cursor."""

    def __init__(self, name, args):
        self.name = name
        if name == "pymysql":
            import pymysql

            self.errors = (pymysql.err.MySQLError,)
            self.conn = pymysql.connect(
                host=args.host, port=args.port, user=args.user, password=args.password,
                database=args.initial_db, charset="utf8mb4", autocommit=True,
                ssl={"ca": args.ssl_ca} if args.ssl_ca else None, ssl_disabled=not args.ssl_ca,
            )
        else:
            import mysql.connector

            self.errors = (mysql.connector.Error,)
            tls = {"ssl_ca": args.ssl_ca, "ssl_verify_cert": True} if args.ssl_ca else {"ssl_disabled": True}
            plugin = {"auth_plugin": args.auth_plugin} if args.auth_plugin else {}
            self.conn = mysql.connector.connect(
                host=args.host, port=args.port, user=args.user, password=args.password,
                database=args.initial_db, charset="utf8mb4", collation="utf8mb4_general_ci",
                autocommit=True, use_pure=True, **tls, **plugin,
            )

    def cursor(self, prepared=False):
        if prepared and self.name == "connector":
            return self.conn.cursor(prepared=True)
        return self.conn.cursor()

    def error(self, e):
        if self.name == "pymysql":
            code, message = e.args[0], e.args[1] if len(e.args) > 1 else ""
            return f"error {code} {message}"
        return f"error {e.errno} {e.sqlstate} {e.msg}"

    def begin(self):
        if self.name == "pymysql":
            self.conn.begin()
        else:
            self.conn.start_transaction()


def outcome(out, step, cur):
    out.append(f"{step}: rowcount={cur.rowcount} lastrowid={cur.lastrowid}")


def result(out, title, cur):
    out.append(title)
    for d in cur.description:
        out.append("column " + " ".join(repr(x) for x in d))
    for row in cur.fetchall():
        out.append("row " + " | ".join(render(v) for v in row))


def matrix(driver, db):
    out = []
    cur = driver.cursor()
    cur.execute("SET time_zone = '+00:00'")
    for sql in (f"DROP DATABASE IF EXISTS {db}", f"CREATE DATABASE {db}", f"USE {db}", TYPES_TABLE):
        cur.execute(sql)
        outcome(out, "ddl", cur)
    cur.execute(f"INSERT INTO types ({COLUMNS}) VALUES ({LITERAL_ROW})")
    outcome(out, "insert literal", cur)
    cur.execute("INSERT INTO types () VALUES ()")
    outcome(out, "insert nulls", cur)
    marks = ", ".join(["%s"] * len(BOUND_ROW)) if driver.name == "pymysql" else ", ".join(["?"] * len(BOUND_ROW))
    prepared = driver.cursor(prepared=True)
    prepared.execute(f"INSERT INTO types ({COLUMNS}) VALUES ({marks})", BOUND_ROW)
    outcome(out, "insert bound" + (" (client-side)" if driver.name == "pymysql" else ""), prepared)
    cur.execute("SELECT * FROM types ORDER BY id")
    result(out, "text select", cur)
    mark = "%s" if driver.name == "pymysql" else "?"
    columns = "*"
    if driver.name == "connector":
        # Its binary-row decoder reads a YEAR value as a length-prefixed string and loses its
        # place in the row (against MariaDB itself too): YEAR is read by the text protocol only.
        columns = "id, " + COLUMNS.replace(" yr,", "")
    prepared.execute(f"SELECT {columns} FROM types WHERE id >= {mark} ORDER BY id", (0,))
    result(out, f"prepared select {columns}", prepared)
    for finish in ("rollback", "commit"):
        driver.begin()
        tx = driver.cursor(prepared=True)
        tx.execute(f"INSERT INTO types (ti) VALUES ({mark})", (1,))
        getattr(driver.conn, finish)()
        cur.execute("SELECT COUNT(*) FROM types")
        out.append(f"after {finish}: count {cur.fetchone()[0]}")
    for step, sql in (("duplicate", "INSERT INTO types (id) VALUES (1)"),
                      ("missing table", "SELECT * FROM no_such_table")):
        try:
            cur.execute(sql)
            out.append(f"{step}: no error")
        except driver.errors as e:
            out.append(f"{step}: {driver.error(e)}")
    cur.execute("SELECT 1")
    out.append(f"after errors {cur.fetchone()[0]}")
    return out


def refusal(driver):
    out = []
    cur = driver.cursor()
    try:
        cur.execute("CREATE TABLE refused (a INT)")
        out.append("create on slave: no error")
    except driver.errors as e:
        out.append(f"create on slave: {driver.error(e)}")
    cur.execute("SELECT COUNT(*) FROM student")
    out.append(f"students {cur.fetchone()[0]}")
    return out


def login(driver):
    """How the client connected: TLS as the client sees it, and (connector) its auth plugin."""
    if driver.name == "pymysql":
        sock = driver.conn._sock
    else:
        sock = driver.conn._socket.sock
    version = sock.version() if hasattr(sock, "version") else None
    out = [f"tls {version}"]
    if driver.name == "connector":
        out.append(f"plugin {driver.conn._auth_plugin}")
    cur = driver.cursor()
    cur.execute("SELECT 40 + 2")
    out.append(f"answer {cur.fetchone()[0]}")
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--driver", choices=("pymysql", "connector"), required=True)
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--mode", choices=("matrix", "refusal", "login"), required=True)
    p.add_argument("--ssl-ca", help="connect over TLS, verifying the server against this CA")
    p.add_argument("--auth-plugin", help="authentication plugin to answer with (connector)")
    args = p.parse_args()
    args.initial_db = args.db if args.mode == "refusal" else None
    try:
        driver = Driver(args.driver, args)
    except Exception as e:  # a refused login is the result the login mode reports
        if args.mode != "login":
            raise
        print(f"login failed: {getattr(e, 'errno', None) or e.args[0]} {e}")
        return 0
    modes = {"matrix": lambda: matrix(driver, args.db), "refusal": lambda: refusal(driver),
             "login": lambda: login(driver)}
    lines = modes[args.mode]()
    print("\n".join(lines))
    driver.conn.close()


if __name__ == "__main__":
    sys.exit(main())
