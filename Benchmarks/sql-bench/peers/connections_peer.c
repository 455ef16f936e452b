/* The C side of sql-bench's memory row: the client memory one open connection costs,
 * holding N connections of the same C client ours uses. One connection is opened
 * first (so both sides have loaded and initialized their libraries), then the
 * resident set is read, N more are opened and held, and it is read again.
 *
 *   connections_peer postgres "DSN" N
 *   connections_peer mariadb HOST PORT USER PASSWORD DATABASE N
 *
 * Prints "kib_per_connection=<(RSS after - RSS before) / N, in KiB>". */
#include <libpq-fe.h>
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long resident_kib(void) {
    long pages = 0, resident = 0;
    FILE *statm = fopen("/proc/self/statm", "r");
    if (!statm || fscanf(statm, "%ld %ld", &pages, &resident) != 2) exit(1);
    fclose(statm);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void *open_postgres(const char *dsn) {
    PGconn *conn = PQconnectdb(dsn);
    PGresult *r = PQexec(conn, "SELECT 1");
    if (PQstatus(conn) != CONNECTION_OK || PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "postgres: %s\n", PQerrorMessage(conn));
        exit(1);
    }
    PQclear(r);
    return conn;
}

static void *open_mariadb(char **a) {
    MYSQL *mysql = mysql_init(NULL);
    unsigned int tcp = MYSQL_PROTOCOL_TCP;
    mysql_options(mysql, MYSQL_OPT_PROTOCOL, &tcp);
    if (!mysql_real_connect(mysql, a[0], a[2], a[3], a[4], (unsigned)atoi(a[1]), NULL, CLIENT_FOUND_ROWS) ||
        mysql_query(mysql, "SELECT 1")) {
        fprintf(stderr, "mariadb: %s\n", mysql_error(mysql));
        exit(1);
    }
    mysql_free_result(mysql_store_result(mysql));
    return mysql;
}

int main(int argc, char **argv) {
    int postgres = argc == 4 && strcmp(argv[1], "postgres") == 0;
    if (!postgres && !(argc == 8 && strcmp(argv[1], "mariadb") == 0)) {
        fprintf(stderr, "usage: connections_peer postgres DSN N | mariadb HOST PORT USER PASSWORD DATABASE N\n");
        return 2;
    }
    int n = atoi(argv[argc - 1]);
    void **held = calloc(n + 1, sizeof *held);
    held[n] = postgres ? open_postgres(argv[2]) : open_mariadb(argv + 2);
    long before = resident_kib();
    for (int i = 0; i < n; i++) held[i] = postgres ? open_postgres(argv[2]) : open_mariadb(argv + 2);
    long after = resident_kib();
    printf("kib_per_connection=%.1f\n", (double)(after - before) / n);
    return 0;
}
