#ifndef CLUSTERSQL_CSQLITE3_SHIM_H
#define CLUSTERSQL_CSQLITE3_SHIM_H
#include <sqlite3.h>

/* Swift cannot import C variadic functions or the SQLITE_TRANSIENT macro
   (a function pointer made from -1); these wrappers give them fixed types. */

/// sqlite3_config with one int argument (SQLITE_CONFIG_MULTITHREAD and the like take none).
static inline int clustersql_sqlite3_config_noarg(int option) {
    return sqlite3_config(option);
}

/// sqlite3_db_config for the options that take (int, int*): enable/disable flags.
static inline int clustersql_sqlite3_db_config_flag(sqlite3 *db, int option, int value, int *result) {
    return sqlite3_db_config(db, option, value, result);
}

/// The destructor value that makes SQLite copy bound text and blobs.
static inline sqlite3_destructor_type clustersql_sqlite3_transient(void) {
    return SQLITE_TRANSIENT;
}

/// Binds text with SQLITE_TRANSIENT (copied by SQLite before this returns).
static inline int clustersql_sqlite3_bind_text_transient(sqlite3_stmt *stmt, int index, const char *text, int bytes) {
    return sqlite3_bind_text(stmt, index, text, bytes, SQLITE_TRANSIENT);
}

/// Binds a blob with SQLITE_TRANSIENT; a zero-length blob stays a blob, never NULL.
static inline int clustersql_sqlite3_bind_blob_transient(sqlite3_stmt *stmt, int index, const void *bytes, int count) {
    if (count == 0) return sqlite3_bind_zeroblob(stmt, index, 0);
    return sqlite3_bind_blob(stmt, index, bytes, count, SQLITE_TRANSIENT);
}
/// Binds text with SQLITE_STATIC: the bytes must stay alive and unchanged until the statement is reset or rebound.
static inline int clustersql_sqlite3_bind_text_static(sqlite3_stmt *stmt, int index, const char *text, int bytes) {
    return sqlite3_bind_text(stmt, index, text, bytes, SQLITE_STATIC);
}

/// Binds a blob with SQLITE_STATIC (see above); a zero-length blob stays a blob, never NULL.
static inline int clustersql_sqlite3_bind_blob_static(sqlite3_stmt *stmt, int index, const void *bytes, int count) {
    if (count == 0) return sqlite3_bind_zeroblob(stmt, index, 0);
    return sqlite3_bind_blob(stmt, index, bytes, count, SQLITE_STATIC);
}
#endif
