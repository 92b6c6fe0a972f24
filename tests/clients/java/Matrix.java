// The client matrix scenario (../README.md) for MariaDB Connector/J, and DBeaver's connect-time
// metadata calls plus a cell edit (--mode dbeaver), or the metadata calls alone on an existing
// database (--mode dbeaver-metadata). Run in single-file source mode:
//   java -cp /usr/share/java/mariadb-java-client.jar Matrix.java --host H --port P ... --mode M
// The transcript goes to stdout (UTF-8), diagnostics to stderr; any unexpected error exits 1.

import java.io.PrintStream;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.SQLWarning;
import java.sql.Statement;
import java.sql.Time;
import java.sql.Timestamp;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TimeZone;

public class Matrix {
    static final String COLUMNS =
        "ti, si, i, bi, ubi, f, d, dc, c, vc, tx, bn, vb, bl, dt, tm, dtm, ts, yr, bt, en, js";
    static final String[] SCHOOL_TABLES = {"student", "course", "student_course"};

    static PrintStream out;
    static final Map<String, String> args = new HashMap<>();

    static void say(String line) {
        out.println(line);
    }

    public static void main(String[] argv) {
        out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
        // java.sql.Date/Time/Timestamp are converted in the JVM's zone: make it the session's.
        TimeZone.setDefault(TimeZone.getTimeZone("UTC"));
        for (int i = 0; i < argv.length; i++) {
            String a = argv[i];
            if (!a.startsWith("--")) {
                usage("unexpected argument " + a);
            }
            int eq = a.indexOf('=');
            if (eq >= 0) {
                args.put(a.substring(2, eq), a.substring(eq + 1));
            } else if (i + 1 < argv.length) {
                args.put(a.substring(2), argv[++i]);
            } else {
                usage("missing value for " + a);
            }
        }
        for (String required : new String[] {"host", "port", "user", "password", "db", "mode"}) {
            if (!args.containsKey(required)) {
                usage("missing --" + required);
            }
        }
        int status = 0;
        try {
            switch (args.get("mode")) {
                case "matrix": matrix(args.get("db")); break;
                case "refusal": refusal(args.get("db")); break;
                case "dbeaver": dbeaver(args.get("db")); break;
                case "dbeaver-metadata": dbeaverMetadata(args.get("db")); break;
                default: usage("unknown --mode " + args.get("mode"));
            }
        } catch (Throwable t) {
            out.flush();
            System.err.println("unexpected failure:");
            t.printStackTrace();
            status = 1;
        }
        out.flush();
        System.exit(status);
    }

    static void usage(String why) {
        System.err.println(why);
        System.err.println("usage: Matrix --host H --port P --user U --password W --db D"
            + " --mode matrix|refusal|dbeaver|dbeaver-metadata");
        System.exit(2);
    }

    /** A connection to `db` (none when empty); `serverPrepare`: PreparedStatement is COM_STMT_PREPARE. */
    static Connection connect(String db, boolean serverPrepare) throws SQLException {
        String url = "jdbc:mariadb://" + args.get("host") + ":" + args.get("port") + "/" + db
            + "?useSSL=false&useServerPrepStmts=" + serverPrepare;
        return DriverManager.getConnection(url, args.get("user"), args.get("password"));
    }

    // ---- rendering ----

