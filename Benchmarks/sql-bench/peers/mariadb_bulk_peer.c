/* The C side of sql-bench's MariaDB batch row: ROWS inserts of (id, 'row') in one
 * transaction through Connector/C's bulk execution, as MariaDBConnection's batch does
 * it: one prepared statement, column-wise arrays (int64 ids, string pointers with
 * lengths, an indicator each), 10,000 rows to an execution, every execution checked.
 *
 *   mariadb_bulk_peer HOST PORT USER PASSWORD DATABASE ROWS   (the table t must exist and be empty)
 *
 * Prints "seconds=<wall time from BEGIN to COMMIT>". */
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: mariadb_bulk_peer HOST PORT USER PASSWORD DATABASE ROWS\n");
        return 2;
    }
    int rows = atoi(argv[6]);
    MYSQL *mysql = mysql_init(NULL);
    unsigned int tcp = MYSQL_PROTOCOL_TCP;
    mysql_options(mysql, MYSQL_OPT_PROTOCOL, &tcp);
    if (!mysql_real_connect(mysql, argv[1], argv[3], argv[4], argv[5], (unsigned)atoi(argv[2]), NULL, CLIENT_FOUND_ROWS)) {
        fprintf(stderr, "connect: %s\n", mysql_error(mysql));
        return 1;
    }
    enum { CHUNK = 10000 };
    long long *ids = malloc(sizeof *ids * CHUNK);
    char **names = malloc(sizeof *names * CHUNK);
    unsigned long *lengths = malloc(sizeof *lengths * CHUNK);
    char *id_indicators = malloc(CHUNK), *name_indicators = malloc(CHUNK);
    double started = now();
    if (mysql_query(mysql, "BEGIN")) { fprintf(stderr, "begin: %s\n", mysql_error(mysql)); return 1; }
    MYSQL_STMT *statement = mysql_stmt_init(mysql);
    const char *sql = "INSERT INTO t (id, name) VALUES (?, ?)";
    if (mysql_stmt_prepare(statement, sql, strlen(sql))) { fprintf(stderr, "prepare: %s\n", mysql_stmt_error(statement)); return 1; }
    for (int start = 0; start < rows; start += CHUNK) {
        unsigned int count = rows - start < CHUNK ? rows - start : CHUNK;
        for (unsigned int i = 0; i < count; i++) {
            ids[i] = start + i + 1;
            names[i] = "row";
            lengths[i] = 3;
            id_indicators[i] = STMT_INDICATOR_NONE;
            name_indicators[i] = STMT_INDICATOR_NONE;
        }
        MYSQL_BIND binds[2];
        memset(binds, 0, sizeof binds);
        binds[0].buffer_type = MYSQL_TYPE_LONGLONG;
        binds[0].buffer = ids;
        binds[0].u.indicator = id_indicators;
        binds[1].buffer_type = MYSQL_TYPE_STRING;
        binds[1].buffer = names;
        binds[1].length = lengths;
        binds[1].u.indicator = name_indicators;
        mysql_stmt_attr_set(statement, STMT_ATTR_ARRAY_SIZE, &count);
        if (mysql_stmt_bind_param(statement, binds) || mysql_stmt_execute(statement)) {
            fprintf(stderr, "insert: %s\n", mysql_stmt_error(statement));
            return 1;
        }
        if (mysql_stmt_affected_rows(statement) != count) { fprintf(stderr, "insert: wrong count\n"); return 1; }
    }
    mysql_stmt_close(statement);
    if (mysql_query(mysql, "COMMIT")) { fprintf(stderr, "commit: %s\n", mysql_error(mysql)); return 1; }
    printf("seconds=%.6f\n", now() - started);
    mysql_close(mysql);
    return 0;
}
