-- The client matrix's `types` table and its literal row (README.md). Every client program runs
-- these two statements as written; the harness passes this file as --types-sql.
CREATE TABLE types (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  ti TINYINT, si SMALLINT, i INT, bi BIGINT, ubi BIGINT UNSIGNED,
  f FLOAT, d DOUBLE, dc DECIMAL(12,4),
  c CHAR(5), vc VARCHAR(50), tx TEXT,
  bn BINARY(4), vb VARBINARY(16), bl BLOB,
  dt DATE, tm TIME(3), dtm DATETIME(6), ts TIMESTAMP(3) NULL,
  yr YEAR, bt BIT(8), en ENUM('red','green'), js JSON
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO types (ti, si, i, bi, ubi, f, d, dc, c, vc, tx, bn, vb, bl, dt, tm, dtm, ts, yr, bt, en, js)
VALUES (-128, -32768, -2147483648, -9223372036854775808, 18446744073709551615, 1.5, -2.25,
  12345678.1234, 'ab', 'héllo wörld ✓', 'a long text', X'00FF10', X'00FFFE7F80', X'DEADBEEF00',
  '2024-02-29', '-838:59:59.000', '2024-02-29 23:59:59.123456', '2024-03-01 00:00:01.500', 2024,
  b'10100101', 'green', '{"k": [1, null, "x"]}');
