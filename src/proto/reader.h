/* src/proto/reader.h: one side of a connection's input, turned into messages.
 *
 * A reader owns the chain its connection reads into and drives the protocol's tokenizer
 * over it. A message takes its bytes by reference (its raw span), its tokens are located
 * in whichever segment they landed, and the chain lets go of what every message has
 * taken. The reader knows no sockets and no queues: the owner reads bytes into `in`, then
 * calls reader_parse, which hands each complete message (or bad input) to the owner's
 * callbacks. The proxy's connections and the fuzz targets run this same code.
 */
#ifndef KM_READER_H
#define KM_READER_H

#include "core/buf.h"
#include "proto/msg.h"
#include "proto/proto.h"

#include <stdbool.h>
#include <stdint.h>

struct reader {
    struct chain in;           /* bytes read */
    union parser ps;           /* tokenizer state */
    struct msg *cur;           /* message being parsed, NULL between messages */
    struct buf *cur_b;         /* locate cursor for cur's tokens */
    uint64_t cur_b_abs;        /* stream offset of cur_b->data[0] */
    uint64_t cur_start;        /* stream offset of cur's first byte */
    struct buf *cur_sb;        /* segment of cur's first byte */
    uint32_t cur_soff;         /* its offset there */
    bool fresh;                /* reply side: the tokenizer awaits set-up for the next reply */
    bool keep_toks;            /* reply side: record the elements of the reply being parsed */
};

/* What a reader works with: the protocol, the client's limits and where messages come
 * from. `lim` may be NULL (no limits); `max_request` bounds a request's size. */
struct reader_env {
    const struct proto *pr;
    const struct proto_limits *lim;
    uint64_t max_request;
    struct msgcache *mc;
};

/* The owner's side. Each returns KM_OK to go on; anything else stops reader_parse, which
 * returns it. */
struct reader_ops {
    /* reply side: the request the next reply answers; NULL when nothing was asked */
    struct msg *(*answers)(void *arg);
    /* a complete message, which the owner now holds */
    int (*done)(void *arg, struct msg *m);
    /* bad input: why, and whether the stream goes on after the bad bytes (recoverable);
     * after an unrecoverable error reader_parse stops whatever this returns */
    int (*bad)(void *arg, const char *why, bool recoverable);
};

/* A reader with nothing read; the request side must then be started with reader_req_start. */
void reader_init(struct reader *r);
/* Ready the request tokenizer for the next message, with env's limits. */
void reader_req_start(struct reader *r, const struct reader_env *env);
/* Tokenize everything read and not yet parsed. */
int reader_parse(struct reader *r, const struct reader_env *env, bool is_req,
                 const struct reader_ops *ops, void *arg);
/* Nothing half-read or half-parsed: the reader may let its segments go. */
bool reader_idle(const struct reader *r, const struct reader_env *env, bool is_req);
/* Drop the message being parsed and every segment (what messages took stays theirs). */
void reader_release(struct reader *r, struct msgcache *mc);

#endif
