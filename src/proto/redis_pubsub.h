/* src/proto/redis_pubsub.h: Redis pub/sub as the proxy plans it: the commands a client
 * sends, the pushes its servers send back, and the replies made here (the connections
 * that carry them are proxy/pubsub.c's). */
#ifndef KM_REDIS_PUBSUB_H
#define KM_REDIS_PUBSUB_H

#include "proto/msg.h"
#include "proto/proto.h"
#include "proto/resp_cmd.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A command of policy PUBSUB whose word count passed its arity. PUBLISH is a keyed
 * request whose key is the channel (m->channel: routed as subscriptions are); the others
 * become PLAN_PUBSUB with m->sop SOP_SUBSCRIBE, SOP_PSUBSCRIBE, SOP_UNSUBSCRIBE or
 * SOP_PUNSUBSCRIBE, their arguments the channels or patterns. Inside MULTI only PUBLISH is
 * taken; without a session (an internal request) all are refused. KM_OK or KM_ERROR.
 */
int redis_pubsub_plan(struct msg *m, const struct resp_cmd *c, const struct proto_ctx *ctx);

/*
 * A client in subscribed mode (ctx->sess->subscribed) sent command c: anything but the
 * pub/sub commands, PING and QUIT gets Redis's error, and PING is answered as Redis
 * answers it there (["pong", arg]). Returns true when m was answered here (KM_ERROR in
 * *rc when out of memory), false when it goes on as usual.
 */
bool redis_pubsub_subscribed(struct msg *m, const struct resp_cmd *c,
                             const struct proto_ctx *ctx, int *rc);

/* What a server connection in subscribed mode sent. */
enum push_kind {
    PUSH_OTHER,              /* not a pub/sub push (a status or error reply, ...) */
    PUSH_MESSAGE,            /* ["message", channel, payload] */
    PUSH_PMESSAGE,           /* ["pmessage", pattern, channel, payload] */
    PUSH_SUBSCRIBE,          /* ["subscribe", channel, count]: a confirmation */
    PUSH_PSUBSCRIBE,
    PUSH_UNSUBSCRIBE,
    PUSH_PUNSUBSCRIBE,
};

/* The kind of reply r (parsed with its elements), and for a push its second element: the
 * channel or pattern, as the offset of its data in *name and its length in *len. */
enum push_kind redis_push_kind(const struct msg *r, const struct tok **name, uint64_t *skip,
                               uint64_t *len);

/* Append to r Redis's confirmation of (un)subscribing to the name of len bytes at p
 * (p NULL: none, as UNSUBSCRIBE with no subscription answers), with count subscriptions
 * left: kind is "subscribe", "psubscribe", "unsubscribe" or "punsubscribe". */
int redis_push_confirm(struct msg *r, const char *kind, const uint8_t *p, size_t len,
                       uint64_t count, const struct proto_ctx *ctx);

/* Append to f the head of a command of nargs arguments after its name (word), and one
 * argument: the bytes at p. */
int redis_cmd_head(struct msg *f, const char *word, uint64_t nargs, const struct proto_ctx *ctx);
int redis_cmd_arg(struct msg *f, const uint8_t *p, size_t len, const struct proto_ctx *ctx);

#endif
