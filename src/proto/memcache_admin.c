/* src/proto/memcache_admin.c: memcached's commands about the server rather than a key, as a proxy answers them (stats, flush_all's merge), and the counters stats shows.
 *
 * What the proxy answers, and why (clients read these replies as memcached's own):
 *
 *   stats              the proxy's own figures in memcached's format, "STAT <name> <value>"
 *                      lines then END: pid, uptime, time, version (keymux's), pointer_size,
 *                      curr_connections, total_connections, the command counters (cmd_get,
 *                      cmd_set, cmd_flush, cmd_touch, get_hits, get_misses, touch_hits,
 *                      touch_misses, counted as memcached 1.6 counts them), threads, and three
 *                      of keymux's own: pool_clients, pool_servers, pool_servers_live. Every
 *                      value is one token without spaces: the npm `memcached` client keeps
 *                      only the third token of a STAT line, python-memcache (get_stats) splits
 *                      each line in three at spaces, pymemcache (stats()) converts each value
 *                      by its name (version stays bytes, the rest become numbers).
 *   stats reset        the pool's counters count from 0 again, in every worker, and the
 *                      answer is RESET, as memcached resets its own; nothing is sent to the
 *                      servers.
 *   stats items, slabs, sizes, settings, conns, extstore, cachedump, detail
 *                      END: these describe a server's storage and connections, which the proxy
 *                      does not have; an empty list is what every client reads without error
 *                      (npm `memcached` parses `stats items/slabs/settings` as STAT lines up to
 *                      END; python-memcache fails on any line that is not "STAT a b"). The
 *                      servers' own figures are one direct connection away.
 *   stats <other>      ERROR, memcached's reply to a subcommand it does not know (libmemcached's
 *                      memccapable checks that "stats noreply" gets an error).
 *   flush_all [delay] [noreply]
 *                      sent as written to every server of the pool (PLAN_ALL); OK once all of
 *                      them said OK, else "SERVER_ERROR flush_all failed on server <name>:
 *                      <reason>[; server <name>: <reason>]...", so the client knows which
 *                      servers still hold their data. pymemcache sends "flush_all 0 [noreply]"
 *                      and wants OK; python-memcache sends "flush_all" to each server and reads
 *                      one line; npm `memcached` sends "flush_all" and treats SERVER_ERROR as a
 *                      server problem (it retries the server and may mark it dead).
 * verbosity is answered OK in memcache.c (there is no level to set on a pool of servers).
 */
#include "proto/memcache_admin.h"

#include "core/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- counters ------------------------------------------------------------------------ */

void
memc_count_request(struct proto_counts *c, enum mc_cmd cmd, uint32_t nkeys)
{
    if (c == NULL)
        return;
    if (mc_cmd_has_data(cmd)) {
        ctr_add(&c->cmd_set, 1);   /* memcached counts every storage command there */
        return;
    }
    switch (cmd) {
    case MC_GET:
    case MC_GETS:
    case MC_MG:
        ctr_add(&c->cmd_get, nkeys);
        break;
    case MC_GAT:
    case MC_GATS:
    case MC_TOUCH:
        /* memcached 1.6.18 counts a gat key under cmd_touch, not cmd_get */
        ctr_add(&c->cmd_touch, nkeys);
        break;
    case MC_FLUSH_ALL:
        ctr_add(&c->cmd_flush, 1);
        break;
    default:
        break;
    }
}

void
memc_count_found(struct proto_counts *c, enum mc_cmd cmd, uint64_t hits, uint64_t misses)
{
    if (c == NULL)
        return;
    if (cmd == MC_GAT || cmd == MC_GATS || cmd == MC_TOUCH) {
        ctr_add(&c->touch_hits, hits);
        ctr_add(&c->touch_misses, misses);
    } else {
        ctr_add(&c->get_hits, hits);
        ctr_add(&c->get_misses, misses);
    }
}

void
memc_count_reply(struct proto_counts *c, const struct msg *req, const union parser *p)
{
    const struct mc_rsp_parser *rs = &p->ms;
    enum mc_cmd cmd = MEMC_CMD(req->cmd);

    if (rs->is_error)
        return;
    switch (cmd) {
    case MC_GET:
    case MC_GETS:
    case MC_GAT:
    case MC_GATS: {
        /* the keys asked for: the whole range (a multi-get whose keys all live on one
         * server goes whole too); its tokens may be gone, the range stays */
        uint64_t nkeys = req->key_step > 0 ? (req->key_last - req->key_first) / req->key_step + 1 : 0;
        uint64_t hits = KM_MIN((uint64_t)rs->nitems, nkeys);
        if (rs->kind == MC_RSP_VALUE_END)
            memc_count_found(c, cmd, hits, nkeys - hits);
        break;
    }
    case MC_MG:
        /* HD or VA: found; EN, or nothing at all from a quiet mg (MN): not found */
        if (rs->word_id == MC_RW_VA || rs->word_id == MC_RW_HD)
            memc_count_found(c, cmd, 1, 0);
        else if (rs->word_id == MC_RW_EN || rs->word_id == MC_RW_MN)
            memc_count_found(c, cmd, 0, 1);
        break;
    case MC_TOUCH:
        if (rs->word_id == MC_RW_TOUCHED)
            memc_count_found(c, cmd, 1, 0);
        else if (rs->word_id == MC_RW_NOT_FOUND)
            memc_count_found(c, cmd, 0, 1);
        break;
    default:
        break;
    }
}

