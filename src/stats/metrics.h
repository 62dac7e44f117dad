/* src/stats/metrics.h: the Prometheus text exposition (format 0.0.4) of every stat, and
 * the health answer, both built from the same values as the JSON snapshot. */
#ifndef KM_STATS_METRICS_H
#define KM_STATS_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct proxy;
struct server;

/* Every stat as a metric family (see docs/METRICS.md for the names): malloc'd, NULL
 * when out of memory; *len its length. Uptime counts from started. */
char *stats_metrics(const struct proxy *px, time_t started, time_t now, size_t *len);

/* Whether s is live: in its pool's ring, and its consecutive failures (requests and
 * connects that failed since its last good reply) under server_failure_limit. */
bool stats_server_live(const struct server *s);

/* The health of px's pools: *ok when every pool has a live server; the text names the
 * pools without one (malloc'd, NULL when out of memory). */
char *stats_health(const struct proxy *px, bool *ok, size_t *len);

#endif
