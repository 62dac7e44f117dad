/* src/proto/proto.c: helpers both protocols use to make replies. */
#include "proto/proto.h"

#include "core/common.h"

#include <stdio.h>
#include <stdlib.h>

struct msg *
proto_reply_bytes(const struct proto_ctx *ctx, const void *p, size_t n)
{
    struct msg *r = msg_get(ctx->mc);

    if (r == NULL)
        return NULL;
    if (msg_out_bytes(r, ctx->bp, p, n) != KM_OK) {
        msg_put(ctx->mc, r);
        return NULL;
    }
    return r;
}

void
proto_session_clear(struct proto_session *s)
{
    free(s->name);
    s->name = NULL;
}

size_t
proto_error_line(char *buf, size_t cap, const char *prefix, const char *text)
{
    int n = snprintf(buf, cap, "%s%s\r\n", prefix, text);

    if (n < 0)
        n = 0;
    if ((size_t)n >= cap) {
        n = (int)cap - 1;
        buf[n - 2] = '\r';
        buf[n - 1] = '\n';
    }
    return (size_t)n;
}

void
proto_counts_add(struct proto_count_values *sum, const struct proto_counts *c)
{
#define COUNT_ADD(name, what) sum->name += ctr_get(&c->name);
    PROTO_COUNTS(COUNT_ADD)
#undef COUNT_ADD
}

void
proto_counts_clear(struct proto_counts *c)
{
#define COUNT_CLEAR(name, what) ctr_set(&c->name, 0);
    PROTO_COUNTS(COUNT_CLEAR)
#undef COUNT_CLEAR
}
