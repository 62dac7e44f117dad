/* src/proto/resp.c: resumable RESP request and reply tokenizers over arbitrary chunks. */

/*
 * Request grammar (one state per box; a byte moves along one arrow; "ARG"/"DONE" mark
 * where a feed call returns an event after consuming that byte):
 *
 *   START --'*'--> COUNT --digits--'\r'--> COUNT_LF --'\n'--+--(N <= 0: skip)--> START
 *     |                                                      |
 *     |                                   +------------------+ (N > 0)
 *     |                                   v
 *     |             +---------------> DOLLAR --'$'--> BLEN --digits--'\r'--> BLEN_LF
 *     |             | (more args)                                              | '\n'
 *     |             |                                                          v
 *     |       DATA_LF <--'\r'-- DATA_CR <--(len bytes skipped, not scanned)-- DATA
 *     |         | '\n': ARG
 *     |         +--(last arg)--> DONE
 *     |
 *     +--other--> INL_SEP <--' ' '\t' '\r': ARG-- INL_TOK
 *                   |  \--token byte----------------->  |
 *                   | '\n' (args: DONE; none: skip)      | '\n': ARG, then DONE
 *
 *   Any unexpected byte -> ERROR (sticky). DONE answers DONE until reset.
 *
 * Reply grammar: TYPE reads a type byte; line types (+ - _ , # () go to LINE until CRLF;
 * length-prefixed ones (: $ ! = * ~ > % |) go to NUM until CRLF; blobs then go to BLOB,
 * skip their length and check the CRLF. Aggregates push their count on a fixed stack
 * (no recursion); when a value completes, the counts above it are decremented and
 * finished levels popped, and a value finishing directly inside the top-level aggregate
 * is reported as an element. An attribute ('|') level, when finished, does not count as
 * a value: the value it annotates follows it.
 */

#include "proto/resp.h"

#include <string.h>

#define RESP_DEFAULT_MAX_BULK   (512ULL * 1024 * 1024)
#define RESP_DEFAULT_MAX_ARGS   (1024ULL * 1024)
#define RESP_DEFAULT_MAX_INLINE (64U * 1024)
#define RESP_DEFAULT_MAX_DEPTH  128U

#define RESP_INT64_NEG_LIM ((uint64_t)INT64_MAX + 1)   /* magnitude of INT64_MIN */

static const char resp_err_mbulk[]   = "Protocol error: invalid multibulk length";
static const char resp_err_bulk[]    = "Protocol error: invalid bulk length";
static const char resp_err_crlf[]    = "Protocol error: expected CRLF after bulk data";
static const char resp_err_quote[]   = "Protocol error: quoted inline arguments are not supported";
static const char resp_err_nul[]     = "Protocol error: NUL byte in inline request";
static const char resp_err_inline[]  = "Protocol error: too big inline request";
static const char resp_err_dollar[]  = "Protocol error: expected '$', got ' '";

static const char resp_err_type[]    = "Protocol error: invalid reply type";
static const char resp_err_int[]     = "Protocol error: invalid integer";
static const char resp_err_line[]    = "Protocol error: expected CRLF";
static const char resp_err_depth[]   = "Protocol error: reply nested too deeply";

/* ------------------------------------------------------------------ requests */

enum resp_req_state {
    RQ_START,       /* first byte of a message decides multibulk or inline */
    RQ_COUNT,       /* digits of "*N" */
    RQ_COUNT_LF,    /* '\n' after "*N\r" */
    RQ_DOLLAR,      /* '$' of the next bulk header */
    RQ_BLEN,        /* digits of "$len" */
    RQ_BLEN_LF,     /* '\n' after "$len\r" */
    RQ_DATA,        /* bulk payload, skipped by length */
    RQ_DATA_CR,     /* '\r' after the payload */
    RQ_DATA_LF,     /* '\n' after the payload */
    RQ_INL_SEP,     /* inline: between arguments */
    RQ_INL_TOK,     /* inline: inside an argument */
    RQ_DONE,        /* message complete */
    RQ_ERROR,       /* malformed input seen */
};