    static String quote(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"': b.append("\\\""); break;
                case '\\': b.append("\\\\"); break;
                case '\n': b.append("\\n"); break;
                case '\r': b.append("\\r"); break;
                case '\t': b.append("\\t"); break;
                default:
                    if (c < 0x20 || c == 0x7f || Character.isSurrogate(c) || c == 0xfffd) {
                        b.append(String.format("\\u%04x", (int) c));
                    } else {
                        b.append(c);
                    }
            }
        }
        return b.append('"').toString();
    }

    static String hex(byte[] bytes) {
        StringBuilder b = new StringBuilder();
        for (byte x : bytes) {
            b.append(String.format("%02x", x & 0xff));
        }
        return b.toString();
    }

    /** The value's Java class and a rendering that tells every value apart. */
    static String render(Object v) {
        if (v == null) {
            return "null";
        }
        String text;
        if (v instanceof byte[]) {
            byte[] bytes = (byte[]) v;
            text = "len=" + bytes.length + " hex=" + hex(bytes);
        } else if (v instanceof String) {
            text = quote((String) v);
        } else if (v instanceof Time) {
            // Time.toString() drops the fraction and wraps out-of-day values: add its millis.
            text = v + " millis=" + ((Time) v).getTime();
        } else if (v instanceof Timestamp) {
            text = v + " nanos=" + ((Timestamp) v).getNanos();
        } else if (v instanceof BigDecimal) {
            text = v + " scale=" + ((BigDecimal) v).scale();
        } else {
            text = String.valueOf(v);
        }
        return v.getClass().getName() + " " + text;
    }

    /** Every ResultSetMetaData fact of every column. */
    static void columns(ResultSetMetaData md) throws SQLException {
        for (int i = 1; i <= md.getColumnCount(); i++) {
            say("column " + i
                + " name=" + md.getColumnName(i)
                + " label=" + md.getColumnLabel(i)
                + " type=" + md.getColumnType(i)
                + " typeName=" + md.getColumnTypeName(i)
                + " class=" + md.getColumnClassName(i)
                + " precision=" + md.getPrecision(i)
                + " scale=" + md.getScale(i)
                + " nullable=" + md.isNullable(i)
                + " signed=" + md.isSigned(i)
                + " displaySize=" + md.getColumnDisplaySize(i)
                + " autoIncrement=" + md.isAutoIncrement(i)
                + " table=" + md.getTableName(i)
                + " catalog=" + md.getCatalogName(i));
        }
    }

    /** The metadata of a result set, then each value via getObject (and getString). */
    static void result(String title, ResultSet rs) throws SQLException {
        say(title);
        ResultSetMetaData md = rs.getMetaData();
        columns(md);
        int row = 0;
        while (rs.next()) {
            row++;
            for (int i = 1; i <= md.getColumnCount(); i++) {
                Object v = rs.getObject(i);
                String s = rs.getString(i);
                // getString of a byte[] only decodes those bytes again: the hex says it all.
                say("row " + row + " " + md.getColumnLabel(i) + " = " + render(v)
                    + (v instanceof byte[] ? "" : " | getString " + (s == null ? "null" : quote(s))));
            }
        }
        say("rows " + row);
        rs.close();
    }

    /** A DatabaseMetaData result: its column labels and types, then each row as label=value. */
    static void table(String title, ResultSet rs) throws SQLException {
        say(title);
        ResultSetMetaData md = rs.getMetaData();
        StringBuilder head = new StringBuilder("  columns");
        for (int i = 1; i <= md.getColumnCount(); i++) {
            head.append(' ').append(md.getColumnLabel(i)).append(':').append(md.getColumnTypeName(i));
        }
        say(head.toString());
        int row = 0;
        while (rs.next()) {
            row++;
            StringBuilder line = new StringBuilder("  row");
            for (int i = 1; i <= md.getColumnCount(); i++) {
                Object v = rs.getObject(i);
                line.append(' ').append(md.getColumnLabel(i)).append('=');
                line.append(v == null ? "null" : v instanceof String ? quote((String) v)
                    : v instanceof byte[] ? "0x" + hex((byte[]) v) : String.valueOf(v));
            }
            say(line.toString());
        }
        say("  rows " + row);
        rs.close();
    }

    /** An error as the client sees it; "(conn=N) " names the connection, so it is left out. */
    static String error(SQLException e) {
        String message = String.valueOf(e.getMessage()).replaceFirst("^\\(conn=\\d+\\) ", "");
        return "error " + e.getErrorCode() + " " + e.getSQLState() + " "
            + e.getClass().getSimpleName() + " " + message;
    }

    static String keys(Statement st) throws SQLException {
        List<String> ids = new ArrayList<>();
        try (ResultSet rs = st.getGeneratedKeys()) {
            while (rs.next()) {
                ids.add(render(rs.getObject(1)));
            }
        }
        return ids.toString();
    }

    /** The statement's warnings: the driver reads them with SHOW WARNINGS when the OK packet counts some. */
    static String warnings(Statement st) throws SQLException {
        List<String> all = new ArrayList<>();
        for (SQLWarning w = st.getWarnings(); w != null; w = w.getNextWarning()) {
            all.add(w.getErrorCode() + " " + w.getMessage());
        }
        // No clearWarnings(): Connector/J 2.7 would then report none for every later statement.
        return all.toString();
    }

    /** A text-protocol update: affected rows, last insert id (as generated keys), warnings. */
    static void update(Statement st, String step, String sql) throws SQLException {
        int n = st.executeUpdate(sql, Statement.RETURN_GENERATED_KEYS);
        say(step + ": affected=" + n + " generated=" + keys(st) + " warnings=" + warnings(st));
    }

    static String scalar(Statement st, String sql) throws SQLException {
        try (ResultSet rs = st.executeQuery(sql)) {
            rs.next();
            return render(rs.getObject(1));
        }
    }

    // ---- --mode matrix ----

    static void matrix(String db) throws SQLException {
        // useServerPrepStmts=true: Statement is COM_QUERY, PreparedStatement COM_STMT_PREPARE/EXECUTE.
        try (Connection conn = connect("", true); Statement st = conn.createStatement()) {
            st.execute("SET time_zone = '+00:00'");
            update(st, "ddl drop database", "DROP DATABASE IF EXISTS " + db);
            update(st, "ddl create database", "CREATE DATABASE " + db);
            update(st, "ddl use", "USE " + db);
            String[] types = sqlFile("types-sql");
            update(st, "ddl create table", types[0]);

            update(st, "insert literal", types[1]);
            update(st, "insert nulls", "INSERT INTO types () VALUES ()");

            String marks = String.join(", ", Collections.nCopies(22, "?"));
            try (PreparedStatement ps = conn.prepareStatement(
                    "INSERT INTO types (" + COLUMNS + ") VALUES (" + marks + ")",
                    Statement.RETURN_GENERATED_KEYS)) {
                // A driver that could not prepare on the server falls back to client-side: say which.
                say("insert bound: statement " + ps.getClass().getSimpleName()
                    + " parameters=" + ps.getParameterMetaData().getParameterCount());
                byte[] all = new byte[256];
                for (int i = 0; i < 256; i++) {
                    all[i] = (byte) i;
                }
                int p = 1;
                ps.setByte(p++, (byte) 127);
                ps.setShort(p++, (short) 32767);
                ps.setInt(p++, 2147483647);
                ps.setLong(p++, 9223372036854775807L);
                ps.setObject(p++, BigInteger.ZERO);
                ps.setFloat(p++, -0.5f);
                ps.setDouble(p++, Math.PI);
                ps.setBigDecimal(p++, new BigDecimal("0.0001"));
                ps.setString(p++, "x");
                ps.setString(p++, "quote ' \" \\ end");
                ps.setString(p++, "");
                ps.setBytes(p++, new byte[] {0, 1, 2});
                ps.setBytes(p++, new byte[] {0});
                ps.setBytes(p++, all);
                ps.setDate(p++, java.sql.Date.valueOf("1999-12-31"));
                ps.setTime(p++, new Time(Time.valueOf("12:34:56").getTime() + 789));
                ps.setTimestamp(p++, Timestamp.valueOf("2000-01-01 00:00:00.000001"));
                ps.setTimestamp(p++, Timestamp.valueOf("2038-01-19 03:14:07.999"));
                ps.setShort(p++, (short) 1999);
                ps.setBytes(p++, new byte[] {1});
                ps.setString(p++, "red");
                ps.setString(p++, "[]");
                int n = ps.executeUpdate();
                say("insert bound: affected=" + n + " generated=" + keys(ps) + " warnings=" + warnings(ps));
            }

            result("text select", st.executeQuery("SELECT * FROM types ORDER BY id"));
            try (PreparedStatement ps = conn.prepareStatement("SELECT * FROM types WHERE id >= ? ORDER BY id")) {
                say("prepared select: statement " + ps.getClass().getSimpleName()
                    + " parameters=" + ps.getParameterMetaData().getParameterCount());
                say("prepared select: metadata from the prepare");
                columns(ps.getMetaData());
                ps.setInt(1, 0);
                result("prepared select", ps.executeQuery());
                ps.setInt(1, 3);
                result("prepared select again, id >= 3", ps.executeQuery());
            }

            for (String finish : new String[] {"rollback", "commit"}) {
                conn.setAutoCommit(false);
                try (PreparedStatement ps = conn.prepareStatement(
                        "INSERT INTO types (ti) VALUES (?)", Statement.RETURN_GENERATED_KEYS)) {
                    ps.setInt(1, 1);
                    int n = ps.executeUpdate();
                    say("in transaction: insert affected=" + n + " generated=" + keys(ps));
                }
                say("in transaction: count " + scalar(st, "SELECT COUNT(*) FROM types"));
                if (finish.equals("rollback")) {
                    conn.rollback();
                } else {
                    conn.commit();
                }
                conn.setAutoCommit(true);
                say("after " + finish + ": count " + scalar(st, "SELECT COUNT(*) FROM types"));
            }

            String[][] failing = {
                {"duplicate", "INSERT INTO types (id) VALUES (1)"},
                {"missing table", "SELECT * FROM no_such_table"},
            };
            for (String[] f : failing) {
                try {
                    st.execute(f[1]);
                    say(f[0] + ": no error");
                } catch (SQLException e) {
                    say(f[0] + ": " + error(e));
                }
            }
            say("after errors: " + scalar(st, "SELECT 1"));
            try (PreparedStatement ps = conn.prepareStatement("INSERT INTO types (id) VALUES (?)")) {
                say("duplicate (prepared): statement " + ps.getClass().getSimpleName());
                ps.setInt(1, 1);
                ps.executeUpdate();
                say("duplicate (prepared): no error");
            } catch (SQLException e) {
                say("duplicate (prepared): " + error(e));
            }
            try (PreparedStatement ps = conn.prepareStatement("SELECT ? + 1")) {
                ps.setInt(1, 1);
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    say("after errors (prepared): " + render(rs.getObject(1)));
                }
            }
        }
    }

    // ---- --mode refusal ----

    static void refusal(String db) throws SQLException {
        try (Connection conn = connect(db, true); Statement st = conn.createStatement()) {
            try {
                st.execute("CREATE TABLE refused (a INT)");
                say("create on slave: no error");
            } catch (SQLException e) {
                say("create on slave: " + error(e));
            }
            try (ResultSet rs = st.executeQuery("SELECT COUNT(*) FROM student")) {
                rs.next();
                say("students " + rs.getLong(1));
            }
        }
    }

    // ---- --mode dbeaver ----

    /// The statements of the SQL file named by option `option` (comment lines dropped).
    static String[] sqlFile(String option) throws SQLException {
        String text;
        try {
            text = Files.readString(Path.of(args.get(option)), StandardCharsets.UTF_8);
        } catch (java.io.IOException | NullPointerException e) {
            throw new SQLException("cannot read --" + option + ": " + e);
        }
        return java.util.Arrays.stream(text.replaceAll("(?m)^--.*$", "").split(";"))
            .map(String::strip)
            .filter(s -> !s.isEmpty())
            .toArray(String[]::new);
    }

    static void dbeaver(String db) throws SQLException {
        try (Connection conn = connect("", false); Statement st = conn.createStatement()) {
            update(st, "setup drop database", "DROP DATABASE IF EXISTS " + db);
            update(st, "setup create database", "CREATE DATABASE " + db);
            update(st, "setup use", "USE " + db);
            // The demo's school schema and rows (--school-sql, src/demo/school.sql), in D.
            int n = 0;
            for (String statement : sqlFile("school-sql")) {
                if (statement.startsWith("CREATE DATABASE") || statement.startsWith("USE ")) {
                    continue;
                }
                update(st, "setup statement " + ++n, statement);
            }
        }

        // DBeaver then connects to the database with the driver's defaults (client-side prepares).
        try (Connection conn = connect(db, false)) {
            // Other runs leave their own databases on a shared server: keep only the known ones.
            metadata(conn, db, Set.of(db, "information_schema", "mysql", "performance_schema", "school", "sys"));
            edit(conn);
        }
    }

    /**
     * --mode dbeaver-metadata: what DBeaver reads when it connects to an existing D and a user
     * browses it, without the setup and the edit: it only reads, so a readonly user runs it too.
     * The catalogs are compared as the presence of D and information_schema only: the whole list
     * is printed on a line of its own, starting with "unscoped ", as it differs between a node's
     * user and a backend account with grants on D only.
     */
    static void dbeaverMetadata(String db) throws SQLException {
        try (Connection conn = connect(db, false)) {
            metadata(conn, db, null);
        }
    }

    /** DBeaver's connect-time metadata calls on D; `known`: the catalogs listed (null: see dbeaverMetadata). */
    static void metadata(Connection conn, String db, Set<String> known) throws SQLException {
        say("connection catalog " + conn.getCatalog());
        // Selecting the schema in DBeaver's navigator makes it the active catalog: COM_INIT_DB.
        conn.setCatalog(db);
        say("active catalog " + conn.getCatalog());
        DatabaseMetaData meta = conn.getMetaData();
        say("driver " + meta.getDriverName() + " jdbc " + meta.getJDBCMajorVersion() + "."
            + meta.getJDBCMinorVersion() + " identifier quote " + quote(meta.getIdentifierQuoteString()));

        List<String> catalogs = new ArrayList<>();
        List<String> all = new ArrayList<>();
        try (ResultSet rs = meta.getCatalogs()) {
            say("catalogs: result column " + rs.getMetaData().getColumnLabel(1));
            while (rs.next()) {
                all.add(rs.getString(1));
                if (known != null && known.contains(rs.getString(1))) {
                    catalogs.add(rs.getString(1));
                }
            }
        }
        Collections.sort(catalogs);
        Collections.sort(all);
        say("catalogs: " + db + " present=" + all.contains(db));
        if (known != null) {
            say("catalogs: " + catalogs);
        } else {
            say("catalogs: information_schema present=" + all.contains("information_schema"));
            say("unscoped catalogs: " + all);
        }

        table("tables of " + db, meta.getTables(db, null, "%", null));
        for (String t : SCHOOL_TABLES) {
            table("columns of " + t, meta.getColumns(db, null, t, "%"));
        }
        for (String t : SCHOOL_TABLES) {
            table("primary keys of " + t, meta.getPrimaryKeys(db, null, t));
        }
        table("imported keys of student_course", meta.getImportedKeys(db, null, "student_course"));
        table("exported keys of student", meta.getExportedKeys(db, null, "student"));
        if (known == null) {
            // What DBeaver reads further when a user opens a table's properties.
            table("index info of student_course", meta.getIndexInfo(db, null, "student_course", false, false));
            table("procedures of " + db, meta.getProcedures(db, null, "%"));
            table("functions of " + db, meta.getFunctions(db, null, "%"));
        }

        try (Statement st = conn.createStatement()) {
            result("select * from student", st.executeQuery("SELECT * FROM student"));
        }
    }

    /** A cell edit through an updatable result set, then the table afterwards. */
    static void edit(Connection conn) throws SQLException {
        try (Statement st = conn.createStatement(ResultSet.TYPE_SCROLL_INSENSITIVE,
                ResultSet.CONCUR_UPDATABLE)) {
            try (ResultSet rs = st.executeQuery("SELECT id, name FROM student")) {
                say("updatable: concurrency=" + (rs.getConcurrency() == ResultSet.CONCUR_UPDATABLE
                    ? "CONCUR_UPDATABLE" : "CONCUR_READ_ONLY"));
                columns(rs.getMetaData());
                boolean found = false;
                while (!found && rs.next()) {
                    found = rs.getLong("id") == 2;
                }
                say("updatable: on id 2 " + found + " name " + quote(rs.getString("name")));
                rs.updateString("name", "Alan M. Turing");
                rs.updateRow();
                say("updatable: after updateRow name " + quote(rs.getString("name")));
            }
        }
        try (Statement st = conn.createStatement()) {
            result("student after the edit", st.executeQuery("SELECT * FROM student"));
        }
    }
}
