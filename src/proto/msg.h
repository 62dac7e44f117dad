/* src/proto/msg.h: a request or a response: the segments it borrows, its tokens, its fragments.
 *
 * A request parsed from a client holds `raw`, the span of input bytes it was read into
 * (one reference on each segment). Its tokens (arguments, keys) point into raw. What is
 * written to a server is `out`, a list of spans: for a request forwarded whole that is raw
 * itself; for a fragment of a split request it is a small fresh header from the scratch
 * segment followed by spans borrowed from the parent's raw bytes. A response is parsed the
 * same way from a server's input chain; what goes back to the client is its `out`, which
 * for a merged reply is a fresh header followed by the elements of the fragments' replies,
 * in the client's key order. Nothing is copied but those small headers.
 */
#ifndef KM_MSG_H
#define KM_MSG_H

#include "core/buf.h"

#include <stdbool.h>
#include <stdint.h>

struct client;

/* One token: an argument of a request or an element of a reply. */
struct tok {
    struct buf *b;           /* segment of the token's first raw byte (kept alive by the message's raw) */
    uint32_t off;            /* offset of that byte in b */
    uint32_t aux;            /* request: framing bytes before the data ("$3\r\n"); reply element: 0 */
    uint64_t len;            /* request: data length; reply element: its full raw length */
    uint64_t kpos;           /* request: offset of the token from the message start;
                                memcached reply element: offset of the key from the element start */
    uint32_t klen;           /* memcached reply element: key length */
    uint32_t type;           /* reply element: its type byte (RESP) */
};

/* How a request is served, decided by the protocol once it is parsed. */
enum plan {
    PLAN_SINGLE,             /* the key tok[key_first] picks the server */
    PLAN_SAMESRV,            /* all keys must pick one server; else an error reply */
    PLAN_SPLIT,              /* one fragment per server, replies merged */
    PLAN_LOCAL,              /* answered by the proxy (PING, ECHO, QUIT, ...) */
    PLAN_ERROR,              /* answered with err_reason; the connection goes on */
    PLAN_DROP,               /* nothing to answer (a skipped empty request) */
    PLAN_ALL,                /* to every server of the pool: one fragment each, the request as
                                the client wrote it, each with its server index; the replies are
                                merged as `merge` says (memcached flush_all: MERGE_OK) */
    PLAN_INDEX,              /* to the one server whose index the protocol put in m->server
                                (Redis SCAN: the cursor names it), as a single fragment that
                                proto->frag builds, so that its reply passes through `merge` */
    PLAN_SESSION,            /* Redis MULTI EXEC DISCARD WATCH UNWATCH, or a keyless command
                                queued in a transaction: `sop` says which; the proxy's session
                                layer (proxy/session.c) serves it on the client's pinned
                                connection */
    PLAN_PUBSUB,             /* Redis SUBSCRIBE PSUBSCRIBE UNSUBSCRIBE PUNSUBSCRIBE (`sop`):
                                the proxy's pub/sub layer (proxy/pubsub.c) serves it on the
                                client's subscription connections */
};

/* What a PLAN_SESSION request does to the client's session. */
enum session_op {
    SOP_NONE,
    SOP_MULTI,               /* open a transaction (+OK) */
    SOP_EXEC,                /* run it */
    SOP_EXECABORT,           /* EXEC of a transaction with a refused command: rsp holds
                                EXECABORT; the server's transaction, if any, is discarded */
    SOP_DISCARD,             /* drop it (+OK) */
    SOP_WATCH,               /* watch the keys (one server: it becomes the pinned one) */
    SOP_UNWATCH,             /* outside a transaction */
    SOP_KEYLESS,             /* queued in a transaction, no key (PING, ECHO, UNWATCH, WAIT) */
    SOP_WAIT,                /* WAIT outside a transaction: on the client's pinned
                                connection, which carries its writes (blocking) */
    SOP_SUBSCRIBE,           /* PLAN_PUBSUB: the channels or patterns are the arguments */
    SOP_PSUBSCRIBE,
    SOP_UNSUBSCRIBE,
    SOP_PUNSUBSCRIBE,
};

enum merge {
    MERGE_NONE,
    MERGE_ARRAY,             /* concatenate array elements in key order (MGET) */
    MERGE_OK,                /* all fragments must say OK (MSET, memcached flush_all) */
    MERGE_SUM,               /* add the integer replies (DEL, EXISTS, ...) */
    MERGE_VALUES,            /* memcached get: values in key order, one END */
    MERGE_SCAN,              /* Redis SCAN: the server's cursor becomes the client's */
};

#define MSG_TOK_INLINE 4
#define MSG_OUT_INLINE 2
/* Past the inline arrays, the first heap array: a 10-key command or its merged reply
 * fits in one allocation instead of a chain of doublings. */
#define MSG_GROW_FIRST 16

struct msg {
    struct msg *cnext;       /* next in the client's reply FIFO */
    struct msg *snext;       /* next in a server connection's send queue or in-flight FIFO */
    struct client *client;   /* owner; NULL once the client has gone (the reply is dropped) */
    struct msg *parent;      /* the split request this fragment belongs to */
    struct msg *rsp;         /* the reply once it is there (parsed, merged or made here) */
    struct msg **frags;      /* fragments of a split request */
    uint32_t *keyfrag;       /* split request: for each key, in order, the fragment serving it
                                (in the block frags points to, after the fragments) */

    struct span raw;         /* the parsed bytes (held) */
    struct span *out;        /* what to send (each span held) */
    uint64_t outlen;         /* bytes in out */
    struct tok *tok;         /* arguments (request) or elements (reply) */
    uint32_t nout, outcap;
    uint32_t ntok, tokcap;

