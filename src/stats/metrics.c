/* src/stats/metrics.c: the Prometheus exposition and the health answer.
 *
 * A stat of stats.def becomes one metric family: "keymux_" and its name, "server_" put
 * before a server stat's name that lacks it, "_total" after a counter, and a timestamp in
 * seconds ("_seconds"). Its samples carry the label pool, and server for a server stat
 * (the server's name as the JSON has it). The process's own figures come first. Values
 * are the JSON snapshot's (stats/values.c), read live. */
#include "stats/metrics.h"

#include "pool/pool.h"
#include "proxy/proxy.h"
#include "stats/text.h"
#include "stats/values.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

/* "# eof on client connections" -> "Number of eof on client connections" */
static void
help(struct text *b, const char *name, const char *desc)
{
    text_printf(b, "# HELP %s ", name);
    if (strncmp(desc, "# ", 2) == 0) {
        text_puts(b, "Number of ");
        desc += 2;
    }
    text_puts(b, desc);
    text_puts(b, "\n");
}

static void
family(struct text *b, const char *name, const char *type, const char *desc)
{
    help(b, name, desc);
    text_printf(b, "# TYPE %s %s\n", name, type);
}

static void
metric_name(char *out, size_t n, const char *scope, const struct stat_info *si)
{
    const char *suffix = si->kind == STAT_COUNTER ? "_total"
                         : si->kind == STAT_TIMESTAMP ? "_seconds" : "";
    bool add_scope = scope != NULL && strncmp(si->name, scope, strlen(scope)) != 0;

    snprintf(out, n, "keymux_%s%s%s", add_scope ? scope : "", si->name, suffix);
}

static const char *
type_of(const struct stat_info *si)
{
    return si->kind == STAT_COUNTER ? "counter" : "gauge";
}

/* name{pool="P"[,server="S"][,le="L"]}: s NULL for a pool's metric, le NULL but in a
 * histogram's buckets. */
static void
labels(struct text *b, const char *name, const struct pool *p, const struct server *s,
       const char *le)
{
    text_printf(b, "%s{pool=\"", name);
    text_label(b, p->cf->name);
    if (s != NULL) {
        text_puts(b, "\",server=\"");
        text_label(b, s->ident);
    }
    if (le != NULL) {
        text_puts(b, "\",le=\"");
        text_puts(b, le);
    }
    text_puts(b, "\"}");
}

static void
pool_labels(struct text *b, const char *name, const struct pool *p)
{
    labels(b, name, p, NULL, NULL);
}

static void
server_labels(struct text *b, const char *name, const struct server *s)
{
    labels(b, name, s->pool, s, NULL);
}

bool
stats_server_live(const struct server *s)
{
    const struct server_health *h = s->h;

    if (atomic_load_explicit(&h->ejected, memory_order_relaxed))
        return false;
    return atomic_load_explicit(&h->failures, memory_order_relaxed) <
           s->pool->cf->server_failure_limit;
}

static void
process_metrics(struct text *b, const struct proxy *px, time_t started, time_t now)
{
    uint64_t total, curr;

    stats_connections(px, &total, &curr);
    family(b, "keymux_info", "gauge", "keymux's version (the value is always 1)");
    text_puts(b, "keymux_info{version=\"" KM_VERSION "\"} 1\n");
    family(b, "keymux_uptime_seconds", "gauge", "Seconds since keymux started");
    text_printf(b, "keymux_uptime_seconds %lld\n",
                (long long)(now > started ? now - started : 0));
    family(b, "keymux_workers", "gauge", "Worker threads");
    text_printf(b, "keymux_workers %" PRIu32 "\n", px->nworkers);
    family(b, "keymux_connections_total", "counter",
           "Connections accepted and made, listening addresses included (the JSON's "
           "total_connections)");
    text_printf(b, "keymux_connections_total %" PRIu64 "\n", total);
    family(b, "keymux_connections", "gauge",
           "Connections open, listening addresses included (the JSON's curr_connections)");
    text_printf(b, "keymux_connections %" PRIu64 "\n", curr);
    family(b, "keymux_reloads_total", "counter", "Configuration reloads done");
    text_printf(b, "keymux_reloads_total %" PRIu64 "\n",
                atomic_load_explicit(&px->reloads, memory_order_relaxed));
    family(b, "keymux_reload_failures_total", "counter",
           "Configuration reloads that failed (the running configuration was kept)");
    text_printf(b, "keymux_reload_failures_total %" PRIu64 "\n",
                atomic_load_explicit(&px->reload_failures, memory_order_relaxed));
}

