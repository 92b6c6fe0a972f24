// The client matrix scenario (../README.md) for Node.js mysql2 (mysql2/promise):
// `connection.query` is the text protocol (COM_QUERY), `connection.execute` and
// `connection.prepare` are server-side prepared statements (COM_STMT_PREPARE / COM_STMT_EXECUTE,
// binary result rows).
//
//   node matrix.js --host H --port P --user U --password W --db D --mode matrix|refusal
//
// (`--key=value` works as well.) The transcript goes to stdout, diagnostics to stderr; the exit
// status is 0 only when the scenario ran to the end.
//
// Options chosen for a deterministic transcript:
// - `timezone: 'Z'` and `SET time_zone = '+00:00'`: DATETIME/TIMESTAMP values are read and bound
//   as UTC, so a Date prints the same on any machine.
// - `dateStrings: false`: DATE/DATETIME/TIMESTAMP come back as JS Date (printed with
//   toISOString, milliseconds only: that is what the driver gives a user); TIME is always a string.
//   The temporal columns are selected once more with `dateStrings: true` so that microseconds
//   are in the transcript too.
// - `supportBigNumbers: true, bigNumberStrings: true`: BIGINT (and COUNT(*)) and DECIMAL come back
//   as strings, exactly as the server sent them.
// - `charset: 'UTF8MB4_GENERAL_CI'`: the connection charset, stated rather than defaulted.
//
// The bound row uses what a mysql2 user binds natively: numbers, a BigInt for the BIGINT (sent
// as a string, since MariaDB's parameter metadata gives mysql2 no type hint), Buffers for the
// binaries (BIT too), a Date for DATE and TIMESTAMP. JavaScript has no decimal or time-of-day
// type, so DECIMAL and TIME are bound through mysql2's own typed parameters
// (`mysql.TypedParameter.DECIMAL`, `.TIME`: MYSQL_TYPE_DECIMAL / MYSQL_TYPE_TIME on the wire);
// DATETIME(6) holds microseconds, which a Date cannot, so it is bound as a string, and the JSON
// column gets its text (MariaDB refuses MYSQL_TYPE_JSON parameters).
'use strict';
const mysql = require('mysql2/promise');

const COLUMNS = 'ti, si, i, bi, ubi, f, d, dc, c, vc, tx, bn, vb, bl, dt, tm, dtm, ts, yr, bt, en, js';

// The `types` table and its literal-row INSERT, from the matrix's shared types.sql.
function typesSql(path) {
  const text = require('fs').readFileSync(path, 'utf8')
    .split('\n').filter((line) => !line.startsWith('--')).join('\n');
  return text.split(';').map((s) => s.trim()).filter((s) => s.length > 0);
}

function boundRow() {
  const T = mysql.TypedParameter;
  return [
    127, // ti
    32767, // si
    2147483647, // i
    9223372036854775807n, // bi
    0, // ubi
    -0.5, // f
    3.141592653589793, // d
    T.DECIMAL('0.0001'), // dc
    'x', // c
    'quote \' " \\ end', // vc
    '', // tx
    Buffer.from([0x00, 0x01, 0x02]), // bn
    Buffer.from([0x00]), // vb
    Buffer.from(Array.from({ length: 256 }, (_, n) => n)), // bl
    new Date(Date.UTC(1999, 11, 31)), // dt
    T.TIME('12:34:56.789'), // tm
    '2000-01-01 00:00:00.000001', // dtm
    new Date(Date.UTC(2038, 0, 19, 3, 14, 7, 999)), // ts
    1999, // yr
    Buffer.from([0x01]), // bt
    'red', // en
    '[]', // js
  ];
}

const TYPE_NAMES = {};
for (const [name, code] of Object.entries(mysql.Types)) {
  if (typeof code === 'number' && TYPE_NAMES[code] === undefined) TYPE_NAMES[code] = name;
}
// Column flags and server status bits (the protocol's; mysql2 does not export its tables).
const FLAG_NAMES = Object.entries({
  NOT_NULL: 1, PRI_KEY: 2, UNIQUE_KEY: 4, MULTIPLE_KEY: 8, BLOB: 16, UNSIGNED: 32, ZEROFILL: 64,
  BINARY: 128, ENUM: 256, AUTO_INCREMENT: 512, TIMESTAMP: 1024, SET: 2048, NO_DEFAULT_VALUE: 4096,
  ON_UPDATE_NOW: 8192, NUM: 32768,
});
const STATUS_NAMES = Object.entries({
  IN_TRANS: 1, AUTOCOMMIT: 2, MORE_RESULTS_EXISTS: 8, QUERY_NO_GOOD_INDEX_USED: 16,
  QUERY_NO_INDEX_USED: 32, CURSOR_EXISTS: 64, LAST_ROW_SENT: 128, DB_DROPPED: 256,
  NO_BACKSLASH_ESCAPES: 512, METADATA_CHANGED: 1024, QUERY_WAS_SLOW: 2048, PS_OUT_PARAMS: 4096,
  IN_TRANS_READONLY: 0x2000, SESSION_STATE_CHANGED: 0x4000,
});