    uint32_t nfrag;          /* fragments of a split request */
    uint32_t nfrag_done;     /* fragments answered */
    uint32_t key_first;      /* token index of the first key */
    uint32_t key_last;       /* token index of the last key (inclusive) */
    uint32_t key_step;       /* tokens per key: 1, or 2 for key-value pairs */
    uint32_t key_extra;      /* token index of one more key outside the range (ZUNIONSTORE's
                                destination), 0 when none */
    int32_t server;          /* server index the request went to, -1 when none; for
                                PLAN_INDEX, the one the planner chose */
    const char *err;         /* PLAN_ERROR: the reason to reply with */
    int64_t ival;            /* reply: integer value, or bulk/array length (-1 null) */
    uint64_t id;             /* per-connection sequence number, for logs */

    uint16_t cmd;            /* the protocol's command id */
    uint8_t plan;            /* enum plan */
    uint8_t merge;           /* enum merge */
    uint8_t type;            /* reply: top-level type byte (RESP) or reply kind (memcached) */
    uint8_t sop;             /* PLAN_SESSION: enum session_op */
    bool in_multi;           /* queued in a transaction: its keys must be on the pinned
                                server (one server), its reply is +QUEUED */
    bool blocking;           /* a blocking command outside a transaction: on a pinned
                                connection, and the pool timeout does not apply */
    bool channel;            /* PUBLISH: its key is a channel, routed as subscriptions are */
    bool elems;              /* request: its reply is parsed with its elements (a pub/sub
                                command, whose confirmations the proxy reads) */
    bool is_error;           /* reply is an error */
    bool noreply;            /* memcached noreply: no reply goes to the client */
    bool quit;               /* close the client once this reply is sent */
    bool swallow;            /* the reply is not for the client (internal request) */
    bool done;               /* request: its reply is complete */
    bool sent;               /* request: fully written to its server */
    bool ghost;              /* stands in the in-flight FIFO for a timed-out request, to
                                absorb its late reply */
    bool waiting;            /* request: read while an earlier one of its client waits to
                                be sent (proxy/order.c), not planned yet */
    uint64_t sent_ms;        /* monotonic ms when it was written to its server */
    uint64_t read_us;        /* request: when its last byte was read (worker_clock_us) */
    uint64_t sent_us;        /* when it was written to its server (worker_clock_us) */
    uint64_t wire_bytes;     /* bytes it took on the wire (kept for the queue gauges) */

    struct tok tok_inline[MSG_TOK_INLINE];
    struct span out_inline[MSG_OUT_INLINE];
};

/* A bounded cache of free messages, one per worker. */
struct msgcache {
    struct msg *free;        /* linked by cnext */
    uint32_t nfree, max_free;
    uint64_t nlive;          /* messages handed out and not yet put back */
    uint32_t low;            /* fewest free messages since the last msgcache_trim */
};

void msgcache_init(struct msgcache *mc, uint32_t max_free);
void msgcache_destroy(struct msgcache *mc);
/* Free the cached messages not needed since the last call (see bufpool_trim). */
uint32_t msgcache_trim(struct msgcache *mc);

/* A zeroed message (server = -1); NULL when out of memory. */
struct msg *msg_get(struct msgcache *mc);
/* Release everything the message holds (raw, out, arrays, its reply and fragments) and
 * return it to the cache. Fragments are put with their parent, never alone. */
void msg_put(struct msgcache *mc, struct msg *m);

/* The arrays of a split request, in one zeroed block: frags for up to maxfrag fragments,
 * keyfrag for nkeys keys. KM_OK or KM_ERROR (out of memory). msg_put frees them. */
int msg_split_init(struct msg *m, uint32_t maxfrag, uint32_t nkeys);
void msg_split_free(struct msg *m);
/* PLAN_ALL: n fragments of m, fragment i for server i, each with m's raw bytes as its out
 * (borrowed) and m's command and noreply; m->nfrag = n. KM_OK, or KM_ERROR (out of memory)
 * with no fragment left. */
int msg_split_all(struct msg *m, uint32_t n, struct msgcache *mc);
/* Append a token; KM_OK or KM_ERROR (out of memory). Grows with what has arrived only. */
int msg_tok_push(struct msg *m, const struct tok *t);
/* Append a span to out, taking over the reference the caller holds; KM_OK or KM_ERROR,
 * in which case the span is released. */
int msg_out_push(struct msg *m, struct span *s);
/* Append a fresh copy of the n bytes at p to out (scratch segments, in pieces of at most
 * 256 bytes). */
int msg_out_bytes(struct msg *m, struct bufpool *bp, const void *p, size_t n);
/* Append `len` bytes of the segment chain starting at (b, off), taking a new reference. */
int msg_out_borrow(struct msg *m, struct buf *b, uint32_t off, uint64_t len);
/* Drop out (after it has been written). */
void msg_out_release(struct msg *m);
/* A request that has been written needs its bytes no more, unless its reply is merged by
 * key (memcached values are matched against the requested keys): release raw and the
 * tokens pointing into it, so a client's buffers go back while the server works. */
void msg_drop_input(struct msg *m);

/* Copy at most n bytes of token t starting `skip` into its data; returns bytes copied. */
size_t msg_tok_copy(const struct tok *t, uint64_t skip, void *dst, size_t n);
/* Parse token t as a signed decimal integer; KM_OK or KM_ERROR. */
int msg_tok_int(const struct tok *t, int64_t *v);

#endif
