/* tests/unit/test_hash.c: the twelve key hashes and MD5 against vectors from independent references. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "route/hash.h"

struct hash_vector {
    enum hash_type type;
    const char *key;
    size_t len;
    uint32_t want;
};

static void
check_vectors(const struct hash_vector *v, size_t n, const char *source)
{
    int bad = 0;

    for (size_t i = 0; i < n; i++) {
        uint32_t got = hash_key(v[i].type, (const uint8_t *)v[i].key, v[i].len);

        if (got != v[i].want) {
            fprintf(stderr, "%s: %s of %zu-byte key (hex", source, hash_name(v[i].type), v[i].len);
            for (size_t j = 0; j < v[i].len; j++) {
                fprintf(stderr, " %02x", (uint8_t)v[i].key[j]);
            }
            fprintf(stderr, "): want 0x%08x, got 0x%08x\n", v[i].want, got);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

/* RFC 1321 appendix A.5 test suite, plus padding edges checked with Python's hashlib. */
static void
test_md5_rfc1321(void **state)
{
    static const struct {
        const char *msg;
        size_t repeat;   /* msg repeated this many times */
        const char *hex;
    } v[] = {
        { "", 1, "d41d8cd98f00b204e9800998ecf8427e" },
        { "a", 1, "0cc175b9c0f1b6a831c399e269772661" },
        { "abc", 1, "900150983cd24fb0d6963f7d28e17f72" },
        { "message digest", 1, "f96b697d7cb7938d525a2f31aaf161d0" },
        { "abcdefghijklmnopqrstuvwxyz", 1, "c3fcd3d76192e4007dfb496cca67e13b" },
        { "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", 1,
          "d174ab98d277d9f5a5611c2c9f419d9f" },
        { "1234567890", 8, "57edf4a22be3c955ac49da2e2107b67a" },
        { "a", 55, "ef1772b6dff9a122358552954ad0df65" },
        { "a", 56, "3b0c8ac703f828b04c6c197006d17218" },
        { "a", 63, "b06521f39153d618550606be297466d5" },
        { "a", 64, "014842d480b571495a4a0363793f7367" },
        { "a", 65, "c743a45e0d2e6a95cb859adae0248435" },
        { "a", 1000, "cabe45dcc9ae5b66ba86600cca6b8ba8" },
    };
    uint8_t buf[1000];

    (void)state;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        size_t mlen = strlen(v[i].msg), len = mlen * v[i].repeat;
        uint8_t digest[16];
        char hex[33];

        assert_true(len <= sizeof(buf));
        for (size_t r = 0; r < v[i].repeat; r++) {
            memcpy(buf + r * mlen, v[i].msg, mlen);
        }
        hash_md5(buf, len, digest);
        for (int j = 0; j < 16; j++) {
            snprintf(hex + 2 * j, 3, "%02x", digest[j]);
        }
        assert_string_equal(hex, v[i].hex);
    }
}

/*
 * Published check values: CRC-32 of "123456789" (the CRC catalogue), FNV from the FNV authors' test vectors (the 64-bit variants
 * keep the low 32 bits), one-at-a-time from its published examples, and the
 * md5 key hash = first digest word, little-endian.
 */
static void
test_published_vectors(void **state)
{
    static const struct hash_vector v[] = {
        { HASH_CRC32A, "123456789", 9, 0xcbf43926u },
        { HASH_CRC32A, "", 0, 0x00000000u },
        { HASH_CRC32, "123456789", 9, (0xcbf43926u >> 16) & 0x7fff },
        { HASH_CRC16, "", 0, 0x0000u },
        { HASH_FNV1_32, "", 0, 0x811c9dc5u },
        { HASH_FNV1_32, "a", 1, 0x050c5d7eu },
        { HASH_FNV1_32, "foobar", 6, 0x31f0b262u },
        { HASH_FNV1A_32, "", 0, 0x811c9dc5u },
        { HASH_FNV1A_32, "a", 1, 0xe40c292cu },
        { HASH_FNV1A_32, "foobar", 6, 0xbf9cf968u },
        { HASH_FNV1_64, "", 0, 0x84222325u },          /* 0xcbf29ce484222325 */
        { HASH_FNV1_64, "a", 1, 0x8601b7beu },         /* 0xaf63bd4c8601b7be */
        { HASH_FNV1_64, "foobar", 6, 0xa4dda9c2u },    /* 0x340d8765a4dda9c2 */
        { HASH_FNV1A_64, "", 0, 0x84222325u },
        { HASH_FNV1A_64, "a", 1, 0x8601ec8cu },        /* 0xaf63dc4c8601ec8c */
        { HASH_FNV1A_64, "foobar", 6, 0xf73967e8u },   /* 0x85944171f73967e8 */
        { HASH_ONE_AT_A_TIME, "a", 1, 0xca2e9442u },
        { HASH_ONE_AT_A_TIME, "The quick brown fox jumps over the lazy dog", 43, 0x519e91f5u },
        { HASH_MD5, "", 0, 0xd98c1dd4u },              /* d4 1d 8c d9 ... */
        { HASH_MD5, "abc", 3, 0x98500190u },           /* 90 01 50 98 ... */
    };

    (void)state;
    check_vectors(v, sizeof(v) / sizeof(v[0]), "published");
}

