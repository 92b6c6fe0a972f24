#!/usr/bin/env python3
"""The client matrix scenario (../README.md) for PyMySQL and mysql-connector-python.

    matrix.py --driver pymysql|connector --host H --port P --user U --password W --db D
              --mode matrix|refusal|login [--ssl-ca PATH] [--auth-plugin NAME]

The transcript goes to stdout, one fact a line; diagnostics go to stderr. `login` (used by the
caching_sha2_password / TLS test) prints how the client connected instead of running a scenario.

mysql-connector-python runs as its pure-Python implementation: that is what its defaults give here
(its C extension needs a newer OpenSSL than the machine has), and naming it keeps the transcript
the same on a machine where the C extension would load. It connects with its default
authentication (whatever plugin the server announces) unless --auth-plugin names one; its
`cursor(prepared=True)` prepares on the server and talks the binary protocol. PyMySQL has no
server-side prepare: its "prepared" steps are its placeholder API, which interpolates the values
into the SQL on the client and sends text.
"""
import argparse
import datetime
import decimal
import math
import sys

COLUMNS = "ti, si, i, bi, ubi, f, d, dc, c, vc, tx, bn, vb, bl, dt, tm, dtm, ts, yr, bt, en, js"


def types_sql(path):
    """The `types` table and its literal-row INSERT, from the matrix's shared types.sql."""
    with open(path, encoding="utf-8") as f:
        text = "\n".join(line for line in f.read().splitlines() if not line.startswith("--"))
    create, insert = [s.strip() for s in text.split(";") if s.strip()]
    return create, insert


# The bound row, in the types both drivers map these columns to.
BOUND_ROW = (
    127, 32767, 2147483647, 9223372036854775807, 0,
    -0.5, math.pi, decimal.Decimal("0.0001"),
    "x", "quote ' \" \\ end", "",
    b"\x00\x01\x02", b"\x00", bytes(range(256)),
    datetime.date(1999, 12, 31),
    datetime.timedelta(hours=12, minutes=34, seconds=56, microseconds=789000),
    datetime.datetime(2000, 1, 1, 0, 0, 0, 1),
    datetime.datetime(2038, 1, 19, 3, 14, 7, 999000),
    1999, b"\x01", "red", "[]",
)

# Column flags as the protocol defines them (both drivers hand out the raw bits).
FLAG_NAMES = (
    (1, "NOT_NULL"), (2, "PRI_KEY"), (4, "UNIQUE_KEY"), (8, "MULTIPLE_KEY"), (16, "BLOB"),
    (32, "UNSIGNED"), (64, "ZEROFILL"), (128, "BINARY"), (256, "ENUM"), (512, "AUTO_INCREMENT"),
    (1024, "TIMESTAMP"), (2048, "SET"), (4096, "NO_DEFAULT_VALUE"), (8192, "ON_UPDATE_NOW"),
    (16384, "PART_KEY"), (32768, "NUM"),
)
IN_TRANS, AUTOCOMMIT = 1, 2  # server status bits


def flag_names(flags):
    names = [name for bit, name in FLAG_NAMES if flags & bit]
    rest = flags & ~sum(bit for bit, _ in FLAG_NAMES)
    if rest:
        names.append(hex(rest))
    return "|".join(names) or "-"


def render(value):
    """The value's Python type and an unambiguous rendering of it (bytes as hex)."""
    if isinstance(value, (bytes, bytearray)):
        return f"{type(value).__name__}:{bytes(value).hex()} ({len(value)} bytes)"
    return f"{type(value).__name__}:{value!r}"