/* ---- stats --------------------------------------------------------------------------- */

/* A text being written into a fixed buffer; once it is full, the rest is dropped. */
struct text {
    char *buf;
    size_t cap, n;
    bool cut;                /* something did not fit */
};

static void text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
text_add(struct text *t, const char *fmt, ...)
{
    va_list ap;
    int k;

    if (t->cut)
        return;
    va_start(ap, fmt);
    k = vsnprintf(t->buf + t->n, t->cap - t->n, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= t->cap - t->n) {
        t->cut = true;
        t->buf[t->n] = '\0';   /* what fitted of this piece is dropped */
        return;
    }
    t->n += (size_t)k;
}

static void
stat_u(struct text *t, const char *name, uint64_t v)
{
    text_add(t, "STAT %s %llu\r\n", name, (unsigned long long)v);
}

static void
stat_i(struct text *t, const char *name, int64_t v)
{
    text_add(t, "STAT %s %lld\r\n", name, (long long)v);
}

enum { SUB_NONE, SUB_RESET, SUB_EMPTY, SUB_UNKNOWN };

/* Subcommands memcached knows; any other is answered ERROR, as memcached does. */
static const struct {
    const char *name;
    uint8_t kind;
} stats_subs[] = {
    { "reset",     SUB_RESET },
    { "items",     SUB_EMPTY },
    { "slabs",     SUB_EMPTY },
    { "sizes",     SUB_EMPTY },
    { "settings",  SUB_EMPTY },
    { "conns",     SUB_EMPTY },
    { "extstore",  SUB_EMPTY },
    { "cachedump", SUB_EMPTY },
    { "detail",    SUB_EMPTY },
};

/* Which subcommand the request's first argument names. */
static uint8_t
stats_sub(const struct msg *m, const struct mc_req_parser *q)
{
    char w[16];

    if (q->arg.len == 0)
        return SUB_NONE;
    if (q->arg.len >= sizeof(w) || span_copy(&m->raw, q->arg.pos, w, q->arg.len) != q->arg.len)
        return SUB_UNKNOWN;
    for (size_t i = 0; i < KM_ARRAY_LEN(stats_subs); i++) {
        if (strlen(stats_subs[i].name) == q->arg.len && memcmp(stats_subs[i].name, w, q->arg.len) == 0)
            return stats_subs[i].kind;
    }
    return SUB_UNKNOWN;
}

/* The general stats: the proxy's figures where there is a proxy, the counters always
 * (this worker's when there is no proxy to sum them). */
static void
stats_general(struct text *t, const struct proto_ctx *ctx)
{
    struct proto_self self;
    struct proto_count_values mine = { 0 };
    const struct proto_count_values *c = NULL;
    bool have = ctx->self != NULL;

    if (ctx->counts != NULL) {
        proto_counts_add(&mine, ctx->counts);
        c = &mine;
    }
    if (have) {
        ctx->self(ctx->self_arg, &self);
        c = &self.counts;
        stat_i(t, "pid", self.pid);
        stat_i(t, "uptime", self.uptime_s);
        stat_i(t, "time", self.now_s);
    }
    text_add(t, "STAT version %s\r\n", KM_VERSION);
    stat_u(t, "pointer_size", 8 * sizeof(void *));
    if (have) {
        stat_u(t, "curr_connections", self.curr_connections);
        stat_u(t, "total_connections", self.total_connections);
        stat_u(t, "config_generation", self.config_gen);
        stat_u(t, "reloads", self.reloads);
        stat_u(t, "reload_failures", self.reload_failures);
    }
    if (c != NULL) {
        stat_u(t, "cmd_get", c->cmd_get);
        stat_u(t, "cmd_set", c->cmd_set);
        stat_u(t, "cmd_flush", c->cmd_flush);
        stat_u(t, "cmd_touch", c->cmd_touch);
        stat_u(t, "get_hits", c->get_hits);
        stat_u(t, "get_misses", c->get_misses);
        stat_u(t, "touch_hits", c->touch_hits);
        stat_u(t, "touch_misses", c->touch_misses);
    }
    if (have) {
        stat_u(t, "threads", self.workers);
        stat_u(t, "pool_clients", self.pool_clients);
        stat_u(t, "pool_servers", self.nservers);
        stat_u(t, "pool_servers_live", self.nlive);
    }
}

