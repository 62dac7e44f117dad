/* src/route/hash.h: the twelve key hash functions of twemproxy 0.5.0, bit for bit. */
#ifndef KM_ROUTE_HASH_H
#define KM_ROUTE_HASH_H

#include <stddef.h>
#include <stdint.h>

/* Order and names follow twemproxy's `hash:` values. */
enum hash_type {
    HASH_ONE_AT_A_TIME,
    HASH_MD5,
    HASH_CRC16,
    HASH_CRC32,
    HASH_CRC32A,
    HASH_FNV1_64,
    HASH_FNV1A_64,
    HASH_FNV1_32,
    HASH_FNV1A_32,
    HASH_HSIEH,
    HASH_MURMUR,
    HASH_JENKINS,
    HASH_COUNT
};

/*
 * Hash key[0..len) as twemproxy 0.5.0 (x86-64 build) does, including its
 * quirks: crc32 is libmemcached's 15-bit variant, and one_at_a_time, the fnv
 * family and hsieh's 3-byte tail read key bytes as signed char, so bytes >=
 * 0x80 are sign-extended. key may be NULL when len is 0. Pure; no allocation.
 * type must be < HASH_COUNT.
 */
uint32_t hash_key(enum hash_type type, const uint8_t *key, size_t len);

/* The hash_type named name[0..len) ("fnv1a_64", exact case), or -1 if none. */
int hash_from_name(const char *name, size_t len);

/* twemproxy's name for type (static string), or NULL if type is out of range. */
const char *hash_name(enum hash_type type);

/* MD5 (RFC 1321) of data[0..len) into digest. */
void hash_md5(const uint8_t *data, size_t len, uint8_t digest[16]);

#endif
