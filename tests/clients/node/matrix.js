// The client matrix scenario (../README.md) for Node.js mysql2: `query` (text protocol) and
// `execute` (server-side prepared statements, binary protocol).
'use strict';
const mysql = require('mysql2/promise');

const COLUMNS = 'ti, si, i, bi, ubi, f, d, dc, c, vc, tx, bn, vb, bl, dt, tm, dtm, ts, yr, bt, en, js';
const TYPES_TABLE = `CREATE TABLE types (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  ti TINYINT, si SMALLINT, i INT, bi BIGINT, ubi BIGINT UNSIGNED,
  f FLOAT, d DOUBLE, dc DECIMAL(12,4),
  c CHAR(5), vc VARCHAR(50), tx TEXT,
  bn BINARY(4), vb VARBINARY(16), bl BLOB,
  dt DATE, tm TIME(3), dtm DATETIME(6), ts TIMESTAMP(3) NULL,
  yr YEAR, bt BIT(8), en ENUM('red','green'), js JSON
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`;
const LITERAL_ROW = "-128, -32768, -2147483648, -9223372036854775808, 18446744073709551615, 1.5, -2.25, " +
  "12345678.1234, 'ab', 'héllo wörld ✓', 'a long text', X'00FF10', X'00FFFE7F80', X'DEADBEEF00', " +
  "'2024-02-29', '-838:59:59.000', '2024-02-29 23:59:59.123456', '2024-03-01 00:00:01.500', 2024, " +
  "b'10100101', 'green', '{\"k\": [1, null, \"x\"]}'";
// mysql2 binds strings for what JavaScript has no exact type for (big integers, decimals, times).
const BOUND_ROW = [
  127, 32767, 2147483647, '9223372036854775807', 0, -0.5, Math.PI, '0.0001', 'x',
  'quote \' " \\ end', '', Buffer.from([0, 1, 2]), Buffer.from([0]),
  Buffer.from([...Array(256).keys()]), new Date(Date.UTC(1999, 11, 31)), '12:34:56.789',
  '2000-01-01 00:00:00.000001', new Date(Date.UTC(2038, 0, 19, 3, 14, 7, 999)), 1999,
  Buffer.from([1]), 'red', '[]',
];

function render(v) {
  if (v === null) return 'null';
  if (Buffer.isBuffer(v)) return `Buffer:${v.toString('hex')}`;
  if (v instanceof Date) return `Date:${isNaN(v) ? 'Invalid' : v.toISOString()}`;
  if (typeof v === 'object') return `${v.constructor.name}:${JSON.stringify(v)}`;
  return `${typeof v}:${JSON.stringify(v)}`;
}

function describe(out, title, rows, fields) {
  out.push(title);
  for (const f of fields) {
    out.push(`column ${f.name} type=${f.columnType} typeName=${f.type} flags=${f.flags} ` +
      `length=${f.columnLength} decimals=${f.decimals} charset=${f.characterSet} ` +
      `db=${f.db} schema=${f.schema} table=${f.table} orgTable=${f.orgTable} orgName=${f.orgName}`);
  }
  for (const row of rows) out.push('row ' + row.map(render).join(' | '));
}

const outcome = (out, step, r) =>
  out.push(`${step}: affected=${r.affectedRows} insertId=${r.insertId} warnings=${r.warningStatus}`);
const failure = (e) => `error ${e.errno} ${e.sqlState} ${e.sqlMessage}`;

async function matrix(conn, db) {
  const out = [];
  await conn.query("SET time_zone = '+00:00'");
  for (const sql of [`DROP DATABASE IF EXISTS ${db}`, `CREATE DATABASE ${db}`, `USE ${db}`, TYPES_TABLE]) {
    const [r] = await conn.query(sql);
    outcome(out, 'ddl', r);
  }
  outcome(out, 'insert literal', (await conn.query(`INSERT INTO types (${COLUMNS}) VALUES (${LITERAL_ROW})`))[0]);
  outcome(out, 'insert nulls', (await conn.query('INSERT INTO types () VALUES ()'))[0]);
  const marks = BOUND_ROW.map(() => '?').join(', ');
  outcome(out, 'insert bound', (await conn.execute(`INSERT INTO types (${COLUMNS}) VALUES (${marks})`, BOUND_ROW))[0]);
  const [rows, fields] = await conn.query({ sql: 'SELECT * FROM types ORDER BY id', rowsAsArray: true });
  describe(out, 'query select', rows, fields);
  const [prows, pfields] = await conn.execute({ sql: 'SELECT * FROM types WHERE id >= ? ORDER BY id', rowsAsArray: true }, [0]);
  describe(out, 'execute select', prows, pfields);
  for (const finish of ['ROLLBACK', 'COMMIT']) {
    await conn.beginTransaction();
    await conn.execute('INSERT INTO types (ti) VALUES (?)', [1]);
    await (finish === 'ROLLBACK' ? conn.rollback() : conn.commit());
    const [[count]] = await conn.query({ sql: 'SELECT COUNT(*) FROM types', rowsAsArray: true });
    out.push(`after ${finish}: count ${render(count[0])}`);
  }
  for (const [step, sql] of [['duplicate', 'INSERT INTO types (id) VALUES (1)'], ['missing table', 'SELECT * FROM no_such_table']]) {
    try {
      await conn.query(sql);
      out.push(`${step}: no error`);
    } catch (e) {
      if (!e.errno) throw e;
      out.push(`${step}: ${failure(e)}`);
    }
  }
  const [[one]] = await conn.execute({ sql: 'SELECT 1', rowsAsArray: true });
  out.push(`after errors ${render(one[0])}`);
  return out;
}

async function refusal(conn) {
  const out = [];
  try {
    await conn.query('CREATE TABLE refused (a INT)');
    out.push('create on slave: no error');
  } catch (e) {
    if (!e.errno) throw e;
    out.push(`create on slave: ${failure(e)}`);
  }
  const [[n]] = await conn.query({ sql: 'SELECT COUNT(*) FROM student', rowsAsArray: true });
  out.push(`students ${n[0]}`);
  return out;
}

async function main() {
  const args = Object.fromEntries(process.argv.slice(2).map((a) => {
    const [k, ...v] = a.replace(/^--/, '').split('=');
    return [k, v.join('=')];
  }));
  const conn = await mysql.createConnection({
    host: args.host, port: Number(args.port), user: args.user, password: args.password,
    database: args.mode === 'refusal' ? args.db : undefined, charset: 'utf8mb4_general_ci',
    timezone: 'Z', supportBigNumbers: true, bigNumberStrings: true, dateStrings: false,
  });
  const out = args.mode === 'matrix' ? await matrix(conn, args.db) : await refusal(conn);
  console.log(out.join('\n'));
  await conn.end();
}

main().catch((e) => { console.error(e); process.exit(1); });