/* Zero the parser, set the default limits (Redis's: 512 MiB bulk, 1M args, 64 KiB inline). */
void
resp_req_init(struct resp_req_parser *p)
{
    memset(p, 0, sizeof(*p));
    p->max_bulk = RESP_DEFAULT_MAX_BULK;
    p->max_args = RESP_DEFAULT_MAX_ARGS;
    p->max_inline = RESP_DEFAULT_MAX_INLINE;
    resp_req_reset(p);
}

/* Forget the current message and any error; the caller-set limits stay. */
void
resp_req_reset(struct resp_req_parser *p)
{
    p->state = RQ_START;
    p->inl = false;
    p->neg = false;
    p->ndig = 0;
    p->num = 0;
    p->off = 0;
    p->argc = 0;
    p->nargs = 0;
    p->left = 0;
    p->tok = 0;
    p->apos = 0;
    p->err = NULL;
    p->errbuf[0] = '\0';
}

/* Bytes of the current message so far; empty messages skipped before it are not counted. */
uint64_t
resp_req_msglen(const struct resp_req_parser *p)
{
    return p->off;
}

/* Whether the current message is inline; false until its first byte is read. */
bool
resp_req_inline(const struct resp_req_parser *p)
{
    return p->inl;
}

/* Arguments reported by RESP_EV_ARG in the current message. */
uint64_t
resp_req_nargs(const struct resp_req_parser *p)
{
    return p->nargs;
}

/* Start reading a number field. */
static inline void
req_num_start(struct resp_req_parser *p)
{
    p->neg = false;
    p->ndig = 0;
    p->num = 0;
}

/*
 * One byte of a request number field, grammar "0 | -?[1-9][0-9]*" as Redis's string2ll;
 * positive values above lim are refused as soon as they pass it (same error either way),
 * so no declared size can overflow or be trusted. Returns 1 on the terminating '\r',
 * 0 when the byte was taken, -1 when the field is invalid.
 */
static inline int
req_num_byte(struct resp_req_parser *p, uint8_t ch, bool allow_neg, uint64_t lim)
{
    if (ch >= '0' && ch <= '9') {
        unsigned d = (unsigned)(ch - '0');
        uint64_t l = p->neg ? RESP_INT64_NEG_LIM : lim;

        if (p->ndig > 0 && p->num == 0)
            return -1;                  /* leading zero */
        if (d == 0 && p->ndig == 0 && p->neg)
            return -1;                  /* "-0" */
        if (p->num > l / 10 || (p->num == l / 10 && d > l % 10))
            return -1;                  /* beyond the limit or int64 */
        p->num = p->num * 10 + d;
        p->ndig++;
        return 0;
    }
    if (ch == '-' && allow_neg && p->ndig == 0 && !p->neg) {
        p->neg = true;
        return 0;
    }
    if (ch == '\r' && p->ndig > 0)
        return 1;
    return -1;
}

/* Forget an empty message that was consumed, so the next one starts at offset 0. */
static void
req_skip_empty(struct resp_req_parser *p)
{
    p->state = RQ_START;
    p->inl = false;
    p->argc = 0;
    p->nargs = 0;
}

/* Record "expected '$', got 'X'" the way Redis words it (CR, LF and NUL shown as a space). */
static void
req_err_dollar(struct resp_req_parser *p, uint8_t ch)
{
    size_t len = sizeof(resp_err_dollar);   /* includes the NUL */

    memcpy(p->errbuf, resp_err_dollar, len);
    if (ch != '\r' && ch != '\n' && ch != '\0')
        p->errbuf[len - 3] = (char)ch;
    p->err = p->errbuf;
}

/*
 * Tokenize request bytes up to the first event (contract in resp.h). Only buf[0..n) is
 * read, each byte once; bulk payloads are skipped by count; nothing is allocated.
 */
int
resp_req_feed(struct resp_req_parser *p, const uint8_t *buf, size_t n, size_t *used,
              struct resp_arg *arg)
{
    size_t i = 0;
    uint64_t off = p->off;
    uint64_t lim;
    int ev = RESP_EV_AGAIN;
    int r;

