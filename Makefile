# spinewatch - build, test and demo. `make` builds build/spinewatchd,
# `make check` runs every test (what CI runs), `make demo` runs the daemon
# on simulated sensors. See README.md.

CC      ?= cc
PKGS := libwebsockets dbus-1 jansson inih libsystemd sqlite3 libmosquitto libcares
PYTHON  := /usr/bin/python3
BUILD   := build
VERSION := 0.1.0
ASAN    := $(BUILD)/asan

# Debian packages needed to build, test and demo (one list; `make deps`
# installs what is missing).
DEB_PKGS := build-essential pkg-config libwebsockets-dev libdbus-1-dev \
	libjansson-dev libcmocka-dev libinih-dev dbus python3 python3-dbus python3-gi \
	python3-dbusmock python3-websockets chromium libjs-chart.js sox \
	libsystemd-dev libsqlite3-dev systemd-container debootstrap python3-jsonschema jq python3-prometheus-client curl \
	clang libclang-rt-14-dev libmosquitto-dev mosquitto mosquitto-clients faketime valgrind libc-ares-dev
# Node.js drives the browser test. Debian's `nodejs npm` are installed only
# when no node/npm is on PATH: a NodeSource nodejs bundles npm and conflicts
# with Debian's npm package.
NODE_PKGS := nodejs npm

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CPPFLAGS_BASE = -D_GNU_SOURCE -DSPINEWATCH_VERSION=\"$(VERSION)\" -Iprotocol -Idaemon $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# built binaries serve the dashboard from this checkout; `make install` links one that
# serves it from $(DATADIR)/web
CPPFLAGS_ALL = $(CPPFLAGS_BASE) -DSPINEWATCH_WEB_ROOT=\"$(CURDIR)/web\"
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

# `make install` (PREFIX, DESTDIR): binaries, dashboard, unit, sample settings, man pages, docs
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
DATADIR    ?= $(PREFIX)/share/spinewatch
DOCDIR     ?= $(PREFIX)/share/doc/spinewatch
MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR    ?= /etc/systemd/system
SYSUSERSDIR ?= /etc/sysusers.d

.PHONY: all deps check demo unit unit-asan integration integration-valgrind sim bench bench-smoke \
	bench-audio bench-long browser clean \
	install uninstall install-check service fuzz fuzz-smoke fuzz-build
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

# the audio crack detector's test set: labelled audio and its scoring (tests/audio/)
AUDIO_TEST_SRC := tests/audio/audiogen.c tests/audio/audioeval.c
$(BUILD)/tests/test_audio_cracks $(ASAN)/tests/test_audio_cracks: $(AUDIO_TEST_SRC)

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

# A representative subset of the integration tests with the daemon under valgrind memcheck:
# notifications to events to the feed, posture and slouches, bluetoothd restart and link loss,
# AcquireNotify and its fallbacks, settings reload, history across a restart and a kill -9, feed
# commands and annotations, the HTTP API. Zero errors and zero definite leaks, or the test fails
# (exit status 99 on SIGTERM, or an ERROR SUMMARY on stderr). No suppressions are needed today;
# add any third-party ones to a committed file with --suppressions=, one comment per entry.
# Left out: alerts-raise-ack-clear-and-hook (valgrind 3.19 does not know pidfd_open, which the
# hook runner needs). ASan cannot see what uninstrumented libraries (libwebsockets, libdbus) write
# into our freed memory; valgrind can.
VALGRIND       ?= valgrind
VALGRIND_OPTS  ?= --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
	--show-leak-kinds=definite --num-callers=30
VALGRIND_TESTS := crack-notification-to-event posture-and-slouch bluetoothd-restart \
	link-loss-reconnect rw-acquire-notify-and-fallbacks settings-file-and-reload \
	history-restart-keeps-events-and-numbers history-kill-9 feed-filters-subscribe-ping \
	annotate-events http-sensors-and-alerts

integration-valgrind: $(BUILD)/spinewatchd $(BUILD)/spinewatch
	$(PYTHON) tests/integration/run.py --daemon $(BUILD)/spinewatchd \
	  --wrap '$(VALGRIND) $(VALGRIND_OPTS)' --time-factor 4 --exact $(VALGRIND_TESTS:%=--only %)

