#ifndef CLUSTERSQL_CMARIADB_SHIM_H
#define CLUSTERSQL_CMARIADB_SHIM_H
#include <mysql.h>
#include <errmsg.h>
#include <mysqld_error.h>

/// Client flags whose macros Swift cannot import (shifted unsigned longs). Several statements
/// in one text only when asked for (clustersql_mysql_multi_statements, or a script run on purpose).
static const unsigned long clustersql_mysql_client_flags = CLIENT_FOUND_ROWS | CLIENT_MULTI_RESULTS;
static const unsigned long clustersql_mysql_multi_statements = CLIENT_MULTI_STATEMENTS;

/// The binary character set number: a string column with it holds bytes.
static const unsigned int clustersql_mysql_binary_charset = 63;
#endif
