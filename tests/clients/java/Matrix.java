// The client matrix scenario (../README.md) for MariaDB Connector/J, and what DBeaver does on
// connect and when a user edits a cell (`--mode dbeaver`). Run in Java's single-file source mode:
//   java -cp /usr/share/java/mariadb-java-client.jar Matrix.java --host=... --mode=matrix
import java.math.BigDecimal;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.*;
import java.util.*;

public class Matrix {
    static final String COLUMNS =
        "ti, si, i, bi, ubi, f, d, dc, c, vc, tx, bn, vb, bl, dt, tm, dtm, ts, yr, bt, en, js";
    static final String TYPES_TABLE = "CREATE TABLE types (\n"
        + "  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,\n"
        + "  ti TINYINT, si SMALLINT, i INT, bi BIGINT, ubi BIGINT UNSIGNED,\n"
        + "  f FLOAT, d DOUBLE, dc DECIMAL(12,4),\n"
        + "  c CHAR(5), vc VARCHAR(50), tx TEXT,\n"
        + "  bn BINARY(4), vb VARBINARY(16), bl BLOB,\n"
        + "  dt DATE, tm TIME(3), dtm DATETIME(6), ts TIMESTAMP(3) NULL,\n"
        + "  yr YEAR, bt BIT(8), en ENUM('red','green'), js JSON\n"
        + ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";
    static final String LITERAL_ROW = "-128, -32768, -2147483648, -9223372036854775808, "
        + "18446744073709551615, 1.5, -2.25, 12345678.1234, 'ab', 'héllo wörld ✓', 'a long text', "
        + "X'00FF10', X'00FFFE7F80', X'DEADBEEF00', '2024-02-29', '-838:59:59.000', "
        + "'2024-02-29 23:59:59.123456', '2024-03-01 00:00:01.500', 2024, b'10100101', 'green', "
        + "'{\"k\": [1, null, \"x\"]}'";

    static final List<String> out = new ArrayList<>();

    static String hex(byte[] b) {
        StringBuilder s = new StringBuilder();
        for (byte x : b) s.append(String.format("%02x", x));
        return s.toString();
    }

    static String render(Object v) {
        if (v == null) return "null";
        if (v instanceof byte[]) return "byte[]:" + hex((byte[]) v);
        return v.getClass().getSimpleName() + ":" + v;
    }

    static void describe(String title, ResultSet rs) throws SQLException {
        out.add(title);
        ResultSetMetaData m = rs.getMetaData();
        for (int i = 1; i <= m.getColumnCount(); i++) {
            out.add("column " + m.getColumnName(i) + " label=" + m.getColumnLabel(i)
                + " type=" + m.getColumnType(i) + " typeName=" + m.getColumnTypeName(i)
                + " class=" + m.getColumnClassName(i) + " precision=" + m.getPrecision(i)
                + " scale=" + m.getScale(i) + " nullable=" + m.isNullable(i)
                + " signed=" + m.isSigned(i) + " displaySize=" + m.getColumnDisplaySize(i)
                + " autoIncrement=" + m.isAutoIncrement(i) + " table=" + m.getTableName(i)
                + " catalog=" + m.getCatalogName(i));
        }
        while (rs.next()) {
            StringJoiner row = new StringJoiner(" | ", "row ", "");
            for (int i = 1; i <= m.getColumnCount(); i++) row.add(render(rs.getObject(i)));
            out.add(row.toString());
        }
    }

    /// Every column of every row of a metadata result, by label.
    static void dump(String title, ResultSet rs) throws SQLException {
        out.add(title);
        ResultSetMetaData m = rs.getMetaData();
        while (rs.next()) {
            StringJoiner row = new StringJoiner(" ", "  ", "");
            for (int i = 1; i <= m.getColumnCount(); i++) {
                row.add(m.getColumnLabel(i) + "=" + render(rs.getObject(i)));
            }
            out.add(row.toString());
        }
    }

    static void outcome(String step, Statement st, int count) throws SQLException {
        Long id = null;
        try (ResultSet keys = st.getGeneratedKeys()) {
            if (keys.next()) id = keys.getLong(1);
        }
        out.add(step + ": updateCount=" + count + " generatedKey=" + id);
    }