/* A histogram summed over the workers: its buckets (not cumulative) and sum. */
struct hist_total {
    uint64_t bucket[KM_HIST_NBOUNDS + 1];
    uint64_t sum_us;
};

static void
hist_sum(struct hist_total *t, const struct km_hist *h)
{
    for (int i = 0; i <= KM_HIST_NBOUNDS; i++)
        t->bucket[i] += ctr_get(&h->bucket[i]);
    t->sum_us += ctr_get(&h->sum_us);
}

/* The samples of histogram name for one pool (s NULL) or server: cumulative buckets
 * with le in seconds, +Inf, _sum in seconds and _count. */
static void
hist_samples(struct text *b, const char *name, const struct pool *p, const struct server *s,
             const struct hist_total *t)
{
    static const uint32_t bound[KM_HIST_NBOUNDS] = { KM_HIST_BOUNDS };
    uint64_t cum = 0;
    char lname[112];

    for (int i = 0; i <= KM_HIST_NBOUNDS; i++) {
        char le[16];
        cum += t->bucket[i];
        if (i < KM_HIST_NBOUNDS)
            snprintf(le, sizeof(le), "%g", bound[i] / 1e6);
        else
            snprintf(le, sizeof(le), "+Inf");
        snprintf(lname, sizeof(lname), "%s_bucket", name);
        labels(b, lname, p, s, le);
        text_printf(b, " %" PRIu64 "\n", cum);
    }
    snprintf(lname, sizeof(lname), "%s_sum", name);
    labels(b, lname, p, s, NULL);
    text_printf(b, " %" PRIu64 ".%06" PRIu64 "\n", t->sum_us / 1000000, t->sum_us % 1000000);
    snprintf(lname, sizeof(lname), "%s_count", name);
    labels(b, lname, p, s, NULL);
    text_printf(b, " %" PRIu64 "\n", cum);
}

static void
histograms(struct text *b, const struct proxy *px)
{
    const char *pname = "keymux_request_duration_seconds";
    const char *sname = "keymux_server_request_duration_seconds";

    family(b, pname, "histogram",
           "Time from a request's last byte read to its reply's last byte written");
    for (uint32_t i = 0; i < px->npools; i++) {
        const struct pool *p = &px->pools[i];
        struct hist_total t = { { 0 }, 0 };
        for (uint32_t w = 0; w < p->state->nworkers; w++)
            hist_sum(&t, &pool_wstats(p, w)->latency);
        hist_samples(b, pname, p, NULL, &t);
    }
    family(b, sname, "histogram",
           "Time from a request's write to a server to its reply read from it");
    for (uint32_t i = 0; i < px->npools; i++) {
        const struct pool *p = &px->pools[i];
        for (uint32_t j = 0; j < p->nservers; j++) {
            const struct server *s = &p->servers[j];
            struct hist_total t = { { 0 }, 0 };
            for (uint32_t w = 0; w < s->state->nworkers; w++)
                hist_sum(&t, &server_wstats(s, w)->latency);
            hist_samples(b, sname, p, s, &t);
        }
    }
}

/* A counter of each server's health (an _Atomic uint64_t at offset off in it). */
static void
server_counter(struct text *b, const struct proxy *px, const char *name, const char *desc,
               size_t off)
{
    family(b, name, "counter", desc);
    for (uint32_t i = 0; i < px->npools; i++) {
        const struct pool *p = &px->pools[i];
        for (uint32_t j = 0; j < p->nservers; j++) {
            const _Atomic uint64_t *v =
                (const _Atomic uint64_t *)((const char *)p->servers[j].h + off);
            server_labels(b, name, &p->servers[j]);
            text_printf(b, " %" PRIu64 "\n", atomic_load_explicit(v, memory_order_relaxed));
        }
    }
}

