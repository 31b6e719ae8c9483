# spinewatch - build, test and demo. `make` builds build/spinewatchd,
# `make check` runs every test (what CI runs), `make demo` runs the daemon
# on simulated sensors. See README.md.

CC      ?= cc
PKGS := libwebsockets dbus-1 jansson inih
PYTHON  := /usr/bin/python3
BUILD   := build
VERSION := 0.1.0
ASAN    := $(BUILD)/asan

# Debian packages needed to build, test and demo (one list; `make deps`
# installs what is missing).
DEB_PKGS := build-essential pkg-config libwebsockets-dev libdbus-1-dev \
	libjansson-dev libcmocka-dev libinih-dev dbus python3 python3-dbus python3-gi \
	python3-dbusmock python3-websockets chromium libjs-chart.js
# Node.js drives the browser test. Debian's `nodejs npm` are installed only
# when no node/npm is on PATH: a NodeSource nodejs bundles npm and conflicts
# with Debian's npm package.
NODE_PKGS := nodejs npm

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CPPFLAGS_ALL = -D_GNU_SOURCE -DSPINEWATCH_VERSION=\"$(VERSION)\" -DSPINEWATCH_WEB_ROOT=\"$(CURDIR)/web\" -Iprotocol -Idaemon $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
CFLAGS  ?= -O2 -g
CFLAGS_ALL = -std=c11 $(WARN) $(CFLAGS)
LDLIBS_ALL = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

PROTO_SRC  := $(wildcard protocol/*.c)
DAEMON_SRC := $(filter-out daemon/main.c,$(wildcard daemon/*.c))
LIB_SRC    := $(PROTO_SRC) $(DAEMON_SRC)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)

LIB_OBJ      := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
LIB_OBJ_ASAN := $(LIB_SRC:%.c=$(ASAN)/obj/%.o)
UNIT_BIN      := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
UNIT_BIN_ASAN := $(UNIT_SRC:tests/unit/%.c=$(ASAN)/tests/%)
# the command-line client, build/spinewatch: daemon/cli/*.c on libwebsockets and jansson
CLI_SRC      := $(wildcard daemon/cli/*.c)
CLI_OBJ      := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ_ASAN := $(CLI_SRC:%.c=$(ASAN)/obj/%.o)
CLI_LDLIBS    = $(shell pkg-config --libs libwebsockets jansson 2>/dev/null) -lm

.PHONY: all deps check demo unit unit-asan integration sim bench bench-smoke browser clean
.DEFAULT_GOAL := all

all: $(BUILD)/spinewatchd $(BUILD)/spinewatch

$(BUILD)/obj/%.o: %.c $(wildcard daemon/*.h protocol/*.h) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) -c $< -o $@

$(ASAN)/obj/%.o: %.c $(wildcard daemon/*.h protocol/*.h) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) $(SANFLAGS) -c $< -o $@

$(BUILD)/spinewatchd: $(BUILD)/obj/daemon/main.o $(LIB_OBJ)
	$(CC) $(CFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

$(ASAN)/spinewatchd: $(ASAN)/obj/daemon/main.o $(LIB_OBJ_ASAN)
	$(CC) $(CFLAGS_ALL) $(SANFLAGS) -o $@ $^ $(LDLIBS_ALL)

$(CLI_OBJ) $(CLI_OBJ_ASAN): $(wildcard daemon/cli/*.h)

$(BUILD)/spinewatch: $(CLI_OBJ)
	$(CC) $(CFLAGS_ALL) -o $@ $^ $(CLI_LDLIBS)

$(ASAN)/spinewatch: $(CLI_OBJ_ASAN)
	$(CC) $(CFLAGS_ALL) $(SANFLAGS) -o $@ $^ $(CLI_LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL) -lcmocka

$(ASAN)/tests/%: tests/unit/%.c $(LIB_OBJ_ASAN)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) $(SANFLAGS) -o $@ $^ $(LDLIBS_ALL) -lcmocka

deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || missing="$$missing $$p"; \
	done; \
	if ! command -v node >/dev/null || ! command -v npm >/dev/null; then missing="$$missing $(NODE_PKGS)"; fi; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	else echo "deps: all Debian packages present"; fi
	@if [ ! -d tests/browser/node_modules/playwright-core ]; then \
	  echo "deps: npm ci in tests/browser"; (cd tests/browser && npm ci --no-audit --no-fund); fi

# Unit tests run from the repository root so they can read protocol/*.md.
unit: $(UNIT_BIN)
	@fail=0; for t in $(UNIT_BIN); do echo "== $$t"; $$t || fail=1; done; exit $$fail

unit-asan: $(UNIT_BIN_ASAN)
	@fail=0; for t in $(UNIT_BIN_ASAN); do echo "== $$t (ASan+UBSan)"; \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 $$t || fail=1; done; exit $$fail

integration: $(BUILD)/spinewatchd $(ASAN)/spinewatchd $(BUILD)/spinewatch $(ASAN)/spinewatch
	$(PYTHON) tests/integration/run.py --daemon $(BUILD)/spinewatchd
	$(PYTHON) tests/integration/run.py --daemon $(ASAN)/spinewatchd

# The simulator's self-test, then the daemon (plain and ASan+UBSan) against it.
sim: $(BUILD)/spinewatchd $(ASAN)/spinewatchd
	$(PYTHON) tests/sim/test_sim.py
	$(PYTHON) tests/sim/test_daemon.py --daemon $(BUILD)/spinewatchd
	$(PYTHON) tests/sim/test_daemon.py --daemon $(ASAN)/spinewatchd

# Benchmarks print figures; they assert nothing about them.
bench: $(BUILD)/spinewatchd
	$(PYTHON) tests/bench/notify_paths.py --daemon $(BUILD)/spinewatchd

# A short run in `make check`, so the benchmark keeps working.
bench-smoke: $(BUILD)/spinewatchd
	$(PYTHON) tests/bench/notify_paths.py --daemon $(BUILD)/spinewatchd -n 4000

browser: $(BUILD)/spinewatchd
	tests/browser/run.sh $(BUILD)/spinewatchd

check: deps
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) unit-asan
	$(MAKE) integration
	$(MAKE) sim
	$(MAKE) browser
	$(MAKE) bench-smoke

demo: $(BUILD)/spinewatchd
	tests/sim/demo.sh $(BUILD)/spinewatchd $(DEMO_ARGS)

clean:
	rm -rf $(BUILD)