    if (p->state == RQ_DONE) {
        *used = 0;
        return RESP_EV_DONE;
    }
    if (p->state == RQ_ERROR) {
        *used = 0;
        return RESP_EV_ERROR;
    }

    while (i < n) {
        uint8_t ch;

        if (p->state == RQ_DATA) {
            uint64_t k = p->left;

            if (k > n - i)
                k = n - i;
            i += (size_t)k;
            off += k;
            p->left -= k;
            if (p->left == 0)
                p->state = RQ_DATA_CR;
            continue;
        }

        ch = buf[i];
        switch (p->state) {
        case RQ_START:
            if (ch != '*') {
                /* anything else starts an inline command: re-read this byte there */
                p->inl = true;
                p->state = RQ_INL_SEP;
                continue;
            }
            req_num_start(p);
            p->state = RQ_COUNT;
            break;

        case RQ_COUNT:
            lim = p->max_args < (uint64_t)INT64_MAX ? p->max_args : (uint64_t)INT64_MAX;
            r = req_num_byte(p, ch, true, lim);
            if (r < 0) {
                p->err = resp_err_mbulk;
                goto error;
            }
            if (r > 0)
                p->state = RQ_COUNT_LF;
            break;

        case RQ_COUNT_LF:
            if (ch != '\n') {
                p->err = resp_err_mbulk;
                goto error;
            }
            i++;
            off++;
            if (p->neg || p->num == 0) {
                /* "*0" and "*-N": Redis drops them silently */
                req_skip_empty(p);
                off = 0;
                continue;
            }
            p->argc = p->num;
            p->state = RQ_DOLLAR;
            continue;

        case RQ_DOLLAR:
            if (ch != '$') {
                req_err_dollar(p, ch);
                goto error;
            }
            p->tok = off;
            req_num_start(p);
            p->state = RQ_BLEN;
            break;

        case RQ_BLEN:
            lim = p->max_bulk < (uint64_t)INT64_MAX ? p->max_bulk : (uint64_t)INT64_MAX;
            r = req_num_byte(p, ch, false, lim);
            if (r < 0) {
                p->err = resp_err_bulk;
                goto error;
            }
            if (r > 0)
                p->state = RQ_BLEN_LF;
            break;

        case RQ_BLEN_LF:
            if (ch != '\n') {
                p->err = resp_err_bulk;
                goto error;
            }
            p->apos = off + 1;
            p->left = p->num;
            p->state = p->left > 0 ? RQ_DATA : RQ_DATA_CR;
            break;

        case RQ_DATA_CR:
            if (ch != '\r') {
                p->err = resp_err_crlf;
                goto error;
            }
            p->state = RQ_DATA_LF;
            break;

        case RQ_DATA_LF:
            if (ch != '\n') {
                p->err = resp_err_crlf;
                goto error;
            }
            i++;
            off++;
            arg->pos = p->apos;
            arg->len = p->num;
            arg->hdr = (uint32_t)(p->apos - p->tok);
            p->nargs++;
            p->state = p->nargs == p->argc ? RQ_DONE : RQ_DOLLAR;
            ev = RESP_EV_ARG;
            goto out;

        case RQ_INL_SEP:
            if (ch == '\n') {
                i++;
                off++;
                if (p->nargs == 0) {
                    /* a blank line: Redis drops it silently */
                    req_skip_empty(p);
                    off = 0;
                    continue;
                }
                p->state = RQ_DONE;
                ev = RESP_EV_DONE;
                goto out;
            }
            if (off >= p->max_inline) {
                p->err = resp_err_inline;
                goto error;
            }
            switch (ch) {
            case ' ': case '\t': case '\r': case '\v': case '\f':
                /* Redis skips every isspace() byte between arguments */
                break;
            case '"': case '\'':
                p->err = resp_err_quote;
                goto error;
            case '\0':
                p->err = resp_err_nul;
                goto error;
            default:
                p->tok = off;
                p->state = RQ_INL_TOK;
                break;
            }
            break;

        case RQ_INL_TOK:
            if (ch == '\n' || ch == ' ' || ch == '\t' || ch == '\r') {
                /* inside an argument only these end it ('\v' and '\f' are data, as in Redis) */
                if (ch != '\n' && off >= p->max_inline) {
                    p->err = resp_err_inline;
                    goto error;
                }
                arg->pos = p->tok;
                arg->len = off - p->tok;
                arg->hdr = 0;
                p->nargs++;
                p->state = ch == '\n' ? RQ_DONE : RQ_INL_SEP;
                i++;
                off++;
                ev = RESP_EV_ARG;
                goto out;
            }
            if (off >= p->max_inline) {
                p->err = resp_err_inline;
                goto error;
            }
            if (ch == '"' || ch == '\'') {
                /* Redis would unquote (even mid-argument); we forward bytes as they are */
                p->err = resp_err_quote;
                goto error;
            }
            if (ch == '\0') {
                p->err = resp_err_nul;
                goto error;
            }
            break;

        default:
            /* RQ_DONE and RQ_ERROR are handled before the loop */
            p->err = resp_err_mbulk;
            goto error;
        }

        i++;
        off++;
    }

out:
    *used = i;
    p->off = off;
    return ev;

error:
    p->state = RQ_ERROR;
    *used = i;
    p->off = off;
    return RESP_EV_ERROR;
}

