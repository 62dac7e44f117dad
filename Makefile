# keymux: GNU Makefile. `make` builds build/keymux; `make test` runs every test.
CC      ?= cc
PKGS    := libevent yaml-0.1
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
           -Isrc $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm
BUILD   ?= build
PREFIX  ?= /usr/local
PYTHON  ?= /usr/bin/python3

SRC      := $(sort $(wildcard src/*/*.c))
LIB_OBJ  := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(SRC))
MAIN_OBJ := $(BUILD)/obj/main.o
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

.PHONY: all deps test test-unit test-integration run install clean

all: $(BUILD)/keymux

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/libkeymux.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/keymux: $(MAIN_OBJ) $(BUILD)/libkeymux.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libkeymux.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -DKM_TEST_DATA=\"$(CURDIR)/tests/data\" -o $@ $< \
	    $(BUILD)/libkeymux.a $(LDLIBS) -lcmocka

deps:
	sh scripts/deps.sh

test: deps
	$(MAKE) test-unit test-integration

test-unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

test-integration: $(BUILD)/keymux
	KEYMUX_BIN=$(CURDIR)/$(BUILD)/keymux $(PYTHON) -m pytest -q tests/integration

# The reload under load at the issue's full size (60 s per worker count; CI runs 6 s).
.PHONY: test-reload-full
test-reload-full: $(BUILD)/keymux
	KEYMUX_RELOAD_LOAD_S=60 KEYMUX_BIN=$(CURDIR)/$(BUILD)/keymux $(PYTHON) -m pytest -q -s \
	    tests/integration/test_reload.py -k under_load

run: deps $(BUILD)/keymux
	sh scripts/run.sh $(BUILD)/keymux

# fault soak: model-checked traffic through keymux while backends are killed/stopped/slowed
SOAK_SECONDS ?= 600
.PHONY: soak
soak: $(BUILD)/keymux
	$(PYTHON) tests/soak/soak.py --keymux $(BUILD)/keymux --duration $(SOAK_SECONDS) $(SOAK_FLAGS)

# The binary, the config (an existing one is kept), the systemd unit and the SysV init
# script; the unit and the script get the binary's path under $(PREFIX).
install: $(BUILD)/keymux
	install -D -m 0755 $(BUILD)/keymux $(DESTDIR)$(PREFIX)/sbin/keymux
	@if [ -e $(DESTDIR)/etc/keymux/keymux.yml ]; then \
	    echo "keeping the existing $(DESTDIR)/etc/keymux/keymux.yml"; \
	else \
	    echo "install -D -m 0644 conf/keymux.yml $(DESTDIR)/etc/keymux/keymux.yml"; \
	    install -D -m 0644 conf/keymux.yml $(DESTDIR)/etc/keymux/keymux.yml; \
	fi
	install -d $(DESTDIR)/lib/systemd/system $(DESTDIR)/etc/init.d
	sed 's|/usr/local/sbin/keymux|$(PREFIX)/sbin/keymux|g' contrib/keymux.service \
	    > $(DESTDIR)/lib/systemd/system/keymux.service
	chmod 0644 $(DESTDIR)/lib/systemd/system/keymux.service
	sed 's|/usr/local/sbin/keymux|$(PREFIX)/sbin/keymux|g' contrib/keymux.init \
	    > $(DESTDIR)/etc/init.d/keymux
	chmod 0755 $(DESTDIR)/etc/init.d/keymux

clean:
	rm -rf $(BUILD)

# keymux against nutcracker, side by side (bench/bench.py; BENCH_QUICK=1 for a short run).
.PHONY: bench
bench: all deps
	@mkdir -p $(BUILD)/bench
	$(CC) -O2 -g -std=gnu11 -Wall -Wextra -Werror -Wshadow -o $(BUILD)/bench/kmload bench/kmload.c
	$(PYTHON) bench/bench.py --keymux $(BUILD)/keymux --loader $(BUILD)/bench/kmload

# The latency histograms' cost: keymux against itself built without them
# (-DKM_NO_HIST), GET and SET at depth 16; in bench.py's table the "nutcracker" column is
# that build here (results in bench/results/hist.json).
.PHONY: bench-hist
bench-hist: all deps
	@mkdir -p $(BUILD)/bench
	$(CC) -O2 -g -std=gnu11 -Wall -Wextra -Werror -Wshadow -o $(BUILD)/bench/kmload bench/kmload.c
	CFLAGS="-O2 -g -DKM_NO_HIST" $(MAKE) BUILD=$(BUILD)-nohist $(BUILD)-nohist/keymux
	BENCH_ONLY=get32_p16,set32_p16 $(PYTHON) bench/bench.py --keymux $(BUILD)/keymux \
	    --nutcracker $(BUILD)-nohist/keymux --loader $(BUILD)/bench/kmload \
	    --out bench/results/hist.json

# Scaling: keymux at 1, 2, 4, 8 workers against nutcracker (bench/scale.py; SCALE_QUICK=1
# for a short run, SCALE_WORKERS=1,2 to pick the counts).
# A long run of reloads: fds and RSS against a warm baseline (PASS / MISS, not asserted).
.PHONY: bench-reload
bench-reload: all
	$(PYTHON) bench/reload_memory.py --keymux $(BUILD)/keymux --reloads $${RELOADS:-1000}

.PHONY: bench-scale
bench-scale: all deps
	@mkdir -p $(BUILD)/bench
	$(CC) -O2 -g -std=gnu11 -Wall -Wextra -Werror -Wshadow -o $(BUILD)/bench/kmload bench/kmload.c
	$(PYTHON) bench/scale.py --keymux $(BUILD)/keymux --loader $(BUILD)/bench/kmload

# Sanitizers: keymux and the unit tests built with ASan + UBSan into build-asan/ (CFLAGS
# goes through the environment so the flags above are still appended), then every unit
# test (each one, even after a failure) and the whole integration suite. A report aborts
# the process (the harness fails the test whose proxy died or crashed at shutdown) and is
# written to $(ASAN_LOGS)/, so that processes whose stderr nobody reads (daemons, piped
# helpers) are caught too: any file there fails the run and is shown. clang by default:
# gcc's UBSan ignores log_path next to ASan.
ASAN_CC     ?= clang
ASAN_BUILD  ?= build-asan
ASAN_CFLAGS ?= -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
ASAN_LOGS   := $(CURDIR)/$(ASAN_BUILD)/sanitizer-logs
ASAN_UNIT   := $(patsubst tests/unit/%.c,$(ASAN_BUILD)/tests/%,$(UNIT_SRC))
.PHONY: test-asan
test-asan: deps
	@rm -rf $(ASAN_LOGS) && mkdir -p $(ASAN_LOGS)
	@export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:log_path=$(ASAN_LOGS)/asan \
	    UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1:log_path=$(ASAN_LOGS)/ubsan \
	    CFLAGS="$(ASAN_CFLAGS)"; \
	rc=0; \
	$(MAKE) -k CC=$(ASAN_CC) BUILD=$(ASAN_BUILD) $(ASAN_UNIT) || rc=1; \
	for t in $(ASAN_UNIT); do \
	    echo "== $$t"; [ -x "$$t" ] && "$$t" || { echo "test-asan: $$t FAILED"; rc=1; }; \
	done; \
	$(MAKE) CC=$(ASAN_CC) BUILD=$(ASAN_BUILD) test-integration || rc=1; \
	for f in $(ASAN_LOGS)/*; do \
	    [ -e "$$f" ] || continue; rc=1; echo "==== sanitizer report $$f"; cat "$$f"; \
	done; \
	[ $$rc = 0 ] && echo "test-asan: passed, no sanitizer report" || echo "test-asan: FAILED"; \
	exit $$rc

# ThreadSanitizer: keymux built with clang -fsanitize=thread into build-tsan/, the unit
# test of the publication domain (reader threads racing a publisher), then the whole
# integration suite with every keymux at TSAN_WORKERS workers (4), then the soak for
# TSAN_SOAK_SECONDS (0 skips it). A report is written to $(TSAN_LOGS)/ (the harness
# also looks for one in each proxy's output): any file there fails the run and is shown.
TSAN_BUILD   ?= build-tsan
TSAN_CFLAGS  ?= -O1 -g -fsanitize=thread -fno-omit-frame-pointer
TSAN_LOGS    := $(CURDIR)/$(TSAN_BUILD)/sanitizer-logs
TSAN_WORKERS ?= 4
TSAN_SOAK_SECONDS ?= 0
.PHONY: test-tsan
test-tsan: deps
	@rm -rf $(TSAN_LOGS) && mkdir -p $(TSAN_LOGS)
	@export TSAN_OPTIONS=halt_on_error=0:second_deadlock_stack=1:log_path=$(TSAN_LOGS)/tsan \
	    CFLAGS="$(TSAN_CFLAGS)"; \
	rc=0; \
	$(MAKE) CC=clang BUILD=$(TSAN_BUILD) $(TSAN_BUILD)/keymux $(TSAN_BUILD)/tests/test_publish || exit 1; \
	$(TSAN_BUILD)/tests/test_publish || rc=1; \
	KEYMUX_WORKERS=$(TSAN_WORKERS) $(MAKE) CC=clang BUILD=$(TSAN_BUILD) test-integration || rc=1; \
	if [ "$(TSAN_SOAK_SECONDS)" != 0 ]; then \
	    $(PYTHON) tests/soak/soak.py --keymux $(TSAN_BUILD)/keymux --workers $(TSAN_WORKERS) \
	        --duration $(TSAN_SOAK_SECONDS) || rc=1; \
	fi; \
	for f in $(TSAN_LOGS)/*; do \
	    [ -e "$$f" ] || continue; rc=1; echo "==== sanitizer report $$f"; cat "$$f"; \
	done; \
	[ $$rc = 0 ] && echo "test-tsan: passed, no sanitizer report" || echo "test-tsan: FAILED"; \
	exit $$rc

# libFuzzer targets (clang; fuzz/README.md): built into $(BUILD)/fuzz/, each run for
# FUZZ_SECONDS by `make fuzz`, for FUZZ_CI_SECONDS (20) by `make fuzz-ci`.
FUZZ_SECONDS ?= 120
FUZZ_CI_SECONDS ?= 20
.PHONY: fuzz fuzz-ci
fuzz: deps
	sh fuzz/fuzz.sh build $(BUILD)/fuzz
	sh fuzz/fuzz.sh run $(BUILD)/fuzz $(FUZZ_SECONDS)
fuzz-ci: deps
	sh fuzz/fuzz.sh build $(BUILD)/fuzz
	sh fuzz/fuzz.sh run $(BUILD)/fuzz $(FUZZ_CI_SECONDS)

-include $(LIB_OBJ:.o=.d) $(MAIN_OBJ:.o=.d)
