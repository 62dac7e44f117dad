/* src/proto/memcache.c: the memcached protocol behind struct proto (being written: until it
 * lands, pool_init refuses memcached pools with a clear message). */
#include "proto/proto.h"

const struct proto proto_memcache = { .name = "memcache" };