/* ------------------------------------------------------------------- replies */

enum resp_rsp_state {
    RS_TYPE,        /* the type byte of the next value */
    RS_NUM,         /* integer, length or count up to '\r' */
    RS_NUM_LF,      /* '\n' after it */
    RS_LINE,        /* simple line content up to '\r' */
    RS_LINE_LF,     /* '\n' after it */
    RS_BLOB,        /* blob payload, skipped by length */
    RS_BLOB_CR,     /* '\r' after the payload */
    RS_BLOB_LF,     /* '\n' after the payload */
    RS_DONE,        /* reply complete */
    RS_ERROR,       /* malformed reply seen */
};

#define RSP_ATTR ((uint64_t)1 << 63)    /* stack entry flag: this level is an attribute */

/* Zero the parser and set the default nesting limit (128). */
void
resp_rsp_init(struct resp_rsp_parser *p)
{
    memset(p, 0, sizeof(*p));
    p->max_depth = RESP_DEFAULT_MAX_DEPTH;
    resp_rsp_reset(p);
}

/* Forget the current reply and any error; max_depth stays. */
void
resp_rsp_reset(struct resp_rsp_parser *p)
{
    /* the stack is not cleared: depth says how much of it is live */
    p->state = RS_TYPE;
    p->cur = 0;
    p->neg = false;
    p->in_elem = false;
    p->ndig = 0;
    p->num = 0;
    p->off = 0;
    p->left = 0;
    p->elem_pos = 0;
    p->elem_type = 0;
    p->elem_ival = 0;
    p->nelem = 0;
    p->type = 0;
    p->ival = 0;
    p->depth = 0;
    p->err = NULL;
}

/* Bytes of the current reply so far. */
uint64_t
resp_rsp_msglen(const struct resp_rsp_parser *p)
{
    return p->off;
}

/* True when a value starting now is a direct element of a top-level aggregate. */
static inline bool
rsp_at_elem(const struct resp_rsp_parser *p)
{
    return p->depth == 1 && !(p->stack[0] & RSP_ATTR);
}

/* The message for a bad number field of the current type. */
static const char *
rsp_num_err(char type)
{
    switch (type) {
    case ':':
        return resp_err_int;
    case '$': case '!': case '=':
        return resp_err_bulk;
    default:
        return resp_err_mbulk;
    }
}

/*
 * A value has just been read completely: count it in the levels above, pop those that
 * are full. Returns RESP_EV_ARG when the value finished a top-level element,
 * RESP_EV_DONE when the whole reply finished (and no element did), else RESP_EV_AGAIN.
 */
