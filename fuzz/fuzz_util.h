/* fuzz/fuzz_util.h: what the libFuzzer targets share: checks, a seeded PRNG, chunked feeding and event logs. */
#ifndef KM_FUZZ_UTIL_H
#define KM_FUZZ_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Every target feeds one input to a resumable tokenizer several ways (whole, in chunks
 * whose sizes come from a PRNG seeded by the input's first bytes, byte by byte) and
 * demands the same event log from each. A chunk is copied to the end of a heap buffer of
 * exactly the input's size, so a tokenizer that reads past the n bytes it was given
 * reads past the allocation and AddressSanitizer stops it. A broken invariant prints
 * what was seen and aborts, which libFuzzer reports as a crash with the input saved.
 */

/* Fail the run with a message when c is false. */
#define FZ_CHECK(c, ...)                                                        \
    do {                                                                        \
        if (__builtin_expect(!(c), 0))                                          \
            fz_fail(__FILE__, __LINE__, #c, __VA_ARGS__);                       \
    } while (0)

static void fz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 4, 5)));

static void
fz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "\nfuzz check failed at %s:%d: %s\n  ", file, line, cond);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

/* ------------------------------------------------------------------- PRNG */

struct fz_rng {
    uint64_t s;
};

/* Seed from the first (at most 8) bytes of the input and a salt naming the use. */
static inline void
fz_rng_seed(struct fz_rng *r, const uint8_t *data, size_t size, uint64_t salt)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ salt;

    for (size_t i = 0; i < size && i < 8; i++) {
        h ^= data[i];
        h *= 0x100000001b3ULL;
    }
    r->s = h ^ (uint64_t)size;
}

/* splitmix64 */
static inline uint64_t
fz_rand(struct fz_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A value in [0, n), n > 0. */
static inline uint64_t
fz_below(struct fz_rng *r, uint64_t n)
{
    return fz_rand(r) % n;
}

/* A chunk size for `left` bytes: mostly small, sometimes 0, sometimes everything. */
static inline size_t
fz_chunk_len(struct fz_rng *r, size_t left)
{
    size_t k;

    switch (fz_below(r, 8)) {
    case 0: k = 0; break;
    case 1: case 2: k = 1; break;
    case 3: k = 1 + (size_t)fz_below(r, 4); break;
    case 4: k = 1 + (size_t)fz_below(r, 16); break;
    case 5: k = 1 + (size_t)fz_below(r, 128); break;
    default: k = left; break;
    }
    return k < left ? k : left;
}

/* ---------------------------------------------------------- chunked feeding */

enum fz_mode {
    FZ_WHOLE,   /* one chunk */
    FZ_RANDOM,  /* PRNG-sized chunks, empty ones included */
    FZ_BYTES,   /* one byte at a time */
    FZ_NMODES
};

/* Walks an input chunk by chunk; the current chunk sits at the end of a private buffer. */
struct fz_feed {
    const uint8_t *in;       /* the whole input */
    size_t len;
    enum fz_mode mode;
    struct fz_rng rng;
    uint8_t *buf;            /* len bytes (1 when len is 0) */
    size_t start;            /* input offset of the current chunk */
    size_t clen;             /* its length */
    size_t done;             /* bytes of it consumed */
    bool started;
};

static inline void
fz_feed_init(struct fz_feed *f, const uint8_t *in, size_t len, enum fz_mode mode, uint64_t salt)
{
    memset(f, 0, sizeof(*f));
    f->in = in;
    f->len = len;
    f->mode = mode;
    fz_rng_seed(&f->rng, in, len, salt);
    f->buf = malloc(len > 0 ? len : 1);
    if (f->buf == NULL)
        abort();
}

static inline void
fz_feed_free(struct fz_feed *f)
{
    free(f->buf);
    f->buf = NULL;
}

/* Step to the next chunk (it may be empty in FZ_RANDOM); false when the input is used up. */
static inline bool
fz_feed_next(struct fz_feed *f)
{
    size_t left;

    if (f->started)
        f->start += f->clen;
    f->started = true;
    f->clen = 0;
    f->done = 0;
    left = f->len - f->start;
    if (left == 0)
        return false;
    switch (f->mode) {
    case FZ_WHOLE:  f->clen = left; break;
    case FZ_BYTES:  f->clen = 1; break;
    default:        f->clen = fz_chunk_len(&f->rng, left); break;
    }
    memcpy(f->buf + (f->len - f->clen), f->in + f->start, f->clen);
    return true;
}

/* The unconsumed bytes of the current chunk, and how many. */
static inline const uint8_t *
fz_feed_ptr(const struct fz_feed *f, size_t *n)
{
    *n = f->clen - f->done;
    return f->buf + (f->len - f->clen) + f->done;
}

/* Input offset of the next unconsumed byte. */
static inline size_t
fz_feed_pos(const struct fz_feed *f)
{
    return f->start + f->done;
}

/* A tokenizer took `used` of the `n` bytes it was offered and now counts `ml` bytes of the
 * message so far: check both against the feed, advance it, and return the input offset of
 * the next unconsumed byte (the message starts ml bytes before it). */
static inline uint64_t
fz_feed_consumed(struct fz_feed *f, size_t used, size_t n, uint64_t ml)
{
    FZ_CHECK(used <= n, "used %zu of %zu", used, n);
    f->done += used;
    uint64_t pos = fz_feed_pos(f);
    FZ_CHECK(ml <= pos, "msglen %llu beyond the %llu bytes consumed", (unsigned long long)ml,
             (unsigned long long)pos);
    return pos;
}

/* The tokenizer asked for more: it must have taken every byte offered. Moves to the next
 * chunk; false when the input is used up. */
static inline bool
fz_feed_again(struct fz_feed *f, size_t used, size_t n, bool *more)
{
    FZ_CHECK(used == n, "AGAIN after %zu of %zu bytes", used, n);
    if (!*more)
        return false;
    *more = fz_feed_next(f);
    return true;
}

/* ------------------------------------------------------------- event logs */

/* One event as a target records it; unused fields stay zero so logs compare bytewise. */
struct fz_ev {
    int32_t kind;
    int32_t aux;             /* a target-defined small value (a type byte, a flag) */
    uint64_t at;             /* input offset of the message the event belongs to */
    uint64_t a, b, c;        /* target-defined */
    const char *err;         /* reason of an error event (static strings compare by pointer) */
};

struct fz_log {
    struct fz_ev *ev;
    size_t n, cap;
};

static inline void
fz_log_add(struct fz_log *l, int kind, int aux, uint64_t at, uint64_t a, uint64_t b, uint64_t c,
           const char *err)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct fz_ev *n = realloc(l->ev, cap * sizeof(*n));
        if (n == NULL)
            abort();
        l->ev = n;
        l->cap = cap;
    }
    struct fz_ev *e = &l->ev[l->n++];
    memset(e, 0, sizeof(*e));
    e->kind = kind;
    e->aux = aux;
    e->at = at;
    e->a = a;
    e->b = b;
    e->c = c;
    e->err = err;
}