class PyMySQL:
    name = "pymysql"
    mark = "%s"
    prepared_kind = "client-side: PyMySQL interpolates placeholders and sends text"

    def __init__(self, args, database):
        import pymysql
        from pymysql.constants import FIELD_TYPE

        self.errors = (pymysql.err.MySQLError,)
        self.type_names = {
            getattr(FIELD_TYPE, n): n for n in dir(FIELD_TYPE) if n.isupper() and n != "CHAR"
        }
        options = {}
        if args.ssl_ca:
            options.update(ssl={"ca": args.ssl_ca})
        elif args.mode == "login":
            options.update(ssl_disabled=True)  # login reports plain TCP when given no CA
        self.conn = pymysql.connect(
            host=args.host, port=args.port, user=args.user, password=args.password,
            database=database, autocommit=True, **options,
        )

    def cursor(self, prepared=False):
        return self.conn.cursor()

    def columns(self, cur):
        # cursor.description, plus what PyMySQL keeps of each column definition packet.
        for d, f in zip(cur.description, cur._result.fields):
            name, type_code, display_size, internal_size, precision, scale, null_ok = d
            yield (
                f"name={name!r} type_code={type_code} ({self.type_names.get(type_code, '?')})"
                f" display_size={display_size!r} internal_size={internal_size!r}"
                f" precision={precision!r} scale={scale!r} null_ok={null_ok!r}"
                f" flags={f.flags} ({flag_names(f.flags)}) charsetnr={f.charsetnr}"
                f" length={f.length} catalog={f.catalog!r} db={f.db!r} table={f.table_name!r}"
                f" org_table={f.org_table!r} org_name={f.org_name!r}"
            )

    def error(self, e):
        code = e.args[0] if e.args else None
        message = e.args[1] if len(e.args) > 1 else ""
        return f"{type(e).__name__} {code} {getattr(e, 'sqlstate', None)} {message}"

    def begin(self):
        self.conn.begin()

    def in_transaction(self):
        return bool(self.conn.server_status & IN_TRANS)

    def autocommit(self):
        return bool(self.conn.server_status & AUTOCOMMIT)


class Connector:
    name = "connector"
    mark = "?"
    prepared_kind = "server-side: COM_STMT_PREPARE / COM_STMT_EXECUTE, binary protocol"

    def __init__(self, args, database):
        import mysql.connector
        from mysql.connector.constants import FieldType

        self.errors = (mysql.connector.Error,)
        self.field_type = FieldType
        options = {}
        if args.ssl_ca:
            options.update(ssl_ca=args.ssl_ca, ssl_verify_cert=True)
        elif args.mode == "login":
            options.update(ssl_disabled=True)  # login reports plain TCP when given no CA
        if args.auth_plugin:
            options.update(auth_plugin=args.auth_plugin)
        self.conn = mysql.connector.connect(
            host=args.host, port=args.port, user=args.user, password=args.password,
            database=database, autocommit=True, use_pure=True, **options,
        )

    def cursor(self, prepared=False):
        return self.conn.cursor(prepared=prepared)

    def columns(self, cur):
        # The pure-Python driver's description: the DB-API seven, then flags and charset id.
        for d in cur.description:
            name, type_code, display_size, internal_size, precision, scale, null_ok, flags, charset = d
            yield (
                f"name={name!r} type_code={type_code} ({self.field_type.get_info(type_code)})"
                f" display_size={display_size!r} internal_size={internal_size!r}"
                f" precision={precision!r} scale={scale!r} null_ok={null_ok!r}"
                f" flags={flags} ({flag_names(flags)}) charset={charset}"
            )

    def error(self, e):
        return f"{type(e).__name__} {e.errno} {e.sqlstate} {e.msg}"

    def begin(self):
        self.conn.start_transaction()

    def in_transaction(self):
        return self.conn.in_transaction

    def autocommit(self):
        return self.conn.autocommit


def outcome(out, what, cur):
    out.append(f"{what}: rowcount={cur.rowcount} lastrowid={cur.lastrowid}"
               f" warnings={cur.warning_count}")


def result(out, title, driver, cur):
    out.append(title)
    for line in driver.columns(cur):
        out.append("  column " + line)
    names = [d[0] for d in cur.description]
    rows = cur.fetchall()
    for n, row in enumerate(rows, 1):
        out.append(f"  row {n}")
        for name, value in zip(names, row):
            out.append(f"    {name} = {render(value)}")
    out.append(f"  {len(rows)} rows, rowcount={cur.rowcount}")