static int
rsp_value_done(struct resp_rsp_parser *p)
{
    bool elem = false;

    for (;;) {
        uint64_t *top;
        bool attr;

        if (p->depth == 0) {
            p->state = RS_DONE;
            return elem ? RESP_EV_ARG : RESP_EV_DONE;
        }
        top = &p->stack[p->depth - 1];
        attr = (*top & RSP_ATTR) != 0;
        if (p->depth == 1 && !attr)
            elem = true;
        (*top)--;
        if ((*top & ~RSP_ATTR) != 0)
            break;
        p->depth--;
        if (attr)
            break;      /* an attribute is not a value: what it annotates comes next */
    }
    p->state = RS_TYPE;
    return elem ? RESP_EV_ARG : RESP_EV_AGAIN;
}

/*
 * Tokenize reply bytes up to the first event (contract in resp.h). Nesting is tracked on
 * the parser's fixed stack, never by recursion; blob payloads are skipped by count.
 */
int
resp_rsp_feed(struct resp_rsp_parser *p, const uint8_t *buf, size_t n, size_t *used,
              struct resp_elem *el)
{
    size_t i = 0;
    uint64_t off = p->off;
    uint32_t maxd = p->max_depth < RESP_RSP_DEPTH_CAP ? p->max_depth : RESP_RSP_DEPTH_CAP;
    int ev = RESP_EV_AGAIN;

    if (p->state == RS_DONE) {
        *used = 0;
        return RESP_EV_DONE;
    }
    if (p->state == RS_ERROR) {
        *used = 0;
        return RESP_EV_ERROR;
    }

    while (i < n) {
        uint8_t ch;
        int64_t v;
        uint64_t cnt;

        if (p->state == RS_BLOB) {
            uint64_t k = p->left;

            if (k > n - i)
                k = n - i;
            i += (size_t)k;
            off += k;
            p->left -= k;
            if (p->left == 0)
                p->state = RS_BLOB_CR;
            continue;
        }

        ch = buf[i];
        switch (p->state) {
        case RS_TYPE:
            switch (ch) {
            case '+': case '-': case '_': case ',': case '#': case '(':
                p->state = RS_LINE;
                break;
            case ':': case '$': case '!': case '=':
            case '*': case '~': case '>': case '%': case '|':
                p->neg = false;
                p->ndig = 0;
                p->num = 0;
                p->state = RS_NUM;
                break;
            default:
                p->err = resp_err_type;
                goto error;
            }
            p->cur = (char)ch;
            if (rsp_at_elem(p) && !p->in_elem) {
                p->in_elem = true;
                p->elem_pos = off;
            }
            if (ch != '|') {
                if (p->depth == 0) {
                    p->type = (char)ch;
                    p->ival = 0;
                } else if (rsp_at_elem(p)) {
                    p->elem_type = (char)ch;
                    p->elem_ival = 0;
                }
            }
            break;

        case RS_LINE:
            if (ch == '\r')
                p->state = RS_LINE_LF;
            else if (ch == '\n') {
                p->err = resp_err_line;
                goto error;
            }
            break;

        case RS_LINE_LF:
            if (ch != '\n') {
                p->err = resp_err_line;
                goto error;
            }
            i++;
            off++;
            ev = rsp_value_done(p);
            if (ev != RESP_EV_AGAIN)
                goto event;
            continue;

        case RS_NUM:
            if (ch >= '0' && ch <= '9') {
                unsigned d = (unsigned)(ch - '0');
                uint64_t l = p->neg ? RESP_INT64_NEG_LIM : (uint64_t)INT64_MAX;

                if (p->num > l / 10 || (p->num == l / 10 && d > l % 10)) {
                    p->err = rsp_num_err(p->cur);
                    goto error;
                }
                p->num = p->num * 10 + d;
                if (p->ndig < UINT8_MAX)
                    p->ndig++;
            } else if (ch == '-' && p->ndig == 0 && !p->neg) {
                p->neg = true;
            } else if (ch == '\r' && p->ndig > 0) {
                p->state = RS_NUM_LF;
            } else {
                p->err = rsp_num_err(p->cur);
                goto error;
            }
            break;

        case RS_NUM_LF:
            if (ch != '\n') {
                p->err = resp_err_line;
                goto error;
            }
            i++;
            off++;
            if (p->neg)
                v = p->num == RESP_INT64_NEG_LIM ? INT64_MIN : -(int64_t)p->num;
            else
                v = (int64_t)p->num;

            /* validate, and publish the value before any level is pushed */
            switch (p->cur) {
            case ':':
                break;
            case '$': case '*':
                if (v < -1) {
                    p->err = rsp_num_err(p->cur);
                    goto error;
                }
                break;
            case '%': case '|':
                if (v < 0 || v > INT64_MAX / 2) {
                    p->err = resp_err_mbulk;
                    goto error;
                }
                break;
            default:
                if (v < 0) {
                    p->err = rsp_num_err(p->cur);
                    goto error;
                }
                break;
            }
            if (p->cur != '|') {
                if (p->depth == 0)
                    p->ival = v;
                else if (rsp_at_elem(p))
                    p->elem_ival = v;
            }

            switch (p->cur) {
            case ':':
                ev = rsp_value_done(p);
                break;
            case '$': case '!': case '=':
                if (v < 0) {
                    ev = rsp_value_done(p);         /* "$-1": null bulk */
                    break;
                }
                p->left = (uint64_t)v;
                p->state = v > 0 ? RS_BLOB : RS_BLOB_CR;
                continue;
            default:
                if (v < 0) {
                    ev = rsp_value_done(p);         /* "*-1": null array */
                    break;
                }
                if (p->depth >= maxd) {
                    p->err = resp_err_depth;
                    goto error;
                }
                cnt = (uint64_t)v;
                if (p->cur == '%' || p->cur == '|')
                    cnt *= 2;
                if (cnt == 0) {
                    if (p->cur == '|') {
                        p->state = RS_TYPE;         /* empty attribute: nothing to count */
                        continue;
                    }
                    ev = rsp_value_done(p);         /* empty aggregate */
                    break;
                }
                p->stack[p->depth++] = cnt | (p->cur == '|' ? RSP_ATTR : 0);
                p->state = RS_TYPE;
                continue;
            }
            if (ev != RESP_EV_AGAIN)
                goto event;
            continue;

        case RS_BLOB_CR:
            if (ch != '\r') {
                p->err = resp_err_line;
                goto error;
            }
            p->state = RS_BLOB_LF;
            break;

        case RS_BLOB_LF:
            if (ch != '\n') {
                p->err = resp_err_line;
                goto error;
            }
            i++;
            off++;
            ev = rsp_value_done(p);
            if (ev != RESP_EV_AGAIN)
                goto event;
            continue;

        default:
            p->err = resp_err_type;
            goto error;
        }

        i++;
        off++;
    }

