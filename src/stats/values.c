/* src/stats/values.c: each stat's description and its value now (see values.h). */
#include "stats/values.h"

#include "pool/pool.h"
#include "proxy/proxy.h"

#include <stdatomic.h>

#define X(scope, name, kind, desc) X_##scope(name, kind, desc)
#define X_POOL(name, kind, desc) { #name, desc, STAT_##kind },
#define X_SERVER(name, kind, desc)
const struct stat_info stats_pool_info[PSTAT_N] = {
#include "stats/stats.def"
};
#undef X_POOL
#undef X_SERVER
#define X_POOL(name, kind, desc)
#define X_SERVER(name, kind, desc) { #name, desc, STAT_##kind },
const struct stat_info stats_server_info[SSTAT_N] = {
#include "stats/stats.def"
};
#undef X_POOL
#undef X_SERVER
#undef X

/* A pool's value: the workers' counters summed, or the shared figure. */
uint64_t
stats_pool_value(const struct proxy *px, const struct pool *p, enum pool_stat id)
{
    uint64_t sum = 0;

    switch (id) {
    case PSTAT_client_connections:
        return atomic_load_explicit(&p->state->nclients, memory_order_relaxed);
    case PSTAT_server_ejects:
        return atomic_load_explicit(&p->state->server_ejects, memory_order_relaxed);
    default:
        break;
    }
    for (uint32_t w = 0; w < p->state->nworkers; w++) {
        const struct pool_stats *st = pool_wstats(p, w);
        switch (id) {
        case PSTAT_client_eof:      sum += ctr_get(&st->client_eof); break;
        case PSTAT_client_err:      sum += ctr_get(&st->client_err); break;
        case PSTAT_forward_error:   sum += ctr_get(&st->forward_error); break;
        case PSTAT_fragments:       sum += ctr_get(&st->fragments); break;
        case PSTAT_client_connections:
        case PSTAT_server_ejects:
        case PSTAT_N:               break;
        }
    }
    return sum;
}

/* A server's value, summed over the workers. */
int64_t
stats_server_value(const struct proxy *px, const struct server *s, enum server_stat id)
{
    uint64_t sum = 0;

    if (id == SSTAT_server_ejected_at)
        return atomic_load_explicit(&s->h->ejected_at_us, memory_order_relaxed);
    for (uint32_t w = 0; w < s->state->nworkers; w++) {
        const struct server_stats *st = server_wstats(s, w);
        switch (id) {
        case SSTAT_server_eof:          sum += ctr_get(&st->server_eof); break;
        case SSTAT_server_err:          sum += ctr_get(&st->server_err); break;
        case SSTAT_server_timedout:     sum += ctr_get(&st->server_timedout); break;
        case SSTAT_server_connections:  sum += ctr_get(&st->connections); break;
        case SSTAT_requests:            sum += ctr_get(&st->requests); break;
        case SSTAT_request_bytes:       sum += ctr_get(&st->request_bytes); break;
        case SSTAT_responses:           sum += ctr_get(&st->responses); break;
        case SSTAT_response_bytes:      sum += ctr_get(&st->response_bytes); break;
        case SSTAT_in_queue:            sum += ctr_get(&st->in_queue); break;
        case SSTAT_in_queue_bytes:      sum += ctr_get(&st->in_queue_bytes); break;
        case SSTAT_out_queue:           sum += ctr_get(&st->out_queue); break;
        case SSTAT_out_queue_bytes:     sum += ctr_get(&st->out_queue_bytes); break;
        case SSTAT_server_ejected_at:
        case SSTAT_N:                   break;
        }
    }
    return (int64_t)sum;
}

void
stats_connections(const struct proxy *px, uint64_t *total, uint64_t *curr)
{
    *total = *curr = px->nlisteners;
    for (uint32_t i = 0; i < px->nworkers; i++) {
        *total += ctr_get(&px->workers[i].total_connections);
        *curr += ctr_get(&px->workers[i].curr_connections);
    }
}