# The simulator's self-test, then the daemon against it, under ASan+UBSan (the plain build
# meets the simulator in the integration suite; once here keeps make check near 15 minutes).
# SIM_DAEMON=build/spinewatchd runs them on the plain build.
SIM_DAEMON ?= $(ASAN)/spinewatchd
sim: $(BUILD)/spinewatchd $(ASAN)/spinewatchd
	$(PYTHON) tests/sim/test_sim.py
	$(PYTHON) tests/sim/test_daemon.py --daemon $(SIM_DAEMON)

# the latency benchmark's floors (tests/bench/latency.py): a bare libdbus / AcquireNotify
# intake and a bare libwebsockets fan-out; and its WebSocket clients (ws_swarm)
BENCH_FLOORS := $(BUILD)/bench/floor_notify $(BUILD)/bench/floor_ws $(BUILD)/bench/ws_swarm

# Benchmarks print figures; they assert nothing about them (load.py does check that readers
# lose nothing, the daemon survives and its memory stays bounded, latency.py that clients
# which keep up lose nothing, allocs.py can bound allocations per notification:
# tests/bench/README.md).
bench: $(BUILD)/spinewatchd $(BUILD)/bench/audio_cracks $(BENCH_FLOORS) $(BUILD)/bench/malloc_count.so
	$(PYTHON) tests/bench/notify_paths.py --daemon $(BUILD)/spinewatchd
	$(PYTHON) tests/bench/latency.py --daemon $(BUILD)/spinewatchd --swarm $(BUILD)/bench/ws_swarm
	$(PYTHON) tests/bench/idle.py --daemon $(BUILD)/spinewatchd
	$(PYTHON) tests/bench/allocs.py --daemon $(BUILD)/spinewatchd --preload $(BUILD)/bench/malloc_count.so
	$(PYTHON) tests/bench/allocs.py --daemon $(BUILD)/spinewatchd --preload $(BUILD)/bench/malloc_count.so \
	  --no-history
	$(BUILD)/bench/audio_cracks
	$(PYTHON) tests/bench/load.py --daemon $(BUILD)/spinewatchd
	$(PYTHON) tests/bench/load.py --daemon $(BUILD)/spinewatchd --only sensor --notify-path start
	$(PYTHON) tests/bench/load.py --daemon $(BUILD)/spinewatchd --only sensor --sensor-rate 30000 \
	  --sensor-seconds 2

# A short run in `make check`, so the benchmarks keep working.
bench-smoke: $(BUILD)/spinewatchd $(BUILD)/bench/audio_cracks $(BENCH_FLOORS) \
		$(BUILD)/bench/malloc_count.so
	$(PYTHON) tests/bench/notify_paths.py --daemon $(BUILD)/spinewatchd -n 4000
	$(PYTHON) tests/bench/latency.py --daemon $(BUILD)/spinewatchd --smoke \
	  --swarm $(BUILD)/bench/ws_swarm
	$(PYTHON) tests/bench/idle.py --daemon $(BUILD)/spinewatchd --smoke
	$(PYTHON) tests/bench/allocs.py --daemon $(BUILD)/spinewatchd --preload $(BUILD)/bench/malloc_count.so \
	  -n 1000 --no-history --max-per-notification 0.5
	$(BUILD)/bench/audio_cracks --per-class 2
	$(PYTHON) tests/bench/load.py --daemon $(BUILD)/spinewatchd --smoke

# Issue 11's hour at 1000 notifications/s: resident size sampled, growth reported (idle.py).
bench-long: $(BUILD)/spinewatchd $(BUILD)/bench/malloc_count.so
	$(PYTHON) tests/bench/idle.py --daemon $(BUILD)/spinewatchd --only memory --long 3600

# Counts a process's heap allocations (LD_PRELOAD; counters in a shared file) for idle.py
# and allocs.py.
$(BUILD)/bench/malloc_count.so: tests/bench/malloc_count.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -shared -fPIC $(WARN) -o $@ $<

