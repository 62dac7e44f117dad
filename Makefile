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

run: deps $(BUILD)/keymux
	sh scripts/run.sh $(BUILD)/keymux

install: $(BUILD)/keymux
	install -D -m 0755 $(BUILD)/keymux $(DESTDIR)$(PREFIX)/sbin/keymux
	install -D -m 0644 conf/keymux.yml $(DESTDIR)/etc/keymux/keymux.yml

clean:
	rm -rf $(BUILD)

-include $(LIB_OBJ:.o=.d) $(MAIN_OBJ:.o=.d)