def matrix(driver, db, types_table, literal_insert):
    out = [f"driver {driver.name}; prepared statements are {driver.prepared_kind}"]
    cur = driver.cursor()
    cur.execute("SET time_zone = '+00:00'")

    # 1. No default database: drop, create, use. (DROP's count depends on what was there.)
    cur.execute(f"DROP DATABASE IF EXISTS {db}")
    out.append("1. drop database if exists: ok")
    cur.execute(f"CREATE DATABASE {db}")
    outcome(out, "1. create database", cur)
    cur.execute(f"USE {db}")
    outcome(out, "1. use", cur)

    # 2. DDL.
    cur.execute(types_table)
    outcome(out, "2. create table types", cur)

    # 3. Text-protocol inserts.
    cur.execute(literal_insert)
    outcome(out, "3. text insert, literal row", cur)
    cur.execute("INSERT INTO types () VALUES ()")
    outcome(out, "3. text insert, all-NULL row", cur)

    # 4. Prepared insert of the bound row.
    prepared = driver.cursor(prepared=True)
    marks = ", ".join([driver.mark] * len(BOUND_ROW))
    prepared.execute(f"INSERT INTO types ({COLUMNS}) VALUES ({marks})", BOUND_ROW)
    outcome(out, "4. prepared insert, bound row", prepared)

    # 5. SELECT * as text, then prepared with a bound parameter.
    cur.execute("SELECT * FROM types ORDER BY id")
    result(out, "5. text select: SELECT * FROM types ORDER BY id", driver, cur)
    columns = "*"
    if driver.name == "connector":
        # Its binary-row decoder reads a YEAR value (2 bytes on the wire) as a length-prefixed
        # string, loses its place in the row and fails, against MariaDB itself too: YEAR is
        # read through the text protocol only.
        columns = "id, " + COLUMNS.replace(" yr,", "")
        out.append("5. (connector cannot decode YEAR in binary rows: yr left out)")
    sql = f"SELECT {columns} FROM types WHERE id >= {driver.mark} ORDER BY id"
    prepared.execute(sql, (0,))
    result(out, f"5. prepared select: {sql} with 0", driver, prepared)

    # 6. A transaction rolled back, then one committed.
    for finish in ("rollback", "commit"):
        driver.begin()
        tx = driver.cursor(prepared=True)
        tx.execute(f"INSERT INTO types (ti) VALUES ({driver.mark})", (1,))
        outcome(out, f"6. begin; prepared insert (then {finish})", tx)
        out.append(f"6. in transaction: {driver.in_transaction()}")
        getattr(driver.conn, finish)()
        out.append(f"6. {finish}: in transaction {driver.in_transaction()}"
                   f", autocommit {driver.autocommit()}")
        cur.execute("SELECT COUNT(*) FROM types")
        out.append(f"6. after {finish}: SELECT COUNT(*) = {render(cur.fetchone()[0])}")

    # 7. Errors, then the connection is still usable.
    for what, sql in (("duplicate key", "INSERT INTO types (id) VALUES (1)"),
                      ("missing table", "SELECT * FROM no_such_table")):
        try:
            cur.execute(sql)
            out.append(f"7. {what}: no error")
        except driver.errors as e:
            out.append(f"7. {what}: {driver.error(e)}")
    cur.execute("SELECT 1")
    out.append(f"7. then SELECT 1 = {render(cur.fetchone()[0])}")
    return out


def refusal(driver):
    out = []
    cur = driver.cursor()
    try:
        cur.execute("CREATE TABLE refused (a INT)")
        out.append("CREATE TABLE on a slave: no error")
    except driver.errors as e:
        out.append(f"CREATE TABLE on a slave: {driver.error(e)}")
    cur.execute("SELECT COUNT(*) FROM student")
    out.append(f"SELECT COUNT(*) FROM student = {cur.fetchone()[0]}")
    return out


def login(driver):
    """How the client connected: TLS as the client sees it, (connector) the auth plugin used."""
    if driver.name == "pymysql":
        sock = driver.conn._sock
    else:
        sock = driver.conn._socket.sock
    version = sock.version() if hasattr(sock, "version") else None
    out = [f"tls {version}"]
    if driver.name == "connector":
        out.append(f"plugin {driver.conn._authenticator._auth_strategy.name}")
    cur = driver.cursor()
    cur.execute("SELECT 40 + 2")
    out.append(f"answer {cur.fetchone()[0]}")
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--driver", choices=("pymysql", "connector"), required=True)
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--mode", choices=("matrix", "refusal", "login"), required=True)
    p.add_argument("--types-sql", required=True, help="the matrix's types.sql")
    p.add_argument("--ssl-ca", help="connect over TLS, verifying the server against this CA")
    p.add_argument("--auth-plugin", help="authentication plugin to answer with (connector)")
    args = p.parse_args()
    database = args.db if args.mode == "refusal" else None
    make = PyMySQL if args.driver == "pymysql" else Connector
    try:
        driver = make(args, database)
    except Exception as e:  # a refused login is what the login mode reports
        if args.mode != "login":
            raise
        print(f"login failed: {getattr(e, 'errno', None) or e.args[0]} {e}")
        return 0
    lines = {"matrix": lambda: matrix(driver, args.db, *types_sql(args.types_sql)), "refusal": lambda: refusal(driver),
             "login": lambda: login(driver)}[args.mode]()
    print("\n".join(lines))
    driver.conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