# Audio crack detection on labelled synthetic audio: precision, recall, F1, CPU.
bench-audio: $(BUILD)/bench/audio_cracks
	$(BUILD)/bench/audio_cracks

$(BUILD)/bench/floor_notify: tests/bench/floor_notify.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_BASE) $(CFLAGS_ALL) -o $@ $< $(shell pkg-config --libs dbus-1 2>/dev/null)

$(BUILD)/bench/floor_ws: tests/bench/floor_ws.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_BASE) $(CFLAGS_ALL) -o $@ $< $(shell pkg-config --libs libwebsockets 2>/dev/null)

$(BUILD)/bench/ws_swarm: tests/bench/ws_swarm.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_BASE) $(CFLAGS_ALL) -o $@ $<

$(BUILD)/bench/audio_cracks: tests/bench/audio_cracks.c $(AUDIO_TEST_SRC) $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) -o $@ $(filter %.c %.o,$^) $(LDLIBS_ALL)

browser: $(BUILD)/spinewatchd
	tests/browser/run.sh $(BUILD)/spinewatchd

# Each stage says how long it took (the guide: all of make check in about 15 minutes).
check_stage = t0=$$(date +%s); $(MAKE) $(1) || exit 1; \
	echo "make check: $(1) took $$(( $$(date +%s) - t0 )) s"

check: deps
	@$(call check_stage,all)
	@$(call check_stage,unit)
	@$(call check_stage,unit-asan)
	@$(call check_stage,fuzz-smoke)
	@$(call check_stage,integration)
	@$(call check_stage,integration-valgrind)
	@$(call check_stage,sim)
	@$(call check_stage,browser)
	@$(call check_stage,install-check)
	@$(call check_stage,service)
	@$(call check_stage,bench-smoke)

# A fresh machine has nothing yet: the packages first, then the build.
demo: deps
	$(MAKE) $(BUILD)/spinewatchd
	tests/sim/demo.sh $(BUILD)/spinewatchd $(DEMO_ARGS)