    static String error(SQLException e) {
        // The driver prefixes the connection id, which differs between any two connections.
        String message = e.getMessage().replaceFirst("^\\(conn=\\d+\\) ", "");
        return "error " + e.getErrorCode() + " " + e.getSQLState() + " " + message;
    }

    static void matrix(Connection conn, String db) throws SQLException {
        try (Statement st = conn.createStatement()) {
            st.execute("SET time_zone = '+00:00'");
            for (String sql : List.of("DROP DATABASE IF EXISTS " + db, "CREATE DATABASE " + db,
                    "USE " + db, TYPES_TABLE)) {
                out.add("ddl: updateCount=" + st.executeUpdate(sql));
            }
            int n = st.executeUpdate("INSERT INTO types (" + COLUMNS + ") VALUES (" + LITERAL_ROW + ")",
                Statement.RETURN_GENERATED_KEYS);
            outcome("insert literal", st, n);
            n = st.executeUpdate("INSERT INTO types () VALUES ()", Statement.RETURN_GENERATED_KEYS);
            outcome("insert nulls", st, n);
        }
        String marks = String.join(", ", Collections.nCopies(22, "?"));
        try (PreparedStatement ps = conn.prepareStatement(
                "INSERT INTO types (" + COLUMNS + ") VALUES (" + marks + ")",
                Statement.RETURN_GENERATED_KEYS)) {
            byte[] all = new byte[256];
            for (int i = 0; i < 256; i++) all[i] = (byte) i;
            ps.setByte(1, (byte) 127);
            ps.setShort(2, (short) 32767);
            ps.setInt(3, 2147483647);
            ps.setLong(4, Long.MAX_VALUE);
            ps.setBigDecimal(5, BigDecimal.ZERO);
            ps.setFloat(6, -0.5f);
            ps.setDouble(7, Math.PI);
            ps.setBigDecimal(8, new BigDecimal("0.0001"));
            ps.setString(9, "x");
            ps.setString(10, "quote ' \" \\ end");
            ps.setString(11, "");
            ps.setBytes(12, new byte[] {0, 1, 2});
            ps.setBytes(13, new byte[] {0});
            ps.setBytes(14, all);
            ps.setDate(15, java.sql.Date.valueOf("1999-12-31"));
            ps.setString(16, "12:34:56.789");
            ps.setTimestamp(17, Timestamp.valueOf("2000-01-01 00:00:00.000001"));
            ps.setTimestamp(18, Timestamp.valueOf("2038-01-19 03:14:07.999"));
            ps.setInt(19, 1999);
            ps.setBytes(20, new byte[] {1});
            ps.setString(21, "red");
            ps.setString(22, "[]");
            outcome("insert bound", ps, ps.executeUpdate());
        }
        try (Statement st = conn.createStatement();
             ResultSet rs = st.executeQuery("SELECT * FROM types ORDER BY id")) {
            describe("statement select", rs);
        }
        try (PreparedStatement ps = conn.prepareStatement(
                "SELECT * FROM types WHERE id >= ? ORDER BY id")) {
            ps.setInt(1, 0);
            try (ResultSet rs = ps.executeQuery()) {
                describe("prepared select", rs);
            }
        }
        for (boolean commit : new boolean[] {false, true}) {
            conn.setAutoCommit(false);
            try (PreparedStatement ps = conn.prepareStatement("INSERT INTO types (ti) VALUES (?)")) {
                ps.setInt(1, 1);
                ps.executeUpdate();
            }
            if (commit) conn.commit(); else conn.rollback();
            conn.setAutoCommit(true);
            try (Statement st = conn.createStatement();
                 ResultSet rs = st.executeQuery("SELECT COUNT(*) FROM types")) {
                rs.next();
                out.add("after " + (commit ? "commit" : "rollback") + ": count " + rs.getLong(1));
            }
        }
        try (Statement st = conn.createStatement()) {
            for (String[] step : new String[][] {{"duplicate", "INSERT INTO types (id) VALUES (1)"},
                    {"missing table", "SELECT * FROM no_such_table"}}) {
                try {
                    st.execute(step[1]);
                    out.add(step[0] + ": no error");
                } catch (SQLException e) {
                    out.add(step[0] + ": " + error(e));
                }
            }
            try (ResultSet rs = st.executeQuery("SELECT 1")) {
                rs.next();
                out.add("after errors " + rs.getInt(1));
            }
        }
    }

