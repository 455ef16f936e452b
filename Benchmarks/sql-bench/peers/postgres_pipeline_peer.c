/* The C side of sql-bench's PostgreSQL batch row: ROWS inserts of (id, 'row') in one
 * transaction through libpq's pipeline mode, shaped like PostgresConnection's batch so
 * the comparison is of the code, not the algorithm: a named prepared statement, text
 * parameters, non-blocking mode, at most 1024 rows in flight, a flush request every 128,
 * one sync at the end, every result read and checked.
 *
 *   postgres_pipeline_peer "DSN" ROWS      (the table t must exist and be empty)
 *
 * Prints "seconds=<wall time from BEGIN to COMMIT>". */
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void fail(PGconn *conn, const char *what) {
    fprintf(stderr, "%s: %s\n", what, PQerrorMessage(conn));
    exit(1);
}

static void run(PGconn *conn, const char *sql) {
    PGresult *r = PQexec(conn, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) fail(conn, sql);
    PQclear(r);
}

static void wait_for(PGconn *conn, short events) {
    struct pollfd p = {.fd = PQsocket(conn), .events = events};
    if (poll(&p, 1, -1) < 0) fail(conn, "poll");
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: postgres_pipeline_peer DSN ROWS\n");
        return 2;
    }
    int rows = atoi(argv[2]);
    PGconn *conn = PQconnectdb(argv[1]);
    if (PQstatus(conn) != CONNECTION_OK) fail(conn, "connect");
    double started = now();
    run(conn, "BEGIN");
    PGresult *prepared = PQprepare(conn, "insert_row", "INSERT INTO t (id, name) VALUES ($1, $2)", 0, NULL);
    if (PQresultStatus(prepared) != PGRES_COMMAND_OK) fail(conn, "prepare");
    PQclear(prepared);
    PQsetnonblocking(conn, 1);
    if (!PQenterPipelineMode(conn)) fail(conn, "pipeline");
    int sent = 0, answered = 0, synced = 0, done = 0, seen = 0;
    char id[24];
    while (!done) {
        while (!synced && sent < rows && sent - answered < 1024) {
            snprintf(id, sizeof id, "%d", sent + 1);
            const char *values[2] = {id, "row"};
            if (!PQsendQueryPrepared(conn, "insert_row", 2, values, NULL, NULL, 0)) fail(conn, "send");
            sent++;
            if (sent == rows) {
                if (!PQpipelineSync(conn)) fail(conn, "sync");
                synced = 1;
            } else if (sent % 128 == 0 && !PQsendFlushRequest(conn)) {
                fail(conn, "flush request");
            }
        }
        int flushed = PQflush(conn);
        if (flushed < 0) fail(conn, "flush");
        if (flushed == 1) {
            wait_for(conn, POLLOUT);
            continue;
        }
        if (PQisBusy(conn)) {
            wait_for(conn, POLLIN);
            if (!PQconsumeInput(conn)) fail(conn, "read");
            continue;
        }
        PGresult *r = PQgetResult(conn);
        if (r == NULL) {
            if (seen) {
                answered++;
                seen = 0;
            } else if (answered < sent) {
                wait_for(conn, POLLIN);
                if (!PQconsumeInput(conn)) fail(conn, "read");
            }
            continue;
        }
        switch (PQresultStatus(r)) {
        case PGRES_PIPELINE_SYNC: done = 1; break;
        case PGRES_COMMAND_OK: seen = 1; break;
        default: fail(conn, "insert");
        }
        PQclear(r);
    }
    if (!PQexitPipelineMode(conn)) fail(conn, "exit pipeline");
    PQsetnonblocking(conn, 0);
    run(conn, "COMMIT");
    printf("seconds=%.6f\n", now() - started);
    PQfinish(conn);
    return 0;
}