# The daemon as installed: the same objects, main.o told where the dashboard is.
$(BUILD)/install/spinewatchd: daemon/main.c $(LIB_OBJ) $(wildcard daemon/*.h protocol/*.h) Makefile FORCE
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_BASE) -DSPINEWATCH_WEB_ROOT=\"$(DATADIR)/web\" $(CFLAGS_ALL) -c daemon/main.c -o $(BUILD)/install/main.o
	$(CC) $(CFLAGS_ALL) -o $@ $(BUILD)/install/main.o $(LIB_OBJ) $(LDLIBS_ALL)

FORCE:

install: $(BUILD)/install/spinewatchd $(BUILD)/spinewatch
	install -D -m 755 $(BUILD)/install/spinewatchd $(DESTDIR)$(BINDIR)/spinewatchd
	install -D -m 755 $(BUILD)/spinewatch $(DESTDIR)$(BINDIR)/spinewatch
	cd web && find . -type f | while read -r f; do \
	  install -D -m 644 "$$f" "$(DESTDIR)$(DATADIR)/web/$$f" || exit 1; done
	install -d $(DESTDIR)$(UNITDIR)
	sed -e 's|/usr/local/bin/|$(BINDIR)/|g' -e 's|/usr/local/share/doc/spinewatch|$(DOCDIR)|g' \
	  systemd/spinewatchd.service > $(DESTDIR)$(UNITDIR)/spinewatchd.service
	chmod 644 $(DESTDIR)$(UNITDIR)/spinewatchd.service
	install -D -m 644 systemd/spinewatch.sysusers $(DESTDIR)$(SYSUSERSDIR)/spinewatch.conf
	@# the service's user: made now on this machine; for a DESTDIR, by systemd-sysusers there
	if [ -z "$(DESTDIR)" ] && command -v systemd-sysusers >/dev/null; then \
	  systemd-sysusers $(SYSUSERSDIR)/spinewatch.conf; fi
	@# the admin's settings are never overwritten
	if [ ! -e $(DESTDIR)$(SYSCONFDIR)/spinewatch/spinewatchd.conf ]; then \
	  install -D -m 644 systemd/spinewatchd.conf $(DESTDIR)$(SYSCONFDIR)/spinewatch/spinewatchd.conf; fi
	install -D -m 644 daemon/man/spinewatchd.8 $(DESTDIR)$(MANDIR)/man8/spinewatchd.8
	install -D -m 644 daemon/man/spinewatch.1 $(DESTDIR)$(MANDIR)/man1/spinewatch.1
	install -D -m 644 README.md $(DESTDIR)$(DOCDIR)/README.md
	install -D -m 644 protocol/websocket-feed.md $(DESTDIR)$(DOCDIR)/websocket-feed.md
	install -D -m 644 protocol/http-api.md $(DESTDIR)$(DOCDIR)/http-api.md
	install -D -m 644 protocol/mqtt.md $(DESTDIR)$(DOCDIR)/mqtt.md
	@if [ -z "$(DESTDIR)" ]; then echo "installed; start it with: systemctl daemon-reload && systemctl enable --now spinewatchd"; fi

# Leaves the settings in $(SYSCONFDIR)/spinewatch, the state in /var/lib/spinewatch and the
# spinewatch user.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/spinewatchd $(DESTDIR)$(BINDIR)/spinewatch
	rm -rf $(DESTDIR)$(DATADIR) $(DESTDIR)$(DOCDIR)
	rm -f $(DESTDIR)$(MANDIR)/man8/spinewatchd.8 $(DESTDIR)$(MANDIR)/man1/spinewatch.1
	rm -f $(DESTDIR)$(UNITDIR)/spinewatchd.service $(DESTDIR)$(SYSUSERSDIR)/spinewatch.conf

# install and uninstall into a scratch DESTDIR: every file lands, uninstall keeps only the settings
install-check:
	tests/systemd/install-check.sh

# The unit's sandbox rating, and the real systemd running the installed service in a container.
service: all
	tests/systemd/security.sh
	tests/systemd/run.sh

# ---- fuzzing (tests/fuzz/README.md) ------------------------------------------------------
# libFuzzer targets, built with clang into $(FUZZ): each links only the sources it needs.
# `make fuzz` runs each for FUZZ_SECONDS on a copy of its seed corpus (the copy, under
# $(FUZZ)/corpus, keeps growing across runs; tests/fuzz/corpus is never written), crashes
# land in $(FUZZ)/findings/<target>/. `make fuzz-smoke` (in `make check`) runs each for
# FUZZ_SMOKE_SECONDS on a fresh copy.
FUZZ_CC            ?= clang
FUZZ_SECONDS       ?= 60
FUZZ_SMOKE_SECONDS ?= 2
FUZZ_OPTS          ?=
FUZZ               := $(BUILD)/fuzz
FUZZ_CFLAGS        := -std=c11 $(WARN) -g -O1 -fno-omit-frame-pointer -fno-sanitize-recover=all
FUZZ_TARGETS := spine_profile microbit thingy52 thingy52_sound feed_command feed_filter http_query config \
	access
FUZZ_SRC_spine_profile := protocol/spine_profile.c
FUZZ_SRC_microbit      := protocol/microbit.c protocol/spine_profile.c
FUZZ_SRC_thingy52      := protocol/thingy52.c
FUZZ_SRC_thingy52_sound := protocol/thingy52_sound.c daemon/audio_cracks.c
FUZZ_SRC_feed_command  := protocol/feed_json.c
FUZZ_SRC_feed_filter   := protocol/feed_json.c
FUZZ_SRC_access        := daemon/access.c
FUZZ_SRC_config        := daemon/config.c daemon/access.c daemon/alerts.c daemon/backoff.c daemon/bluez.c \
	daemon/bluez_agent.c daemon/breaks.c daemon/cracks.c daemon/dbus_util.c daemon/detector.c \
	daemon/log.c daemon/loop.c protocol/microbit.c protocol/profiles.c protocol/thingy52.c \
	daemon/mqtt_config.c protocol/mqtt_topics.c protocol/thingy52_sound.c
FUZZ_SRC_http_query    := $(FUZZ_SRC_config) daemon/http_api.c daemon/alert_center.c \
	daemon/alert_hook.c daemon/audio_cracks.c daemon/calibration.c daemon/feed.c daemon/gate.c \
	daemon/history.c daemon/metrics.c daemon/mqtt.c daemon/resolver.c \
	daemon/ring.c daemon/sensors.c daemon/stats.c daemon/stats_keeper.c daemon/store.c \
	protocol/feed_json.c protocol/spine_profile.c
FUZZ_LIBS_access        :=
FUZZ_LIBS_spine_profile :=
FUZZ_LIBS_microbit      :=
FUZZ_LIBS_thingy52      :=
FUZZ_LIBS_thingy52_sound :=
FUZZ_LIBS_feed_command   = $(shell pkg-config --libs jansson 2>/dev/null)
FUZZ_LIBS_feed_filter    = $(shell pkg-config --libs jansson 2>/dev/null)
FUZZ_LIBS_config         = $(LDLIBS_ALL)
FUZZ_LIBS_http_query     = $(LDLIBS_ALL)
FUZZ_BIN := $(FUZZ_TARGETS:%=$(FUZZ)/fuzz_%)

$(FUZZ)/obj/%.o: %.c $(wildcard daemon/*.h protocol/*.h) Makefile
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS_ALL) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined -c $< -o $@

define FUZZ_RULE
$(FUZZ)/fuzz_$(1): tests/fuzz/fuzz_$(1).c $(patsubst %.c,$(FUZZ)/obj/%.o,$(FUZZ_SRC_$(1))) \
		$(wildcard daemon/*.h protocol/*.h) Makefile
	@mkdir -p $$(dir $$@)
	$$(FUZZ_CC) $$(CPPFLAGS_ALL) $$(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined -o $$@ \
		$$(filter %.c %.o,$$^) $$(FUZZ_LIBS_$(1)) -lm
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call FUZZ_RULE,$(t))))

fuzz-build: $(FUZZ_BIN)

fuzz: $(FUZZ_BIN)
	@fail=0; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ)/corpus/$$t $(FUZZ)/findings/$$t && \
	  cp tests/fuzz/corpus/$$t/* $(FUZZ)/corpus/$$t/ && \
	  echo "== fuzz_$$t for $(FUZZ_SECONDS) s (findings: $(FUZZ)/findings/$$t/)" && \
	  $(FUZZ)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ)/findings/$$t/ $(FUZZ_OPTS) $(FUZZ)/corpus/$$t \
	    2>$(FUZZ)/fuzz_$$t.log; rc=$$?; \
	  grep -E '^(stat::number_of_executed_units|stat::new_units_added|Done [0-9]+ runs)' \
	    $(FUZZ)/fuzz_$$t.log | tr '\n' ' '; echo; \
	  if [ $$rc != 0 ]; then fail=1; tail -n 40 $(FUZZ)/fuzz_$$t.log; fi; \
	done; exit $$fail

fuzz-smoke: $(FUZZ_BIN)
	@fail=0; for t in $(FUZZ_TARGETS); do \
	  rm -rf $(FUZZ)/smoke/$$t && mkdir -p $(FUZZ)/smoke/$$t/corpus $(FUZZ)/smoke/$$t/findings && \
	  cp tests/fuzz/corpus/$$t/* $(FUZZ)/smoke/$$t/corpus/ && \
	  if $(FUZZ)/fuzz_$$t -max_total_time=$(FUZZ_SMOKE_SECONDS) -runs=1000000 \
	      -artifact_prefix=$(FUZZ)/smoke/$$t/findings/ $(FUZZ_OPTS) $(FUZZ)/smoke/$$t/corpus \
	      2>$(FUZZ)/smoke/$$t.log; then \
	    echo "fuzz-smoke: fuzz_$$t ok ($$(grep -Eo 'Done [0-9]+ runs in [0-9]+ s' $(FUZZ)/smoke/$$t.log))"; \
	  else fail=1; echo "fuzz-smoke: fuzz_$$t FAILED"; tail -n 40 $(FUZZ)/smoke/$$t.log; fi; \
	done; exit $$fail

clean:
	rm -rf $(BUILD)