const bits = (value, names) =>
  names.filter(([, bit]) => value & bit).map(([name]) => name).join(',') || '-';

/** A value as `<JS type>:<rendering>`, with nothing left ambiguous. */
function render(v) {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  switch (typeof v) {
    case 'number':
      return `number:${Object.is(v, -0) ? '-0' : String(v)}`;
    case 'bigint':
      return `bigint:${v}n`;
    case 'string':
      return `string:${JSON.stringify(v)}`;
    case 'boolean':
      return `boolean:${v}`;
    case 'object':
      if (Buffer.isBuffer(v)) return `Buffer(${v.length}):${v.toString('hex')}`;
      if (v instanceof Date) return `Date:${Number.isNaN(v.getTime()) ? 'Invalid Date' : v.toISOString()}`;
      return `${v.constructor ? v.constructor.name : 'Object'}:${JSON.stringify(v)}`;
    default:
      return `${typeof v}:${String(v)}`;
  }
}

/** One column definition, every attribute the driver exposes. */
function column(prefix, f) {
  return (
    `${prefix} ${f.name} columnType=${f.columnType} type=${f.type}(${TYPE_NAMES[f.columnType]}) ` +
    `flags=${f.flags}(${bits(f.flags, FLAG_NAMES)}) columnLength=${f.columnLength} ` +
    `decimals=${f.decimals} characterSet=${f.characterSet} encoding=${f.encoding} ` +
    `catalog=${f.catalog} schema=${f.schema} db=${f.db} table=${f.table} orgTable=${f.orgTable} ` +
    `orgName=${f.orgName} extendedTypeName=${f.extendedTypeName} extendedFormat=${f.extendedFormat}`
  );
}

/** The OK packet of a statement without a result set, as mysql2's ResultSetHeader. */
function outcome(out, step, r) {
  if (r === undefined || r.constructor.name !== 'ResultSetHeader') {
    throw new Error(`${step}: expected a ResultSetHeader, got ${render(r)}`);
  }
  out.push(
    `${step}: fieldCount=${r.fieldCount} affectedRows=${render(r.affectedRows)} ` +
      `insertId=${render(r.insertId)} changedRows=${r.changedRows} ` +
      `warningStatus=${r.warningStatus} serverStatus=${r.serverStatus}(${bits(r.serverStatus, STATUS_NAMES)}) ` +
      `info=${JSON.stringify(r.info)} stateChanges=${JSON.stringify(r.stateChanges)}`
  );
}

function resultSet(out, title, rows, fields) {
  out.push(`${title}: ${fields.length} columns, ${rows.length} rows`);
  fields.forEach((f) => out.push(column('column', f)));
  rows.forEach((row, n) => {
    out.push(`row ${n}`);
    fields.forEach((f, i) => out.push(`  ${f.name} = ${render(row[i])}`));
  });
}

/** Prints what COM_STMT_PREPARE answered: parameter and column definitions. */
async function prepared(out, title, conn, sql) {
  const stmt = await conn.prepare({ sql, rowsAsArray: true });
  const s = stmt.statement;
  out.push(`${title}: prepared, ${s.parameters.length} parameters, ${s.columns.length} columns`);
  s.parameters.forEach((f) => out.push(column('parameter', f)));
  s.columns.forEach((f) => out.push(column('column', f)));
  return stmt;
}

const failure = (e) =>
  `error errno=${e.errno} code=${e.code} sqlState=${e.sqlState} sqlMessage=${JSON.stringify(e.sqlMessage)}`;

/** Runs `action`, which must fail with a server error; prints it. */
async function expectError(out, step, action) {
  try {
    const r = await action();
    out.push(`${step}: no error`);
    throw new Error(`${step}: expected an error, got ${JSON.stringify(r[0])}`);
  } catch (e) {
    if (!e.errno || !e.sqlState) throw e;
    out.push(`${step}: ${failure(e)}`);
  }
}

async function single(out, step, [rows, fields]) {
  if (rows.length !== 1 || fields.length !== 1) {
    throw new Error(`${step}: expected one value, got ${rows.length} rows of ${fields.length} columns`);
  }
  out.push(`${step}: ${fields[0].name} = ${render(rows[0][0])}`);
}