    static void refusal(Connection conn) throws SQLException {
        try (Statement st = conn.createStatement()) {
            try {
                st.execute("CREATE TABLE refused (a INT)");
                out.add("create on slave: no error");
            } catch (SQLException e) {
                out.add("create on slave: " + error(e));
            }
            try (ResultSet rs = st.executeQuery("SELECT COUNT(*) FROM student")) {
                rs.next();
                out.add("students " + rs.getLong(1));
            }
        }
    }

    static final Set<String> SYSTEM_CATALOGS =
        Set.of("information_schema", "mysql", "performance_schema", "sys", "school");

    static void dbeaver(Connection conn, String db, String schoolSql) throws SQLException {
        try (Statement st = conn.createStatement()) {
            st.execute("DROP DATABASE IF EXISTS " + db);
            for (String sql : schoolSql.replace("school", db).split(";")) {
                if (!sql.strip().isEmpty()) st.execute(sql);
            }
        }
        conn.setCatalog(db);
        DatabaseMetaData md = conn.getMetaData();
        out.add("product " + md.getDatabaseProductName() + ", driver " + md.getDriverName());
        List<String> catalogs = new ArrayList<>();
        try (ResultSet rs = md.getCatalogs()) {
            while (rs.next()) {
                String c = rs.getString("TABLE_CAT");
                if (c.equals(db) || SYSTEM_CATALOGS.contains(c)) catalogs.add(c);
            }
        }
        out.add("catalogs " + catalogs);
        try (ResultSet rs = md.getTables(db, null, "%", null)) {
            dump("tables", rs);
        }
        for (String table : List.of("course", "student", "student_course")) {
            try (ResultSet rs = md.getColumns(db, null, table, "%")) {
                dump("columns of " + table, rs);
            }
            try (ResultSet rs = md.getPrimaryKeys(db, null, table)) {
                dump("primary key of " + table, rs);
            }
            try (ResultSet rs = md.getIndexInfo(db, null, table, false, false)) {
                dump("indexes of " + table, rs);
            }
        }
        try (ResultSet rs = md.getImportedKeys(db, null, "student_course")) {
            dump("imported keys of student_course", rs);
        }
        try (ResultSet rs = md.getExportedKeys(db, null, "student")) {
            dump("exported keys of student", rs);
        }
        try (Statement st = conn.createStatement();
             ResultSet rs = st.executeQuery("SELECT * FROM student ORDER BY id")) {
            describe("result of SELECT * FROM student", rs);
        }
        // A cell edit in DBeaver's grid: an updatable result set, one row changed in place.
        try (Statement st = conn.createStatement(ResultSet.TYPE_SCROLL_INSENSITIVE,
                ResultSet.CONCUR_UPDATABLE);
             ResultSet rs = st.executeQuery("SELECT id, name FROM student ORDER BY id")) {
            out.add("concurrency " + rs.getConcurrency());
            while (rs.next()) {
                if (rs.getInt("id") == 2) {
                    rs.updateString("name", "Alan M. Turing");
                    rs.updateRow();
                    out.add("updated row 2");
                }
            }
        }
        try (Statement st = conn.createStatement();
             ResultSet rs = st.executeQuery("SELECT * FROM student ORDER BY id")) {
            describe("student after the edit", rs);
        }
    }

    public static void main(String[] argv) throws Exception {
        Map<String, String> a = new HashMap<>();
        for (String arg : argv) {
            String[] kv = arg.replaceFirst("^--", "").split("=", 2);
            a.put(kv[0], kv.length > 1 ? kv[1] : "");
        }
        String mode = a.get("mode");
        String db = a.get("db");
        // useServerPrepStmts: PreparedStatement is COM_STMT_PREPARE / EXECUTE (binary protocol).
        String url = "jdbc:mariadb://" + a.get("host") + ":" + a.get("port") + "/"
            + (mode.equals("refusal") ? db : "") + "?useServerPrepStmts=true&useSSL=false";
        try (Connection conn = DriverManager.getConnection(url, a.get("user"), a.get("password"))) {
            switch (mode) {
                case "matrix" -> matrix(conn, db);
                case "refusal" -> refusal(conn);
                case "dbeaver" -> dbeaver(conn, db, Files.readString(Path.of(a.get("school-sql"))));
                default -> throw new IllegalArgumentException("mode " + mode);
            }
        }
        System.out.println(String.join("\n", out));
    }
}
