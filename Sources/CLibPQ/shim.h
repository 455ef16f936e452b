#ifndef CLUSTERSQL_CLIBPQ_SHIM_H
#define CLUSTERSQL_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
