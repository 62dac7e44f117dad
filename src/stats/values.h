/* src/stats/values.h: every stat of stats.def, its name, kind and description, and its
 * value now: the workers' own counters summed (relaxed loads of words only their worker
 * writes), or the pool's shared figure. Read by the JSON snapshot and the Prometheus
 * exposition alike, so both always show the same numbers. */
#ifndef KM_STATS_VALUES_H
#define KM_STATS_VALUES_H

#include <stdint.h>

struct pool;
struct proxy;
struct server;

/* The stats of each scope, in stats.def order; the enums make the value getters
 * (values.c) fail to compile (-Wswitch) when a stat is added without a value. */
#define X(scope, name, kind, desc) X_##scope(name, kind, desc)
#define X_POOL(name, kind, desc) PSTAT_##name,
#define X_SERVER(name, kind, desc)
enum pool_stat {
#include "stats/stats.def"
    PSTAT_N
};
#undef X_POOL
#undef X_SERVER
#define X_POOL(name, kind, desc)
#define X_SERVER(name, kind, desc) SSTAT_##name,
enum server_stat {
#include "stats/stats.def"
    SSTAT_N
};
#undef X_POOL
#undef X_SERVER
#undef X

enum stat_kind { STAT_COUNTER, STAT_GAUGE, STAT_TIMESTAMP };

struct stat_info {
    const char *name;          /* JSON key and -D name */
    const char *desc;          /* -D description */
    enum stat_kind kind;
};

extern const struct stat_info stats_pool_info[PSTAT_N];
extern const struct stat_info stats_server_info[SSTAT_N];

/* The process's connections, listening addresses included: made or accepted so far
 * (total_connections) and open now (curr_connections). */
void stats_connections(const struct proxy *px, uint64_t *total, uint64_t *curr);
/* A pool's value. */
uint64_t stats_pool_value(const struct proxy *px, const struct pool *p, enum pool_stat id);
/* A server's value; signed: server_ejected_at is a timestamp (unix us, 0 = never). */
int64_t stats_server_value(const struct proxy *px, const struct server *s,
                           enum server_stat id);

#endif
