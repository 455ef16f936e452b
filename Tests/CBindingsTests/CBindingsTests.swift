import CLibPQ
import CMariaDB
import CSQLite3
import Testing

/// The three C client libraries link and answer, before any backend uses them.
@Suite("C bindings", .timeLimit(.minutes(2)))
struct CBindingsTests {
    @Test("libsqlite3 links, is thread-safe, and runs a statement through the shims")
    func sqlite() {
        #expect(sqlite3_libversion_number() >= 3_031_000)
        #expect(sqlite3_threadsafe() != 0)
        var db: OpaquePointer?
        #expect(sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nil) == SQLITE_OK)
        defer { sqlite3_close_v2(db) }
        var flag: Int32 = -1
        #expect(clustersql_sqlite3_db_config_flag(db, SQLITE_DBCONFIG_ENABLE_FKEY, 1, &flag) == SQLITE_OK)
        #expect(flag == 1)
        var statement: OpaquePointer?
        #expect(sqlite3_prepare_v2(db, "SELECT length(?), typeof(?)", -1, &statement, nil) == SQLITE_OK)
        defer { sqlite3_finalize(statement) }
        #expect(clustersql_sqlite3_bind_text_transient(statement, 1, "héllo", -1) == SQLITE_OK)
        #expect(clustersql_sqlite3_bind_blob_transient(statement, 2, nil, 0) == SQLITE_OK)
        #expect(sqlite3_step(statement) == SQLITE_ROW)
        #expect(sqlite3_column_int(statement, 0) == 5)
        #expect(String(cString: sqlite3_column_text(statement, 1)) == "blob")
    }

    @Test("libpq links, is thread-safe, and parses connection options without a server")
    func libpq() {
        #expect(PQlibVersion() >= 100_000)
        #expect(PQisthreadsafe() == 1)
        var error: UnsafeMutablePointer<CChar>?
        let options = PQconninfoParse("host=127.0.0.1 port=5433 dbname=app", &error)
        #expect(options != nil)
        PQconninfoFree(options)
        let bad = PQconninfoParse("host=127.0.0.1 nonsense_key=1", &error)
        #expect(bad == nil)
        #expect(error.map { String(cString: $0).contains("nonsense_key") } == true)
        PQfreemem(error)
    }

    @Test("MariaDB Connector/C links and initialises")
    func mariadb() {
        #expect(mysql_get_client_version() >= 30_000)
        #expect(mysql_thread_safe() == 1)
        let handle = mysql_init(nil)
        #expect(handle != nil)
        mysql_close(handle)
    }
}