char *
stats_metrics(const struct proxy *px, time_t started, time_t now, size_t *len)
{
    struct text b = { 0 };
    char name[96];

    process_metrics(&b, px, started, now);
    for (int k = 0; k < PSTAT_N; k++) {
        const struct stat_info *si = &stats_pool_info[k];
        metric_name(name, sizeof(name), NULL, si);
        family(&b, name, type_of(si), si->desc);
        for (uint32_t i = 0; i < px->npools; i++) {
            pool_labels(&b, name, &px->pools[i]);
            text_printf(&b, " %" PRIu64 "\n",
                        stats_pool_value(px, &px->pools[i], (enum pool_stat)k));
        }
    }
    family(&b, "keymux_pool_servers_live", "gauge",
           "Servers of the pool that are live (in the ring, failures under "
           "server_failure_limit)");
    for (uint32_t i = 0; i < px->npools; i++) {
        const struct pool *p = &px->pools[i];
        uint32_t live = 0;
        for (uint32_t j = 0; j < p->nservers; j++)
            live += stats_server_live(&p->servers[j]);
        pool_labels(&b, "keymux_pool_servers_live", p);
        text_printf(&b, " %" PRIu32 "\n", live);
    }
    for (int k = 0; k < SSTAT_N; k++) {
        const struct stat_info *si = &stats_server_info[k];
        metric_name(name, sizeof(name), "server_", si);
        family(&b, name, type_of(si), si->kind == STAT_TIMESTAMP
               ? "Unix time in seconds when the server was last ejected (0: never)"
               : si->desc);
        for (uint32_t i = 0; i < px->npools; i++) {
            const struct pool *p = &px->pools[i];
            for (uint32_t j = 0; j < p->nservers; j++) {
                int64_t v = stats_server_value(px, &p->servers[j], (enum server_stat)k);
                server_labels(&b, name, &p->servers[j]);
                if (si->kind == STAT_TIMESTAMP)
                    text_printf(&b, " %lld.%06lld\n", (long long)(v / 1000000),
                                (long long)(v % 1000000));
                else
                    text_printf(&b, " %" PRId64 "\n", v);
            }
        }
    }
    server_counter(&b, px, "keymux_server_probes_total",
                   "Probes of the ejected server before it may rejoin (auto_eject_hosts)",
                   offsetof(struct server_health, probes));
    server_counter(&b, px, "keymux_server_probe_failures_total",
                   "Probes that failed: refused, reset, a wrong answer or none in time",
                   offsetof(struct server_health, probe_failures));
    family(&b, "keymux_server_up", "gauge",
           "1 when the server is live (in the ring, failures under server_failure_limit)");
    for (uint32_t i = 0; i < px->npools; i++) {
        const struct pool *p = &px->pools[i];
        for (uint32_t j = 0; j < p->nservers; j++) {
            server_labels(&b, "keymux_server_up", &p->servers[j]);
            text_printf(&b, " %d\n", stats_server_live(&p->servers[j]) ? 1 : 0);
        }
    }
    histograms(&b, px);
    return text_take(&b, len);
}

char *
stats_health(const struct proxy *px, bool *ok, size_t *len)
{
    struct text b = { 0 };
    uint32_t down = 0;

    for (uint32_t i = 0; i < px->npools; i++) {
        const struct pool *p = &px->pools[i];
        bool any = false;
        for (uint32_t j = 0; j < p->nservers && !any; j++)
            any = stats_server_live(&p->servers[j]);
        if (any)
            continue;
        text_puts(&b, down++ == 0 ? "no live server in pool " : ", ");
        text_puts(&b, p->cf->name);
    }
    *ok = down == 0;
    text_puts(&b, down == 0 ? "ok\n" : "\n");
    return text_take(&b, len);
}
