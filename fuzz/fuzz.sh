#!/bin/sh
# fuzz/fuzz.sh: builds the libFuzzer targets and runs each for a while (make fuzz, make fuzz-ci).
#
#   sh fuzz/fuzz.sh build OUT                     build every target into OUT/
#   sh fuzz/fuzz.sh run OUT SECONDS [TARGET...]   run each target SECONDS seconds
#
# A target is rebuilt when one of its sources is newer than it. Each run reads the seed
# corpus fuzz/corpus/TARGET/ (never written) and keeps what it learns in OUT/corpus/TARGET/;
# a crash leaves its input in OUT/artifacts/TARGET/ and the log in OUT/TARGET.log. Every
# target runs even after one fails; the exit status is 1 when any failed. Seed files named
# crash-* are reproducers of known bugs: they fail the run until the bug is fixed.
# Environment: FUZZ_CC (default clang), FUZZ_FLAGS (extra compiler flags).
set -eu
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"

cd "$(dirname "$0")/.."

TARGETS="fuzz_resp_req fuzz_resp_rsp fuzz_mc_req fuzz_mc_rsp fuzz_redis_msg fuzz_mc_msg fuzz_conf"
CC_FUZZ="${FUZZ_CC:-clang}"
CFLAGS_FUZZ="-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
 -fno-sanitize-recover=all -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
 -Isrc -Ifuzz ${FUZZ_FLAGS:-}"

# The project sources each target links.
sources() {
    case "$1" in
    fuzz_resp_req|fuzz_resp_rsp) echo "src/proto/resp.c" ;;
    fuzz_mc_req|fuzz_mc_rsp)     echo "src/proto/mc.c src/core/common.c" ;;
    fuzz_redis_msg)              echo "src/proto/redis.c src/proto/redis_keyspace.c src/proto/redis_local.c src/proto/redis_pubsub.c src/proto/redis_session.c src/proto/redis_stream.c src/proto/resp.c src/proto/resp_cmd.c
                                       src/proto/msg.c src/proto/proto.c src/proto/reader.c src/core/buf.c
                                       src/core/common.c" ;;
    fuzz_mc_msg)                 echo "src/proto/memcache.c src/proto/memcache_admin.c src/proto/mc.c
                                       src/proto/msg.c src/proto/proto.c src/proto/reader.c src/core/buf.c
                                       src/core/common.c" ;;
    fuzz_conf)                   echo "src/config/conf.c src/config/conf_yaml.c src/route/hash.c
                                       src/route/md5.c src/route/route.c src/core/common.c" ;;
    *) echo "fuzz.sh: unknown target $1" >&2; exit 2 ;;
    esac
}

libs() {
    case "$1" in
    fuzz_conf) pkg-config --libs yaml-0.1 2>/dev/null || echo "-lyaml" ;;
    *) echo "" ;;
    esac
}

# Largest input per target: room for pipelines and for messages across several segments.
max_len() {
    case "$1" in
    fuzz_redis_msg|fuzz_mc_msg) echo 8192 ;;
    *) echo 4096 ;;
    esac
}

build() {
    out="$1"
    mkdir -p "$out"
    for t in $TARGETS; do
        src="fuzz/$t.c $(sources "$t")"
        bin="$out/$t"
        stale=0
        if [ ! -x "$bin" ]; then
            stale=1
        else
            for f in $src fuzz/fuzz_util.h fuzz/fuzz_msg.h src/*/*.h fuzz/fuzz.sh; do
                if [ "$f" -nt "$bin" ]; then stale=1; break; fi
            done
        fi
        if [ "$stale" = 1 ]; then
            echo "fuzz: building $bin"
            # shellcheck disable=SC2086
            $CC_FUZZ $CFLAGS_FUZZ -o "$bin" $src $(libs "$t")
        fi
    done
}

run() {
    out="$1"
    secs="$2"
    shift 2
    list="${*:-$TARGETS}"
    failed=""
    for t in $list; do
        mkdir -p "$out/corpus/$t" "$out/artifacts/$t"
        log="$out/$t.log"
        echo "fuzz: $t for ${secs}s (log $log)"
        if "$out/$t" -max_total_time="$secs" -max_len="$(max_len "$t")" -dict="fuzz/$t.dict" \
                -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
                -artifact_prefix="$out/artifacts/$t/" \
                "$out/corpus/$t" "fuzz/corpus/$t" >"$log" 2>&1; then
            last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
            rate=$(grep -E '^stat::average_exec_per_sec' "$log" | sed 's/.*: *//')
            echo "fuzz: $t ok: ${last:-no status line} | exec/s $rate"
        else
            echo "fuzz: $t FAILED; the end of its log:"
            grep -E 'ERROR|SUMMARY|runtime error|check failed|Test unit written|^    #[0-9]' "$log" \
                | head -n 40 || true
            failed="$failed $t"
        fi
    done
    if [ -n "$failed" ]; then
        echo "fuzz: failed:$failed"
        return 1
    fi
    return 0
}

case "${1:-}" in
build) build "${2:?output directory}" ;;
run)   shift; out="${1:?output directory}"; secs="${2:?seconds}"; shift 2; run "$out" "$secs" "$@" ;;
*)     echo "usage: $0 build OUT | run OUT SECONDS [TARGET...]" >&2; exit 2 ;;
esac
