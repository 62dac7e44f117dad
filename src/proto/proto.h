/* src/proto/proto.h: what the proxy core asks of a protocol; one const table per protocol.
 *
 * The core drives tokenizers over segment chains, keeps queues and routes keys; everything
 * that knows bytes of a protocol sits behind this table (redis.c, memcache.c). Positions
 * reported by the tokenizers are offsets from the start of the message, so the core can
 * locate them in whichever segment they landed.
 */
#ifndef KM_PROTO_H
#define KM_PROTO_H

#include "core/buf.h"
#include "core/counter.h"
#include "proto/mc.h"
#include "proto/msg.h"
#include "proto/resp.h"

#include <stdbool.h>
#include <stdint.h>

/* Events every tokenizer adapter returns. */
enum pev { PEV_AGAIN, PEV_TOKEN, PEV_DONE, PEV_ERROR };

/* A token as a tokenizer reports it. */
struct ptok {
    uint64_t pos;            /* offset of the token's first raw byte from the message start */
    uint64_t len;            /* request: data length; reply element: full raw length */
    uint32_t aux;            /* request: framing bytes before the data */
    uint32_t type;           /* reply element: type byte */
    uint64_t kpos;           /* memcached reply element: key offset from the element start */
    uint32_t klen;           /* memcached reply element: key length */
};

union parser {
    struct resp_req_parser rq;
    struct resp_rsp_parser rs;
    struct mc_req_parser mq;
    struct mc_rsp_parser ms;
};

/* Limits on what a client may send, per pool. */
struct proto_limits {
    uint64_t max_bulk;       /* Redis bulk string length */
    uint64_t max_args;       /* Redis multibulk count */
    uint64_t max_value;      /* memcached value */
};

/* A client's state across its requests: it lives in the client, and the protocol reads
 * and changes it as it plans them (AUTH, CLIENT SETNAME, MULTI, WATCH). */
struct proto_session {
    char *name;              /* CLIENT SETNAME: a heap copy, NULL when none */
    uint64_t id : 59;        /* CLIENT ID: unique in the process, from 1 */
    uint64_t authed : 1;     /* passed AUTH, or none is required */
    uint64_t multi : 1;      /* Redis: inside MULTI (up to EXEC or DISCARD) */
    uint64_t multi_bad : 1;  /* a command of the open transaction was refused: EXEC
                                answers EXECABORT, as Redis does */
    uint64_t watching : 1;   /* WATCH issued and not yet ended by EXEC, DISCARD, UNWATCH */
    uint64_t subscribed : 1; /* Redis: subscribed to a channel or pattern (RESP2
                                subscribed mode: the proxy's pub/sub layer sets it) */
};

/* Release what a session holds (its name); the session is left empty. */
void proto_session_clear(struct proto_session *s);

/* Counters a protocol bumps as it plans requests and merges replies, per pool and worker,
 * named as memcached's stats (the stats port's JSON does not show them): X(name, what). */
#define PROTO_COUNTS(X)                                                              \
    X(cmd_get,    "keys asked for by retrieval commands")                            \
    X(get_hits,   "of those, found (where the proxy sees the reply)")                \
    X(get_misses, "of those, not found")                                             \
    X(cmd_set,    "storage commands")                                                \
    X(cmd_touch,  "keys touched: touch, and (as memcached counts them) gat/gats keys") \
    X(touch_hits, "of those, found (where the proxy sees the reply)")                \
    X(touch_misses, "of those, not found")                                           \
    X(cmd_flush,  "flush_all commands")

/* Bumped by the worker that owns them (ctr_add), read by any thread. */
struct proto_counts {
#define PROTO_COUNT_FIELD(name, what) struct km_ctr name;
    PROTO_COUNTS(PROTO_COUNT_FIELD)
#undef PROTO_COUNT_FIELD
};

/* The same counters as plain numbers: a sum over the workers at one moment. */
struct proto_count_values {
#define PROTO_COUNT_FIELD(name, what) uint64_t name;
    PROTO_COUNTS(PROTO_COUNT_FIELD)
#undef PROTO_COUNT_FIELD
};

/* Add the values of c to *sum. */
void proto_counts_add(struct proto_count_values *sum, const struct proto_counts *c);
/* Set every counter of c to 0 (its owner only, as for any counter). */
void proto_counts_clear(struct proto_counts *c);

/* The proxy's own figures, for Redis INFO and memcached stats. */
struct proto_self {
    int64_t pid;
    int64_t uptime_s;        /* since start */
    int64_t now_s;           /* unix time */
    uint64_t curr_connections;    /* as the stats port counts them (listeners included) */
    uint64_t total_connections;
    uint64_t pool_clients;   /* clients of the request's pool */
    uint32_t workers;        /* threads serving requests */
    uint32_t nservers;       /* servers of the pool */
    uint32_t nlive;          /* of those, in the ring */
    const char *pool;        /* the pool's name */
    uint64_t config_gen;     /* configuration generation the worker runs (1 at start) */
    uint64_t reloads;        /* SIGUSR1 reloads done, and refused (the file was invalid) */
    uint64_t reload_failures;
    struct proto_count_values counts;   /* the pool's counters, summed over the workers */
};

