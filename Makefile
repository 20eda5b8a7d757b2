# regmilter — plain GNU make build. Objects go under $(BUILD)/, never in the tree.
#
#   make                 build/regmilter, build/regmilter-query and build/regmilter-zone
#                        (checks the build packages are there, installs nothing;
#                        DEPS_CHECK=no skips that)
#   make check           install missing build+test packages, build, run every test
#   make run             install missing build packages, run the milter in the foreground
#   make deps            install the missing build and test packages
#   make bench           benchmarks (print numbers; QUICK=1 for a short run)
#   make soak            1,000,000 transactions through the milter, its RSS curve
#                        (SOAK_ARGS="--total N --step N --max-seconds S")
#   make install         PREFIX=/usr/local DESTDIR= (binaries, man pages, config, systemd unit)
#   make install-user    create the system user and group regmilter (not part of install)
#   make SANITIZE=address,undefined check
#   make SANITIZE=thread check   the concurrency tests and the milter-protocol test under TSan
#   make format-check    every C++ file as clang-format writes it (part of make check)
#   make fuzz            libFuzzer targets (clang, build/fuzz), each run FUZZ_SECONDS (t/fuzz/README)
#
# Sources are found by wildcard: adding a file under lib/<module>/ needs no edit here.
# Every target builds with one job per CPU (JOBS=N, or make -jN, chooses).

# A fresh `make check` (CI's 2 cores) compiled one file at a time: about half
# its time. Set at the top level only; sub-makes share its jobserver.
JOBS ?= $(shell nproc 2>/dev/null || echo 1)
ifeq ($(MAKELEVEL),0)
MAKEFLAGS += -j$(JOBS)
endif
# `make clean all`: clean first, not beside the build.
ifneq (,$(filter clean,$(MAKECMDGOALS)))
.NOTPARALLEL:
endif

PREFIX     ?= /usr/local
DESTDIR    ?=
SBINDIR    ?= $(PREFIX)/sbin
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
LIBEXECDIR ?= $(PREFIX)/libexec
UNITDIR    ?= $(PREFIX)/lib/systemd/system

ifdef SANITIZE
# ThreadSanitizer cannot share objects with ASan: its own tree.
BUILD      ?= $(if $(findstring thread,$(SANITIZE)),build/tsan,build/sanitize)
SANFLAGS   := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
# GCC 12 documents -Wmaybe-uninitialized false positives under sanitizers; they
# show in libstdc++'s <regex> inside Catch2's main. Off for sanitizer builds only
# (clang has no such warning: make fuzz).
SANWARN    := $(if $(findstring clang,$(CXX)),,-Wno-maybe-uninitialized)
else
BUILD      ?= build
SANFLAGS   :=
SANWARN    :=
endif
# make fuzz builds with FUZZ_ENGINE=libfuzzer: coverage for libFuzzer in
# every object, its main() in the fuzz targets.
ifdef FUZZ_ENGINE
SANFLAGS   += -fsanitize=fuzzer-no-link
endif

# Debian's hardening (dpkg-buildflags with hardening=+all) in every build but
# the sanitizer ones: installed binaries are hardened wherever they are built,
# and the package test (t/integration/debian-package.sh) can package build/ as
# it is. Added only where the caller's flags do not set them already.
ifndef SANITIZE
HARDEN_CPPFLAGS := $(if $(findstring _FORTIFY_SOURCE,$(CPPFLAGS)),,-D_FORTIFY_SOURCE=2)
HARDEN_CXXFLAGS := $(if $(findstring stack-protector,$(CXXFLAGS)),,-fstack-protector-strong)
HARDEN_LDFLAGS  := $(if $(findstring relro,$(LDFLAGS)),,-Wl,-z,relro) $(if $(findstring now,$(LDFLAGS)),,-Wl,-z,now)
endif

CXX        ?= g++
CXXFLAGS   ?= -O2 -g
CXXFLAGS   += $(HARDEN_CXXFLAGS) -std=c++17 -Wall -Wextra -Werror $(SANWARN) -pthread $(SANFLAGS)
CPPFLAGS   += $(HARDEN_CPPFLAGS) -Ilib -I. -MMD -MP -DSYSCONFDIR='"$(SYSCONFDIR)"'
LDFLAGS    += $(HARDEN_LDFLAGS) -pthread $(SANFLAGS)
LIBS_LIB    = -lldns -linih -lssl -lcrypto $(LIBS_REDIS)
LIBS_MILTER:= -lmilter
# hiredis (lib/state/redis_store.cpp): --as-needed, so that only programs that
# use the Redis store depend on it.
LIBS_REDIS := -Wl,--push-state,--as-needed -lhiredis -Wl,--pop-state

