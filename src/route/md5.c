/* src/route/md5.c: MD5 (RFC 1321), used by the md5 key hash and by the ketama continuum. */
#include "route/hash.h"

#include <string.h>

/* T[i] = floor(|sin(i + 1)| * 2^32), RFC 1321 section 3.4. */
static const uint32_t md5_t[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee,
    0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be,
    0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa,
    0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
    0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c,
    0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05,
    0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039,
    0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1,
    0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};

/* Left-rotation amounts, four per round. */
static const uint8_t md5_shift[4][4] = {
    { 7, 12, 17, 22 }, { 5, 9, 14, 20 }, { 4, 11, 16, 23 }, { 6, 10, 15, 21 },
};

static inline uint32_t
md5_rotl(uint32_t x, unsigned n)
{
    return (x << n) | (x >> (32 - n));
}

static inline uint32_t
md5_load_le(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static inline void
md5_store_le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* Fold one 64-byte block into the state s[4]. */
static void
md5_block(uint32_t s[4], const uint8_t *block)
{
    uint32_t m[16];
    uint32_t a = s[0], b = s[1], c = s[2], d = s[3];

    for (int i = 0; i < 16; i++) {
        m[i] = md5_load_le(block + 4 * i);
    }

    for (int i = 0; i < 64; i++) {
        int round = i / 16;
        uint32_t f;
        int g;

        switch (round) {
        case 0:
            f = (b & c) | (~b & d);
            g = i;
            break;
        case 1:
            f = (b & d) | (c & ~d);
            g = (5 * i + 1) & 15;
            break;
        case 2:
            f = b ^ c ^ d;
            g = (3 * i + 5) & 15;
            break;
        default:
            f = c ^ (b | ~d);
            g = (7 * i) & 15;
            break;
        }

        uint32_t next = b + md5_rotl(a + f + md5_t[i] + m[g], md5_shift[round][i & 3]);
        a = d;
        d = c;
        c = b;
        b = next;
    }

    s[0] += a;
    s[1] += b;
    s[2] += c;
    s[3] += d;
}

/*
 * Compute the MD5 digest of data[0..len) into digest. No allocation; any
 * length. The digest bytes are in RFC 1321 order (A, B, C, D little-endian).
 */
void
hash_md5(const uint8_t *data, size_t len, uint8_t digest[16])
{
    uint32_t s[4] = { 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476 };
    uint8_t tail[128];
    size_t full = len & ~(size_t)63;
    size_t rest = len - full;
    size_t tail_len;
    uint64_t bits = (uint64_t)len * 8;

    for (size_t off = 0; off < full; off += 64) {
        md5_block(s, data + off);
    }

    /* Padding: 0x80, zeros to 56 mod 64, then the bit length little-endian. */
    memset(tail, 0, sizeof(tail));
    if (rest > 0) {
        memcpy(tail, data + full, rest);
    }
    tail[rest] = 0x80;
    tail_len = rest < 56 ? 64 : 128;
    for (int i = 0; i < 8; i++) {
        tail[tail_len - 8 + i] = (uint8_t)(bits >> (8 * i));
    }
    md5_block(s, tail);
    if (tail_len == 128) {
        md5_block(s, tail + 64);
    }

    for (int i = 0; i < 4; i++) {
        md5_store_le(digest + 4 * i, s[i]);
    }
}