    *used = i;
    p->off = off;
    return RESP_EV_AGAIN;

event:
    if (ev == RESP_EV_ARG) {
        el->pos = p->elem_pos;
        el->len = off - p->elem_pos;
        el->type = p->elem_type;
        el->ival = p->elem_ival;
        p->in_elem = false;
        p->nelem++;
    }
    *used = i;
    p->off = off;
    return ev;

error:
    p->state = RS_ERROR;
    *used = i;
    p->off = off;
    return RESP_EV_ERROR;
}

/* ------------------------------------------------------------------- helpers */

/* Redis's string2ll grammar on s[0..len); true and *v on success, *v untouched otherwise. */
bool
resp_parse_int64(const uint8_t *s, size_t len, int64_t *v)
{
    bool neg = false;
    uint64_t num = 0;
    uint64_t lim;
    size_t i = 0;

    if (len == 0)
        return false;
    if (len == 1 && s[0] == '0') {
        *v = 0;
        return true;
    }
    if (s[0] == '-') {
        neg = true;
        i = 1;
    }
    if (i == len || s[i] < '1' || s[i] > '9')
        return false;
    lim = neg ? RESP_INT64_NEG_LIM : (uint64_t)INT64_MAX;
    for (; i < len; i++) {
        unsigned d;

        if (s[i] < '0' || s[i] > '9')
            return false;
        d = (unsigned)(s[i] - '0');
        if (num > lim / 10 || (num == lim / 10 && d > lim % 10))
            return false;
        num = num * 10 + d;
    }
    if (neg)
        *v = num == RESP_INT64_NEG_LIM ? INT64_MIN : -(int64_t)num;
    else
        *v = (int64_t)num;
    return true;
}
