/* src/stats/stats.h: twemproxy-compatible stats: the JSON snapshot and the stats port. */
#ifndef KM_STATS_H
#define KM_STATS_H

#include <stddef.h>
#include <stdio.h>

struct worker;
struct stats_server;

/* Listen on addr:port and answer every TCP client with one JSON snapshot, then close.
 * interval_ms is the aggregation interval (-i). NULL with a message in err on failure. */
struct stats_server *stats_start(struct worker *w, const char *addr, int port, int interval_ms,
                                 char *err, size_t errlen);
void stats_stop(struct stats_server *s);

/* The snapshot of every counter now, as twemproxy's JSON; malloc'd, NULL when out of
 * memory; *len is its length. */
char *stats_json(struct worker *w, size_t *len);

/* -D: each stat's name and description. */
void stats_describe(FILE *out);

#endif