async function matrix(conn, db, typesFile) {
  const out = [];
  // 1. No default database; recreate D.
  outcome(out, 'set time_zone', (await conn.query("SET time_zone = '+00:00'"))[0]);
  outcome(out, 'drop database', (await conn.query(`DROP DATABASE IF EXISTS ${db}`))[0]);
  outcome(out, 'create database', (await conn.query(`CREATE DATABASE ${db}`))[0]);
  outcome(out, 'use', (await conn.query(`USE ${db}`))[0]);
  // 2. DDL.
  const [typesTable, literalInsert] = typesSql(typesFile);
  outcome(out, 'create table', (await conn.query(typesTable))[0]);
  // 3. Text-protocol inserts.
  outcome(out, 'insert literal (query)',
    (await conn.query(literalInsert))[0]);
  outcome(out, 'insert nulls (query)', (await conn.query('INSERT INTO types () VALUES ()'))[0]);
  // 4. Prepared insert of the bound row.
  const insert = `INSERT INTO types (${COLUMNS}) VALUES (${COLUMNS.split(', ').map(() => '?').join(', ')})`;
  const insertStmt = await prepared(out, 'insert bound', conn, insert);
  outcome(out, 'insert bound (execute)', (await insertStmt.execute(boundRow()))[0]);
  // 5. SELECT through both protocols.
  const [rows, fields] = await conn.query({ sql: 'SELECT * FROM types ORDER BY id', rowsAsArray: true });
  resultSet(out, 'select (query)', rows, fields);
  const select = 'SELECT * FROM types WHERE id >= ? ORDER BY id';
  // conn.execute finds the statement just prepared in mysql2's statement cache and executes it.
  await prepared(out, 'select', conn, select);
  const [prows, pfields] = await conn.execute({ sql: select, rowsAsArray: true }, [0]);
  resultSet(out, 'select (execute)', prows, pfields);
  // A Date holds milliseconds: the temporal columns once more as the server's strings
  // (`dateStrings: true` for this statement only), so microseconds are compared too.
  const temporal = { sql: 'SELECT id, dt, tm, dtm, ts FROM types WHERE id >= ? ORDER BY id', rowsAsArray: true, dateStrings: true };
  const [trows, tfields] = await conn.query(temporal, [0]);
  resultSet(out, 'select temporal as strings (query)', trows, tfields);
  const [xrows, xfields] = await conn.execute(temporal, [0]);
  resultSet(out, 'select temporal as strings (execute)', xrows, xfields);
  // 6. Transactions.
  for (const finish of ['rollback', 'commit']) {
    await conn.beginTransaction();
    outcome(out, `insert before ${finish} (execute)`,
      (await conn.execute('INSERT INTO types (ti, vc) VALUES (?, ?)', [1, finish]))[0]);
    await (finish === 'rollback' ? conn.rollback() : conn.commit());
    await single(out, `count after ${finish} (query)`,
      await conn.query({ sql: 'SELECT COUNT(*) FROM types', rowsAsArray: true }));
  }
  // 7. Errors, and the connection stays usable.
  await expectError(out, 'duplicate key (query)', () => conn.query('INSERT INTO types (id) VALUES (1)'));
  await expectError(out, 'duplicate key (execute)', () => conn.execute('INSERT INTO types (id) VALUES (?)', [1]));
  await expectError(out, 'missing table (query)', () => conn.query('SELECT * FROM no_such_table'));
  await expectError(out, 'missing table (execute)', () =>
    conn.execute('SELECT * FROM no_such_table WHERE 1 = ?', [1]));
  await single(out, 'after errors (query)', await conn.query({ sql: 'SELECT 1', rowsAsArray: true }));
  await single(out, 'after errors (execute)', await conn.execute({ sql: 'SELECT ? + 1', rowsAsArray: true }, [1]));
  return out;
}

async function refusal(conn) {
  const out = [];
  await expectError(out, 'create on slave', () => conn.query('CREATE TABLE refused (a INT)'));
  const [[[n]]] = await conn.query({ sql: 'SELECT COUNT(*) FROM student', rowsAsArray: true });
  out.push(`students (${typeof n}) ${n}`);
  return out;
}

function parseArgs(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([^=]+)(?:=(.*))?$/s.exec(argv[i]);
    if (!m) throw new Error(`unexpected argument ${JSON.stringify(argv[i])}`);
    args[m[1]] = m[2] !== undefined ? m[2] : argv[++i];
  }
  for (const key of ['host', 'port', 'user', 'password', 'db', 'mode', 'types-sql']) {
    if (args[key] === undefined) throw new Error(`missing --${key}`);
  }
  if (!['matrix', 'refusal'].includes(args.mode)) throw new Error(`unknown --mode ${args.mode}`);
  return args;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const conn = await mysql.createConnection({
    host: args.host,
    port: Number(args.port),
    user: args.user,
    password: args.password,
    database: args.mode === 'refusal' ? args.db : undefined,
    charset: 'UTF8MB4_GENERAL_CI',
    timezone: 'Z',
    dateStrings: false,
    supportBigNumbers: true,
    bigNumberStrings: true,
  });
  const c = conn.connection;
  const hs = c._handshakePacket || {};
  console.error(
    `connected: server ${hs.serverVersion} connection id ${hs.connectionId} ` +
      `capabilities 0x${(hs.capabilityFlags >>> 0).toString(16)} ` +
      `mariadb extended 0x${((hs.mariadbExtendedCapabilityFlags || 0) >>> 0).toString(16)} ` +
      `extended metadata ${Boolean(c._mariadbExtendedMetadata)}`
  );
  const out = args.mode === 'matrix' ? await matrix(conn, args.db, args['types-sql']) : await refusal(conn);
  await conn.end();
  process.stdout.write(out.join('\n') + '\n');
  console.error(`done in ${Date.now() - started} ms`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
