#!/usr/bin/env python3
"""What Python tools read for metadata, as a transcript: SQLAlchemy's reflection and mycli's
completion refresh, each run by the tool's own code over PyMySQL.

    metadata.py --mode sqlalchemy|mycli --host H --port P --user U --password W --db D
                [--types-sql PATH]  (the matrix's contract; not used here)

Reads only: no statement here writes, so it runs as a `readonly` user too. The transcript goes to
stdout, one fact a line; diagnostics to stderr. An error the tool reports or swallows is printed
with its code (and, for PyMySQL, no SQLSTATE: it does not keep one), never its message, which a
node words differently from a server (it says why it refused). Lines starting with `unscoped `
hold what is not the same for a node user and a backend account with grants on D only (the
databases listed); the harness reports them and compares the rest.

sqlalchemy: `sqlalchemy.inspect(engine)` with the PyMySQL dialect: schema names, then for D its
tables and views, and for each their columns, primary key, foreign keys, indexes, unique and check
constraints, options and comment, and each view's definition.

mycli: a `SQLExecute` connected to D as mycli connects, then every refresher that mycli's
`CompletionRefresher` runs (in its order, on a real `SQLCompleter`), with the executor's methods
recorded: what each returned, or the error it logged and swallowed. `tables()` (SHOW TABLES,
mycli's `\\dt`) is run too.
"""
import argparse
import logging
import sys


def error(e):
    """An exception as its class and server error code (PyMySQL keeps the code in args[0])."""
    orig = getattr(e, "orig", None) or e  # SQLAlchemy wraps the driver's error
    code = orig.args[0] if orig.args else None
    return f"error {type(orig).__name__} {code}"


def value(v):
    """A reflected value, with dicts in key order so that runs compare line by line."""
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k!r}: {value(v[k])}" for k in sorted(v)) + "}"
    if isinstance(v, (list, tuple)):
        inner = ", ".join(value(x) for x in v)
        return f"[{inner}]" if isinstance(v, list) else f"({inner})"
    return repr(v)


def sqlalchemy_reflection(args):
    import sqlalchemy
    from sqlalchemy.engine import URL

    out = [f"sqlalchemy {sqlalchemy.__version__}"]
    url = URL.create("mysql+pymysql", username=args.user, password=args.password,
                     host=args.host, port=args.port, database=args.db)
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    insp = sqlalchemy.inspect(engine)
    out.append(f"dialect {engine.dialect.name} is_mariadb={engine.dialect.is_mariadb}"
               f" default_schema={insp.default_schema_name!r}")
    schemas = insp.get_schema_names()
    out.append(f"unscoped schema names {sorted(schemas)}")
    for name in ("information_schema", args.db):
        out.append(f"schema names: {name} present={name in schemas}")

    db = args.db
    tables = insp.get_table_names(schema=db)
    views = insp.get_view_names(schema=db)
    out.append(f"tables {tables}")
    out.append(f"views {views}")
    per_table = (
        ("columns", insp.get_columns),
        ("primary key", insp.get_pk_constraint),
        ("foreign keys", insp.get_foreign_keys),
        ("indexes", insp.get_indexes),
        ("unique constraints", insp.get_unique_constraints),
        ("check constraints", insp.get_check_constraints),
        ("options", insp.get_table_options),
        ("comment", insp.get_table_comment),
    )
    for table in tables + views:
        for what, reflect in per_table:
            try:
                got = reflect(table, schema=db)
            except Exception as e:  # noqa: BLE001 - a refusal is what the transcript shows
                out.append(f"{table} {what}: {error(e)}")
                continue
            if what == "columns":
                for column in got:
                    column = dict(column, type=repr(column["type"]))
                    out.append(f"{table} column {value(column)}")
            else:
                out.append(f"{table} {what}: {value(got)}")
    for view in views:
        try:
            out.append(f"{view} definition: {insp.get_view_definition(view, schema=db)!r}")
        except Exception as e:  # noqa: BLE001
            out.append(f"{view} definition: {error(e)}")
    # What MetaData.reflect builds from all of it: each table's CREATE as SQLAlchemy renders it.
    metadata = sqlalchemy.MetaData()
    metadata.reflect(engine, schema=db, views=True)
    for table in metadata.sorted_tables:
        ddl = str(sqlalchemy.schema.CreateTable(table).compile(engine)).strip()
        out.extend(f"reflected {table.name}: {line.rstrip()}" for line in ddl.splitlines())
    engine.dispose()
    return out


class Recorder:
    """Stands in for mycli's SQLExecute: each metadata method's result (its generator drained) and
    each error mycli logs while it swallows it go into the transcript, in the order called."""

    METHODS = ("databases", "tables", "table_columns", "indexed_columns", "foreign_keys",
               "enum_values", "users", "functions", "procedures", "character_sets", "collations",
               "show_candidates")

    def __init__(self, executor, out):
        self.executor = executor
        self.out = out
        self.unknown = []

    def __getattr__(self, name):
        attr = getattr(self.executor, name)
        if not callable(attr):
            return attr
        if name not in self.METHODS:
            self.unknown.append(name)
            return attr

        def recorded(*a, **kw):
            got = attr(*a, **kw)
            rows = got if isinstance(got, list) else list(got)
            # databases() is SHOW DATABASES: a node user sees every application database, an
            # account with grants on D only sees D. Its rows are reported, not compared; the
            # completer's database names are compared within D and information_schema.
            prefix = "unscoped " if name == "databases" else ""
            self.out.append(f"{prefix}{name}: {len(rows)} rows")
            self.out.extend(f"{prefix}  {value(row)}" for row in rows)
            return rows

        return recorded


class Logged(logging.Handler):
    """mycli logs an error and completes without what failed: keep the error's code."""

    def __init__(self, out):
        super().__init__(logging.ERROR)
        self.out = out

    def emit(self, record):
        causes = [a for a in (record.args or ()) if isinstance(a, BaseException)]
        what = record.msg.split(" due to")[0] if isinstance(record.msg, str) else record.msg
        self.out.append(f"  logged: {what}: " + (error(causes[0]) if causes else record.getMessage()))


def mycli_completion(args):
    from importlib.metadata import version

    from mycli.packages.completion.completion_refresher import CompletionRefresher
    from mycli.packages.completion.sql_completer import SQLCompleter
    from mycli.packages.execution.sql_execute import SQLExecute

    out = [f"mycli {version('mycli')}"]
    logging.getLogger("mycli").addHandler(Logged(out))
    executor = SQLExecute(args.db, args.user, args.password, args.host, args.port,
                          None, None, False, None)
    out.append(f"server species {executor.server_info.species.value} dbname {executor.dbname}")
    recorder = Recorder(executor, out)
    completer = SQLCompleter()
    for name, refresher in CompletionRefresher.refreshers.items():
        out.append(f"refresher {name}")
        refresher(completer, recorder)
    names = completer.databases
    for name in ("information_schema", args.db):
        out.append(f"completer database names: {name} present={name in names}")
    out.append("tables()")
    out.extend(f"  {value(row)}" for row in executor.tables())
    if recorder.unknown:
        out.append(f"refreshers also called {sorted(set(recorder.unknown))}")
    executor.close()
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=("sqlalchemy", "mycli"), required=True)
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--types-sql", help="unused: every client program of the matrix is given it")
    args = p.parse_args()
    run = sqlalchemy_reflection if args.mode == "sqlalchemy" else mycli_completion
    print("\n".join(run(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