/*
 * twemproxy 0.5.0's crc16 keeps a 32-bit running value unmasked; its low 16
 * bits must be the CRC-16/XMODEM check value of "123456789" (0x31C3), and the
 * upper bits must be in use (the full value is pinned by the crc16 configs of
 * the nutcracker placement table).
 */
static void
test_crc16_low_bits_are_xmodem(void **state)
{
    uint32_t h = hash_key(HASH_CRC16, (const uint8_t *)"123456789", 9);

    (void)state;
    assert_int_equal(h & 0xffff, 0x31c3);
    assert_int_not_equal(h >> 16, 0);
    assert_int_equal(hash_key(HASH_CRC16, (const uint8_t *)"A", 1), 0x58e5);   /* XMODEM("A") */
}

/*
 * Computed with libmemcached's libhashkit 1.1.4 (Debian libhashkit2), whose
 * functions twemproxy's hashkit descends from, through Python ctypes. Its
 * hsieh is compiled out and it has no crc16; those two are checked by the
 * nutcracker placement table in test_route.c. The keys with bytes >= 0x80
 * pin the signed-char reads of one_at_a_time and the fnv family.
 */
static void
test_libhashkit_vectors(void **state)
{
    static const struct hash_vector v[] = {
        { HASH_ONE_AT_A_TIME, "", 0, 0x00000000u },
        { HASH_ONE_AT_A_TIME, "a", 1, 0xca2e9442u },
        { HASH_ONE_AT_A_TIME, "ab", 2, 0x45e61e58u },
        { HASH_ONE_AT_A_TIME, "abc", 3, 0xed131f5bu },
        { HASH_ONE_AT_A_TIME, "abcd", 4, 0xcd8b6206u },
        { HASH_ONE_AT_A_TIME, "hello", 5, 0xc8fd181bu },
        { HASH_ONE_AT_A_TIME, "123456789", 9, 0xc66b58c5u },
        { HASH_ONE_AT_A_TIME, "foobar", 6, 0xf952fde7u },
        { HASH_ONE_AT_A_TIME, "The quick brown fox jumps over the lazy dog", 43, 0x519e91f5u },
        { HASH_ONE_AT_A_TIME, "abcdefghijkl", 12, 0x605b0340u },
        { HASH_ONE_AT_A_TIME, "abcdefghijklm", 13, 0x6d99f6dcu },
        { HASH_ONE_AT_A_TIME, "user:1000:profile:settings", 26, 0x2a086e4cu },
        { HASH_ONE_AT_A_TIME, "\x80", 1, 0xc31d4e27u },
        { HASH_ONE_AT_A_TIME, "\xff\xfe", 2, 0xdb2cb862u },
        { HASH_ONE_AT_A_TIME, "ab\xff", 3, 0x0603d118u },
        { HASH_ONE_AT_A_TIME, "\xe9t\xe9!", 4, 0x52acdd28u },
        { HASH_ONE_AT_A_TIME, "k\x00y\x01\x7f\x80\x81", 7, 0x6aa99ad1u },
        { HASH_MD5, "", 0, 0xd98c1dd4u },
        { HASH_MD5, "a", 1, 0xb975c10cu },
        { HASH_MD5, "ab", 2, 0x43f47e18u },
        { HASH_MD5, "abc", 3, 0x98500190u },
        { HASH_MD5, "abcd", 4, 0x4c71fce2u },
        { HASH_MD5, "hello", 5, 0x2a40415du },
        { HASH_MD5, "123456789", 9, 0x94e7f925u },
        { HASH_MD5, "foobar", 6, 0x22f65838u },
        { HASH_MD5, "The quick brown fox jumps over the lazy dog", 43, 0x9d7d109eu },
        { HASH_MD5, "abcdefghijkl", 12, 0x06d6c99fu },
        { HASH_MD5, "abcdefghijklm", 13, 0xd1bdae22u },
        { HASH_MD5, "user:1000:profile:settings", 26, 0x59f34281u },
        { HASH_MD5, "\x80", 1, 0x7edd398du },
        { HASH_MD5, "\xff\xfe", 2, 0x0157b2f3u },
        { HASH_MD5, "ab\xff", 3, 0x82abbd74u },
        { HASH_MD5, "\xe9t\xe9!", 4, 0xfdb11fb4u },
        { HASH_MD5, "k\x00y\x01\x7f\x80\x81", 7, 0xa9a817f4u },
        { HASH_CRC32, "", 0, 0x00000000u },
        { HASH_CRC32, "a", 1, 0x000068b7u },
        { HASH_CRC32, "ab", 2, 0x00001e83u },
        { HASH_CRC32, "abc", 3, 0x00003524u },
        { HASH_CRC32, "abcd", 4, 0x00006d82u },
        { HASH_CRC32, "hello", 5, 0x00003610u },
        { HASH_CRC32, "123456789", 9, 0x00004bf4u },
        { HASH_CRC32, "foobar", 6, 0x00001ef6u },
        { HASH_CRC32, "The quick brown fox jumps over the lazy dog", 43, 0x0000414fu },
        { HASH_CRC32, "abcdefghijkl", 12, 0x00007678u },
        { HASH_CRC32, "abcdefghijklm", 13, 0x00005df4u },
        { HASH_CRC32, "user:1000:profile:settings", 26, 0x00001a09u },
        { HASH_CRC32, "\x80", 1, 0x00003fbau },
        { HASH_CRC32, "\xff\xfe", 2, 0x000008f8u },
        { HASH_CRC32, "ab\xff", 3, 0x00004c9du },
        { HASH_CRC32, "\xe9t\xe9!", 4, 0x00001a1eu },
        { HASH_CRC32, "k\x00y\x01\x7f\x80\x81", 7, 0x00002632u },
        { HASH_FNV1_64, "", 0, 0x84222325u },
        { HASH_FNV1_64, "a", 1, 0x8601b7beu },
        { HASH_FNV1_64, "ab", 2, 0xb4eb37b8u },
        { HASH_FNV1_64, "abc", 3, 0x6bafadcbu },
        { HASH_FNV1_64, "abcd", 4, 0xfb844f95u },
        { HASH_FNV1_64, "hello", 5, 0xbdbdd4c7u },
        { HASH_FNV1_64, "123456789", 9, 0x2bf916d6u },
        { HASH_FNV1_64, "foobar", 6, 0xa4dda9c2u },
        { HASH_FNV1_64, "The quick brown fox jumps over the lazy dog", 43, 0x7de37aceu },
        { HASH_FNV1_64, "abcdefghijkl", 12, 0xda7a6075u },
        { HASH_FNV1_64, "abcdefghijklm", 13, 0x3df1e6a2u },
        { HASH_FNV1_64, "user:1000:profile:settings", 26, 0x71c44fd5u },
        { HASH_FNV1_64, "\x80", 1, 0x79fe485fu },
        { HASH_FNV1_64, "\xff\xfe", 2, 0xb4eb719eu },
        { HASH_FNV1_64, "ab\xff", 3, 0x94505257u },
        { HASH_FNV1_64, "\xe9t\xe9!", 4, 0x36e8b5b0u },
        { HASH_FNV1_64, "k\x00y\x01\x7f\x80\x81", 7, 0x99360604u },
        { HASH_FNV1A_64, "", 0, 0x84222325u },
        { HASH_FNV1A_64, "a", 1, 0x8601ec8cu },
        { HASH_FNV1A_64, "ab", 2, 0xb545986au },
        { HASH_FNV1A_64, "abc", 3, 0x0541574bu },
        { HASH_FNV1A_64, "abcd", 4, 0xee0724ddu },
        { HASH_FNV1A_64, "hello", 5, 0x80aabd0bu },
        { HASH_FNV1A_64, "123456789", 9, 0x23c6cdfcu },
        { HASH_FNV1A_64, "foobar", 6, 0xf73967e8u },
        { HASH_FNV1A_64, "The quick brown fox jumps over the lazy dog", 43, 0xe7e47110u },
        { HASH_FNV1A_64, "abcdefghijkl", 12, 0xe05a5cb5u },
        { HASH_FNV1A_64, "abcdefghijklm", 13, 0x398bc308u },
        { HASH_FNV1A_64, "user:1000:profile:settings", 26, 0x4b2ebe0du },
        { HASH_FNV1A_64, "\x80", 1, 0x79fdec5fu },
        { HASH_FNV1A_64, "\xff\xfe", 2, 0xb4ee4fb0u },
        { HASH_FNV1A_64, "ab\xff", 3, 0xfabe022fu },
        { HASH_FNV1A_64, "\xe9t\xe9!", 4, 0xd32e1f6eu },
        { HASH_FNV1A_64, "k\x00y\x01\x7f\x80\x81", 7, 0x8677c6feu },
        { HASH_FNV1_32, "", 0, 0x811c9dc5u },
        { HASH_FNV1_32, "a", 1, 0x050c5d7eu },
        { HASH_FNV1_32, "ab", 2, 0x70772d38u },
        { HASH_FNV1_32, "abc", 3, 0x439c2f4bu },
        { HASH_FNV1_32, "abcd", 4, 0xb9de7375u },
        { HASH_FNV1_32, "hello", 5, 0xb6fa7167u },
        { HASH_FNV1_32, "123456789", 9, 0x24148816u },
        { HASH_FNV1_32, "foobar", 6, 0x31f0b262u },
        { HASH_FNV1_32, "The quick brown fox jumps over the lazy dog", 43, 0xe9c86c6eu },
        { HASH_FNV1_32, "abcdefghijkl", 12, 0x65adc2d5u },
        { HASH_FNV1_32, "abcdefghijklm", 13, 0xe589b522u },
        { HASH_FNV1_32, "user:1000:profile:settings", 26, 0xf9277cb5u },
        { HASH_FNV1_32, "\x80", 1, 0xfaf3a29fu },
        { HASH_FNV1_32, "\xff\xfe", 2, 0x1276995eu },
        { HASH_FNV1_32, "ab\xff", 3, 0xbc63d0d7u },
        { HASH_FNV1_32, "\xe9t\xe9!", 4, 0xd7c6ded0u },
        { HASH_FNV1_32, "k\x00y\x01\x7f\x80\x81", 7, 0x23c2c6a4u },
        { HASH_FNV1A_32, "", 0, 0x811c9dc5u },
        { HASH_FNV1A_32, "a", 1, 0xe40c292cu },
        { HASH_FNV1A_32, "ab", 2, 0x4d2505cau },
        { HASH_FNV1A_32, "abc", 3, 0x1a47e90bu },
        { HASH_FNV1A_32, "abcd", 4, 0xce3479bdu },
        { HASH_FNV1A_32, "hello", 5, 0x4f9f2cabu },
        { HASH_FNV1A_32, "123456789", 9, 0xbb86b11cu },
        { HASH_FNV1A_32, "foobar", 6, 0xbf9cf968u },
        { HASH_FNV1A_32, "The quick brown fox jumps over the lazy dog", 43, 0x048fff90u },
        { HASH_FNV1A_32, "abcdefghijkl", 12, 0xe8fb3e15u },
        { HASH_FNV1A_32, "abcdefghijklm", 13, 0x3b8356e8u },
        { HASH_FNV1A_32, "user:1000:profile:settings", 26, 0x074f95edu },
        { HASH_FNV1A_32, "\x80", 1, 0x04f3b29fu },
        { HASH_FNV1A_32, "\xff\xfe", 2, 0x35790f10u },
        { HASH_FNV1A_32, "ab\xff", 3, 0xc3b7e16fu },
        { HASH_FNV1A_32, "\xe9t\xe9!", 4, 0x1d49c2aeu },
        { HASH_FNV1A_32, "k\x00y\x01\x7f\x80\x81", 7, 0x1e630dfeu },
        { HASH_MURMUR, "", 0, 0x00000000u },
        { HASH_MURMUR, "a", 1, 0x4b41757cu },
        { HASH_MURMUR, "ab", 2, 0xe3b54dfbu },
        { HASH_MURMUR, "abc", 3, 0x7b0cc428u },
        { HASH_MURMUR, "abcd", 4, 0xef6a86afu },
        { HASH_MURMUR, "hello", 5, 0x521b0bffu },
        { HASH_MURMUR, "123456789", 9, 0xb7760690u },
        { HASH_MURMUR, "foobar", 6, 0xabecff17u },
        { HASH_MURMUR, "The quick brown fox jumps over the lazy dog", 43, 0x30c79125u },
        { HASH_MURMUR, "abcdefghijkl", 12, 0xb805134au },
        { HASH_MURMUR, "abcdefghijklm", 13, 0x2987d8bbu },
        { HASH_MURMUR, "user:1000:profile:settings", 26, 0x0f27f77cu },
        { HASH_MURMUR, "\x80", 1, 0x90556245u },
        { HASH_MURMUR, "\xff\xfe", 2, 0x0693f8a9u },
        { HASH_MURMUR, "ab\xff", 3, 0xec9082b2u },
        { HASH_MURMUR, "\xe9t\xe9!", 4, 0x99f59f6bu },
        { HASH_MURMUR, "k\x00y\x01\x7f\x80\x81", 7, 0xe7637d44u },
        { HASH_JENKINS, "", 0, 0xdeadbefcu },
        { HASH_JENKINS, "a", 1, 0xe0a38690u },
        { HASH_JENKINS, "ab", 2, 0xc1b5695bu },
        { HASH_JENKINS, "abc", 3, 0x8f415600u },
        { HASH_JENKINS, "abcd", 4, 0xd512151au },
        { HASH_JENKINS, "hello", 5, 0x2e0cc8f3u },
        { HASH_JENKINS, "123456789", 9, 0x19777af6u },
        { HASH_JENKINS, "foobar", 6, 0x0fdd8b60u },
        { HASH_JENKINS, "The quick brown fox jumps over the lazy dog", 43, 0x12b8163cu },
        { HASH_JENKINS, "abcdefghijkl", 12, 0xfb8b49e3u },
        { HASH_JENKINS, "abcdefghijklm", 13, 0xb621e85fu },
        { HASH_JENKINS, "user:1000:profile:settings", 26, 0x68172b2eu },
        { HASH_JENKINS, "\x80", 1, 0xb16fde48u },
        { HASH_JENKINS, "\xff\xfe", 2, 0x074533ddu },
        { HASH_JENKINS, "ab\xff", 3, 0xe9af676bu },
        { HASH_JENKINS, "\xe9t\xe9!", 4, 0xce292f0bu },
        { HASH_JENKINS, "k\x00y\x01\x7f\x80\x81", 7, 0x2402f435u },
    };

    (void)state;
    check_vectors(v, sizeof(v) / sizeof(v[0]), "libhashkit");
}