static inline void
fz_log_free(struct fz_log *l)
{
    free(l->ev);
    memset(l, 0, sizeof(*l));
}

/* Abort with both logs shown when they differ. */
static inline void
fz_log_same(const struct fz_log *x, const char *xname, const struct fz_log *y, const char *yname)
{
    size_t n = x->n < y->n ? x->n : y->n;
    size_t i;

    for (i = 0; i < n; i++) {
        if (memcmp(&x->ev[i], &y->ev[i], sizeof(x->ev[i])) != 0)
            break;
    }
    if (i == n && x->n == y->n)
        return;
    fprintf(stderr, "\nevent logs differ at event %zu (%s: %zu events, %s: %zu events)\n", i,
            xname, x->n, yname, y->n);
    for (size_t k = i >= 3 ? i - 3 : 0; k < i + 3; k++) {
        for (int w = 0; w < 2; w++) {
            const struct fz_log *l = w == 0 ? x : y;
            if (k >= l->n)
                continue;
            const struct fz_ev *e = &l->ev[k];
            fprintf(stderr, "  %s[%zu]: kind %d aux %d at %llu a %llu b %llu c %llu err %s\n",
                    w == 0 ? xname : yname, k, e->kind, e->aux, (unsigned long long)e->at,
                    (unsigned long long)e->a, (unsigned long long)e->b,
                    (unsigned long long)e->c, e->err ? e->err : "-");
        }
    }
    abort();
}

/* A target's feeding of one input in one mode, recording events into lg. */
typedef void (*fz_run_fn)(const uint8_t *in, size_t len, enum fz_mode mode, struct fz_log *lg,
                          void *arg);

/* Feed the input whole, in random chunks and byte by byte; the three event logs must be
 * identical. */
static inline void
fz_run_modes(const uint8_t *in, size_t len, fz_run_fn run, void *arg)
{
    struct fz_log logs[FZ_NMODES];
    static const char *const names[FZ_NMODES] = { "whole", "random chunks", "byte by byte" };

    memset(logs, 0, sizeof(logs));
    for (int m = 0; m < FZ_NMODES; m++)
        run(in, len, (enum fz_mode)m, &logs[m], arg);
    for (int m = 1; m < FZ_NMODES; m++)
        fz_log_same(&logs[0], names[0], &logs[m], names[m]);
    for (int m = 0; m < FZ_NMODES; m++)
        fz_log_free(&logs[m]);
}

#endif
