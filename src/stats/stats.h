/* src/stats/stats.h: twemproxy-compatible stats: the JSON snapshot and the stats port. */
#ifndef KM_STATS_H
#define KM_STATS_H

#include <stddef.h>
#include <stdio.h>
#include <time.h>

struct event_base;
struct proxy;
struct stats_server;

/* Listen on addr:port and answer every TCP client with one JSON snapshot, then close.
 * interval_ms is the aggregation interval (-i); snapshots are read live, so it is only
 * recorded. Uptime counts from this call. The port is served on base (the main thread's
 * loop); px's counters are summed over its workers with relaxed loads, so a snapshot
 * never waits for a worker. Stop it (stats_stop) before px is freed. NULL with a
 * message in err on failure. */
struct stats_server *stats_start(struct event_base *base, const struct proxy *px,
                                 const char *addr, int port, int interval_ms,
                                 char *err, size_t errlen);
/* Close the port and every connection still being served; frees s. NULL is a no-op. */
void stats_stop(struct stats_server *s);

/* The snapshot of every counter now, as twemproxy's JSON; malloc'd, NULL when out of
 * memory; *len is its length. It knows no start time: uptime is 0 (the stats port uses
 * stats_json_at with the time of stats_start). */
char *stats_json(const struct proxy *px, size_t *len);
/* As stats_json, with uptime counted from started and timestamp now (unix seconds). */
char *stats_json_at(const struct proxy *px, time_t started, time_t now, size_t *len);

/* -D: each stat's name and description, "pool stats:" then "server stats:", in
 * nutcracker -D's layout (the caller prints the "This is keymux-..." header). */
void stats_describe(FILE *out);

#endif