/* What the protocol may use while it builds replies and fragments. */
struct proto_ctx {
    struct bufpool *bp;
    struct msgcache *mc;
    const char *auth;        /* pool password (redis_auth), NULL when none */
    struct proto_session *sess;   /* the client's session, NULL for internal requests */
    struct proto_counts *counts;  /* the pool's counters in this worker, NULL: not counted */
    /* Fill *out with the proxy's figures now; NULL where there is no proxy (unit tests,
     * fuzzing): the protocol then answers with what it knows. */
    void (*self)(const void *arg, struct proto_self *out);
    const void *self_arg;
    int db;                  /* the pool's redis_db: SELECT of it, like SELECT 0, is +OK */
    /* The name of server idx of the pool (as the logs and the stats port name it), NULL when
     * unknown; called with self_arg. NULL where there is no proxy. */
    const char *(*server_name)(const void *arg, uint32_t idx);
    /* memcached `stats reset`: from now on the pool's counters count from 0, in every
     * worker; called with self_arg. NULL where there is no proxy (the protocol then
     * clears ctx->counts itself). */
    void (*counts_reset)(const void *arg);
    uint32_t nservers;       /* servers of the pool (0 where unknown: SCAN is then refused) */
    bool allow_flush;        /* the pool's allow_flush: FLUSHALL/FLUSHDB may go to the servers */
};

struct proto {
    const char *name;
    /* requests */
    void (*req_init)(union parser *p);
    int (*req_feed)(union parser *p, const uint8_t *buf, size_t n, size_t *used, struct ptok *t);
    uint64_t (*req_len)(const union parser *p);
    /* Optional: true while the tokenizer skips bytes that belong to no request (an
     * oversized value being refused): the core may drop them as they pass. */
    bool (*req_discarding)(const union parser *p);
    /* after PEV_ERROR: the reason, and whether the connection can go on */
    const char *(*req_err)(const union parser *p, bool *recoverable);
    /* A complete request: set m->plan, m->merge, the key range, m->noreply, m->quit; for
     * PLAN_LOCAL and PLAN_ERROR also m->rsp (made here) and m->done. For PLAN_SINGLE it may
     * fill m->out with what to send instead of the raw request. p is the tokenizer's
     * state right after m, or NULL for a request planned later than it was read (Redis,
     * whose planner does not look at p). KM_OK or KM_ERROR (no memory). */
    int (*req_plan)(struct msg *m, const union parser *p, const struct proto_ctx *ctx);
    /* responses to req */
    void (*rsp_init)(union parser *p, const struct msg *req, bool want_elems);
    int (*rsp_feed)(union parser *p, const uint8_t *buf, size_t n, size_t *used, struct ptok *t);
    uint64_t (*rsp_len)(const union parser *p);
    const char *(*rsp_err)(const union parser *p);
    /* A complete reply: set rsp->type, rsp->ival, rsp->is_error; it may shorten rsp->raw
     * to the part the client is owed (memcached drops the MN that closes a quiet reply),
     * releasing and holding segments as it does. */
    void (*rsp_done)(struct msg *rsp, const union parser *p);
    /* Optional: the reply to req, a request sent whole (not a fragment), came from its
     * server; p still holds what the reply tokenizer found. Count what the protocol counts
     * of replies into c (memcached's get and touch hits and misses). */
    void (*rsp_count)(struct proto_counts *c, const struct msg *req, const union parser *p);
    /* Fill frag->out with a request for the parent's keys numbered keys[0..n) (key k is
     * token key_first + k * key_step of the parent). KM_OK or KM_ERROR. */
    int (*frag)(struct msg *frag, const struct msg *parent, const uint32_t *keys, uint32_t n,
                const struct proto_ctx *ctx);
    /* All fragments answered: give parent->rsp the client's reply. KM_OK or KM_ERROR. */
    int (*merge)(struct msg *parent, const struct proto_ctx *ctx);
    /* Make rsp an error reply: Redis "-<code> <reason>", memcached "<code> <reason>"; code
     * NULL means the protocol's server error ("ERR", "SERVER_ERROR"). KM_OK or KM_ERROR. */
    int (*error)(struct msg *rsp, const char *code, const char *reason,
                 const struct proto_ctx *ctx);
    /* Requests a fresh server connection sends before any client's (Redis: AUTH, SELECT).
     * Fills out[0..max) with new messages (their replies are swallowed); returns how many,
     * or -1 when out of memory. NULL when the protocol has none. */
    int (*conn_init)(struct msg **out, int max, const char *auth, int db,
                     const struct proto_ctx *ctx);
    /* Apply the pool's limits to a request tokenizer just initialised (optional). */
    void (*req_limits)(union parser *p, const struct proto_limits *l);
    /* Make rsp the reply to a request the tokenizer rejected with `reason`. */
    int (*bad_request)(struct msg *rsp, const char *reason, const struct proto_ctx *ctx);
};

extern const struct proto proto_redis;
extern const struct proto proto_memcache;

/* Shared helper: "<prefix><text>\r\n" into buf (cap > 2), cut to fit with its CRLF kept,
 * for error lines; returns its length. */
size_t proto_error_line(char *buf, size_t cap, const char *prefix, const char *text);

/* Shared helper: a reply message whose out holds the n bytes at p; NULL when out of memory. */
struct msg *proto_reply_bytes(const struct proto_ctx *ctx, const void *p, size_t n);

#endif