const char *
memc_stats_reply(char *buf, size_t cap, const struct msg *m, const struct mc_req_parser *q,
                 const struct proto_ctx *ctx, bool *is_error)
{
    struct text t = { buf, cap, 0, false };

    ASSERT(cap >= MEMC_STATS_MAX);
    buf[0] = '\0';
    *is_error = false;
    switch (stats_sub(m, q)) {
    case SUB_NONE:
        stats_general(&t, ctx);
        break;
    case SUB_RESET:
        if (ctx->counts_reset != NULL)
            ctx->counts_reset(ctx->self_arg);
        else if (ctx->counts != NULL)
            proto_counts_clear(ctx->counts);
        return "RESET\r\n";
    case SUB_EMPTY:
        break;
    default:
        *is_error = true;
        return "ERROR\r\n";
    }
    /* the figures above take well under MEMC_STATS_MAX; END always fits */
    ASSERT(!t.cut && t.n + 5 < cap);
    memcpy(buf + t.n, "END\r\n", 6);
    return buf;
}

/* ---- flush_all ----------------------------------------------------------------------- */

/* Longest reason quoted for one server, and longest error line (the reasons of many
 * failed servers are cut there, with "..."). */
#define WHY_MAX 160
#define FLUSH_ERR_MAX 1024

/* The reply r (an error) as one line without its CRLF and without the "SERVER_ERROR "
 * that the proxy's own line already says, into why[0..WHY_MAX). */
static void
reply_reason(const struct msg *r, char *why)
{
    size_t n = 0;

    if (r->nout > 0) {
        /* made here (the server failed): the line is in out */
        for (uint32_t i = 0; i < r->nout && n < WHY_MAX - 1; i++)
            n += span_copy(&r->out[i], 0, why + n, (size_t)KM_MIN(r->out[i].len, (uint64_t)(WHY_MAX - 1 - n)));
    } else {
        n = span_copy(&r->raw, 0, why, (size_t)KM_MIN(r->raw.len, (uint64_t)(WHY_MAX - 1)));
    }
    while (n > 0 && (why[n - 1] == '\n' || why[n - 1] == '\r'))
        n--;
    why[n] = '\0';
    static const char se[] = "SERVER_ERROR ";
    if (strncmp(why, se, sizeof(se) - 1) == 0)
        memmove(why, why + sizeof(se) - 1, n - (sizeof(se) - 1) + 1);
}

int
memc_merge_flush(struct msg *parent, const struct proto_ctx *ctx)
{
    char line[FLUSH_ERR_MAX];
    struct text t = { line, sizeof(line) - 4, 0, false };   /* room kept for "..." */
    uint32_t nbad = 0;
    struct msg *r;

    for (uint32_t i = 0; i < parent->nfrag; i++) {
        const struct msg *f = parent->frags[i];
        char why[WHY_MAX], num[16];
        const char *name = NULL;

        if (f->rsp == NULL && f->noreply)
            continue;             /* sent with noreply: nothing comes back */
        if (f->rsp != NULL && !f->rsp->is_error)
            continue;             /* OK: the tokenizer takes nothing else for flush_all */
        if (f->rsp == NULL)
            snprintf(why, sizeof(why), "no reply from server");
        else
            reply_reason(f->rsp, why);
        if (ctx->server_name != NULL && f->server >= 0)
            name = ctx->server_name(ctx->self_arg, (uint32_t)f->server);
        if (name == NULL) {
            snprintf(num, sizeof(num), "#%d", (int)f->server);
            name = num;
        }
        text_add(&t, "%s server %s: %s", nbad == 0 ? "flush_all failed on" : ";", name, why);
        nbad++;
    }

    r = msg_get(ctx->mc);
    if (r == NULL)
        return KM_ERROR;
    parent->rsp = r;
    r->type = MC_RSP_LINE;
    if (nbad == 0)
        return msg_out_bytes(r, ctx->bp, "OK\r\n", 4);
    if (t.cut) {
        memcpy(line + t.n, "...", 4);
        t.n += 3;
    }
    r->is_error = true;
    if (msg_out_bytes(r, ctx->bp, "SERVER_ERROR ", 13) != KM_OK ||
        msg_out_bytes(r, ctx->bp, line, t.n) != KM_OK)
        return KM_ERROR;
    return msg_out_bytes(r, ctx->bp, "\r\n", 2);
}