/* hash_key reads exactly len bytes: bytes past the end must not matter. */
static void
test_hash_ignores_bytes_past_len(void **state)
{
    uint8_t a[40], b[40];

    (void)state;
    for (size_t len = 0; len <= 24; len++) {
        for (size_t i = 0; i < sizeof(a); i++) {
            a[i] = (uint8_t)(i * 37 + 11);
            b[i] = i < len ? a[i] : (uint8_t)~a[i];
        }
        for (int t = 0; t < HASH_COUNT; t++) {
            uint32_t ha = hash_key((enum hash_type)t, a, len);
            uint32_t hb = hash_key((enum hash_type)t, b, len);

            if (ha != hb) {
                fprintf(stderr, "%s len %zu: 0x%08x vs 0x%08x\n", hash_name((enum hash_type)t),
                        len, ha, hb);
            }
            assert_int_equal(ha, hb);
        }
    }
}

static void
test_hash_names(void **state)
{
    static const char *const names[HASH_COUNT] = {
        "one_at_a_time", "md5", "crc16", "crc32", "crc32a", "fnv1_64",
        "fnv1a_64", "fnv1_32", "fnv1a_32", "hsieh", "murmur", "jenkins",
    };
    static const char *const bad[] = { "", "FNV1A_64", "fnv1a", "fnv1a_64x", "crc", "murmur3",
                                       "ketama" };

    (void)state;
    for (int i = 0; i < HASH_COUNT; i++) {
        assert_int_equal(hash_from_name(names[i], strlen(names[i])), i);
        assert_string_equal(hash_name((enum hash_type)i), names[i]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(hash_from_name(bad[i], strlen(bad[i])), -1);
    }
    /* a length shorter than the string: only the prefix counts */
    assert_int_equal(hash_from_name("md5sum", 3), HASH_MD5);
    assert_int_equal(hash_from_name(NULL, 0), -1);
    assert_null(hash_name(HASH_COUNT));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_md5_rfc1321),
        cmocka_unit_test(test_published_vectors),
        cmocka_unit_test(test_crc16_low_bits_are_xmodem),
        cmocka_unit_test(test_libhashkit_vectors),
        cmocka_unit_test(test_hash_ignores_bytes_past_len),
        cmocka_unit_test(test_hash_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