LIB_SRC    := $(sort $(wildcard lib/*/*.cpp))
MILTER_SRC := $(sort $(wildcard milter/daemon/*.cpp))
# The daemon minus main(): a library the unit tests link too.
DAEMON_SRC := $(filter-out milter/daemon/main.cpp,$(MILTER_SRC))
QUERY_SRC  := $(sort $(wildcard milter/query/*.cpp))
ZONE_SRC   := $(sort $(wildcard milter/zone/*.cpp))
UNIT_SRC   := $(sort $(wildcard t/unit/*.cpp))
TSUP_SRC   := $(sort $(wildcard t/support/*.cpp))
TOOL_SRC   := $(sort $(wildcard t/tools/*.cpp))
BENCH_SRC  := $(sort $(wildcard t/bench/*.cpp))
FUZZ_SRC   := $(sort $(wildcard t/fuzz/targets/*.cpp))

obj = $(patsubst %.cpp,$(BUILD)/obj/%.o,$(1))

LIB_A      := $(BUILD)/libregmilter.a
DAEMON_A   := $(BUILD)/libregmilter-daemon.a
MILTER_BIN := $(BUILD)/regmilter
QUERY_BIN  := $(BUILD)/regmilter-query
ZONE_BIN   := $(BUILD)/regmilter-zone
UNIT_BIN   := $(BUILD)/t/unit-tests
TOOL_BINS  := $(patsubst t/tools/%.cpp,$(BUILD)/t/%,$(TOOL_SRC))
BENCH_BINS := $(patsubst t/bench/%.cpp,$(BUILD)/t/bench-%,$(BENCH_SRC))
NULL_MILTER:= $(BUILD)/t/null-milter
ECHO_MILTER:= $(BUILD)/t/echo-milter
# One program per fuzz target: linked with libFuzzer under make fuzz, else
# with the replay driver that make check runs over the corpora.
FUZZ_BINS  := $(patsubst t/fuzz/targets/%.cpp,$(BUILD)/t/fuzz/%,$(FUZZ_SRC))
FUZZ_SECONDS ?= 60
FUZZ_CXX   ?= clang++-14
TSUP_A     := $(BUILD)/t/libtsupport.a

DEPS_STAMP := $(BUILD)/.deps-build
DEPS_CHECK ?= yes
BENCH_DEPS := $(BUILD)/.deps-bench

.PHONY: all check check-build unit integration integration-build run bench bench-build soak \
        install install-user clean deps man-check format-check fuzz fuzz-build
# Keep the objects of chained rules (test tools, benches): no rebuild on every make.
.SECONDARY:
all: $(QUERY_BIN) $(ZONE_BIN) $(if $(MILTER_SRC),$(MILTER_BIN))

# Packages by purpose in contrib/debian-packages, one step that reads them
# (contrib/install-deps). A plain make only checks the build packages and
# prints the apt-get line for the missing ones (on Debian; DEPS_CHECK=no or a
# system without dpkg skips it); check, run, bench and deps install what they use.
deps:
	@contrib/install-deps build test
$(DEPS_STAMP): contrib/debian-packages contrib/install-deps
	@if [ "$(DEPS_CHECK)" != no ]; then contrib/install-deps --check build; fi
	@mkdir -p $(@D) && touch $@
$(BENCH_DEPS): contrib/debian-packages contrib/install-deps
	@if contrib/install-deps bench; then mkdir -p $(@D) && touch $@; \
	 else echo "bench: going on without them; what is missing is skipped"; fi

$(BUILD)/obj/%.o: %.cpp | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c -o $@ $<

$(LIB_A): $(call obj,$(LIB_SRC))
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(DAEMON_A): $(call obj,$(DAEMON_SRC))
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(TSUP_A): $(call obj,$(TSUP_SRC))
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(MILTER_BIN): $(call obj,milter/daemon/main.cpp) $(DAEMON_A) $(LIB_A)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS_MILTER) $(LIBS_LIB)

$(QUERY_BIN): $(call obj,$(QUERY_SRC)) $(LIB_A)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS_LIB)

$(ZONE_BIN): $(call obj,$(ZONE_SRC)) $(LIB_A)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS_LIB)

$(UNIT_BIN): $(call obj,$(UNIT_SRC)) $(TSUP_A) $(DAEMON_A) $(LIB_A)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS_MILTER) $(LIBS_LIB)
# The relay's tests run a real libmilter worker, found next to the unit tests.
$(UNIT_BIN): | $(ECHO_MILTER)

$(BUILD)/t/%: $(BUILD)/obj/t/tools/%.o $(TSUP_A) $(LIB_A)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS_LIB)

$(BUILD)/t/bench-%: $(BUILD)/obj/t/bench/%.o $(TSUP_A) $(DAEMON_A) $(LIB_A)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS_LIB)

# The do-nothing libmilter filter of the bench's comparison.
$(NULL_MILTER): $(BUILD)/obj/t/bench/compare/null-milter.o
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS_MILTER)

# The libmilter worker of the relay's tests (t/support/workers/echo-milter.cpp).
$(ECHO_MILTER): $(BUILD)/obj/t/support/workers/echo-milter.o
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS_MILTER)
ifdef FUZZ_ENGINE
$(BUILD)/t/fuzz/%: $(BUILD)/obj/t/fuzz/targets/%.o $(LIB_A)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LIBS_LIB)
else
$(BUILD)/t/fuzz/%: $(BUILD)/obj/t/fuzz/targets/%.o $(BUILD)/obj/t/fuzz/replay.o $(LIB_A)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS_LIB)
endif

# Every test: unit tests, the openspf conformance suite, then the integration
# scripts (each starts and stops its own servers on loopback). The packages
# come first, then a second make builds (so that -j never compiles before them).
# Under SANITIZE=thread only what runs there: the unit tests tagged [threads]
# and t/integration/milter-protocol.sh, with the suppressions of t/tsan.supp.
ifneq (,$(findstring thread,$(SANITIZE)))
CHECK_BINS := $(QUERY_BIN) $(MILTER_BIN) $(UNIT_BIN) $(BUILD)/t/milter-client $(BUILD)/t/json-get
CHECK_ARGS := --tsan
else
CHECK_BINS := all $(UNIT_BIN) $(TOOL_BINS) $(NULL_MILTER) $(FUZZ_BINS)
CHECK_ARGS :=
endif
check: deps
	@$(MAKE) --no-print-directory check-build
	@t/run-tests $(CHECK_ARGS) $(BUILD)
check-build: $(CHECK_BINS)

unit: $(UNIT_BIN)
	$(UNIT_BIN)

integration: deps
	@$(MAKE) --no-print-directory integration-build
	@t/run-tests --only-integration $(BUILD)
integration-build: all $(TOOL_BINS) $(NULL_MILTER)

# QUICK=1: one run per case, shorter runs (about 3 minutes in all). The bench
# packages are installed when they can be; a missing peer is skipped.
bench: deps $(BENCH_DEPS)
	@$(MAKE) --no-print-directory bench-build
	@QUICK=$(QUICK) t/run-bench $(BUILD)
bench-build: all $(BENCH_BINS) $(TOOL_BINS) $(NULL_MILTER)

# The milter's memory over many transactions (t/bench/soak.sh): NSD on
# loopback, a warm cache, the RSS every 50,000 transactions; bounded in time.
soak: deps
	@$(MAKE) --no-print-directory all $(BUILD)/t/milter-bench $(BUILD)/t/milter-client
	@BUILD=$(BUILD) sh t/bench/soak.sh $(SOAK_ARGS)

# libFuzzer targets built by clang with ASan and UBSan in build/fuzz, then
# each run FUZZ_SECONDS in turn (FUZZ_TARGETS="a b" for some), new inputs
# kept in build/fuzz/corpus, crashes in build/fuzz/crashes (t/fuzz/README).
fuzz:
	@contrib/install-deps build fuzz
	@$(MAKE) --no-print-directory BUILD=build/fuzz CXX="$(FUZZ_CXX)" SANITIZE=address,undefined \
	    FUZZ_ENGINE=libfuzzer fuzz-build
	@t/fuzz/run build/fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)
fuzz-build: $(FUZZ_BINS)

run:
	@contrib/install-deps build
	@$(MAKE) --no-print-directory all
	@contrib/make-run $(BUILD)

man-check:
	@t/man-check

# clang-format over every C++ file, checked (make check runs it too).
format-check:
	@t/format-check

# The binaries, man pages, configuration (never overwritten), the socket
# directory helper and the systemd unit, its paths from PREFIX (or SBINDIR,
# SYSCONFDIR, LIBEXECDIR). Creates no user: make install-user, or see README.
install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
	    $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(SYSCONFDIR)/regmilter \
	    $(DESTDIR)$(LIBEXECDIR)/regmilter $(DESTDIR)$(UNITDIR)
	install -m 0755 $(QUERY_BIN) $(DESTDIR)$(BINDIR)/regmilter-query
	install -m 0755 $(ZONE_BIN) $(DESTDIR)$(BINDIR)/regmilter-zone
	if [ -f $(MILTER_BIN) ]; then install -m 0755 $(MILTER_BIN) $(DESTDIR)$(SBINDIR)/regmilter; fi
	for m in man/*.[158]; do [ -f "$$m" ] || continue; \
	    s=$${m##*.}; install -m 0644 $$m $(DESTDIR)$(MANDIR)/man$$s/; done
	if [ ! -f $(DESTDIR)$(SYSCONFDIR)/regmilter/regmilter.ini ]; then \
	    install -m 0644 conf/regmilter.ini $(DESTDIR)$(SYSCONFDIR)/regmilter/regmilter.ini; fi
	install -m 0755 contrib/socket-dir $(DESTDIR)$(LIBEXECDIR)/regmilter/socket-dir
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	    -e 's|@LIBEXECDIR@|$(LIBEXECDIR)|g' contrib/regmilter.service.in > $(DESTDIR)$(UNITDIR)/regmilter.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/regmilter.service

# The system user and group the unit runs as (Debian's package does this in
# its postinst). Asked for, never part of install.
install-user:
	@if id regmilter >/dev/null 2>&1; then echo "install-user: user regmilter exists"; \
	else useradd --system --user-group --home-dir /nonexistent --no-create-home \
	    --shell /usr/sbin/nologin --comment "regmilter mail filter" regmilter && \
	    echo "install-user: created user and group regmilter"; fi

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
