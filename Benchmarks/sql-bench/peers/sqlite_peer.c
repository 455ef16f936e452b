/* The C side of sql-bench's SQLite rows: the same work as the Swift side, straight
 * through libsqlite3, with the same pragmas as SQLiteDriver's defaults (WAL,
 * synchronous=NORMAL, foreign keys on) and a prepared statement reused per row.
 *
 *   sqlite_peer FILE ROWS insert   rows (id, 'row') inserted in one transaction
 *   sqlite_peer FILE ROWS select   every row of t read back, each column fetched
 *
 * Prints "seconds=<wall time of the work alone>" (opening the file excluded). */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void check(int rc, sqlite3 *db, const char *what) {
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        fprintf(stderr, "%s: %s\n", what, sqlite3_errmsg(db));
        exit(1);
    }
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: sqlite_peer FILE ROWS insert|select\n");
        return 2;
    }
    int rows = atoi(argv[2]);
    sqlite3 *db;
    check(sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL), db, "open");
    check(sqlite3_exec(db, "PRAGMA journal_mode=wal; PRAGMA synchronous=normal; PRAGMA foreign_keys=ON", NULL, NULL, NULL), db, "pragmas");
    sqlite3_stmt *statement;
    double started, finished;
    if (strcmp(argv[3], "insert") == 0) {
        check(sqlite3_exec(db, "DROP TABLE IF EXISTS t; CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)", NULL, NULL, NULL), db, "create");
        started = now();
        check(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), db, "begin");
        check(sqlite3_prepare_v3(db, "INSERT INTO t (id, name) VALUES (?, ?)", -1, SQLITE_PREPARE_PERSISTENT, &statement, NULL), db, "prepare");
        for (int i = 1; i <= rows; i++) {
            sqlite3_bind_int64(statement, 1, i);
            sqlite3_bind_text(statement, 2, "row", 3, SQLITE_STATIC);
            check(sqlite3_step(statement), db, "insert");
            sqlite3_reset(statement);
        }
        sqlite3_finalize(statement);
        check(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), db, "commit");
        finished = now();
    } else {
        long long sum = 0;
        started = now();
        check(sqlite3_prepare_v3(db, "SELECT id, name FROM t", -1, 0, &statement, NULL), db, "prepare");
        int rc;
        while ((rc = sqlite3_step(statement)) == SQLITE_ROW) {
            sum += sqlite3_column_int64(statement, 0);
            sum += sqlite3_column_bytes(statement, 1) + (sqlite3_column_text(statement, 1) != NULL);
        }
        check(rc, db, "select");
        sqlite3_finalize(statement);
        finished = now();
        if (sum == 0 && rows > 0) fprintf(stderr, "no rows read\n");
    }
    sqlite3_close(db);
    printf("seconds=%.6f\n", finished - started);
    return 0;
}
