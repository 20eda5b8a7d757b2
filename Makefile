# regmilter — plain GNU make build. Objects go under $(BUILD)/, never in the tree.
#
#   make                 build/regmilter and build/regmilter-query
#   make check           install missing packages, build, run every test
#   make run             run the milter in the foreground with conf/regmilter.ini
#   make bench           benchmarks (print numbers; QUICK=1 for a short run)
#   make install         PREFIX=/usr/local DESTDIR=
#   make SANITIZE=address,undefined check
#
# Sources are found by wildcard: adding a file under lib/<module>/ needs no edit here.

PREFIX     ?= /usr/local
DESTDIR    ?=
SBINDIR    ?= $(PREFIX)/sbin
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc

ifdef SANITIZE
BUILD      ?= build/sanitize
SANFLAGS   := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
# GCC 12 documents -Wmaybe-uninitialized false positives under sanitizers; they
# show in libstdc++'s <regex> inside Catch2's main. Off for sanitizer builds only.
SANWARN    := -Wno-maybe-uninitialized
else
BUILD      ?= build
SANFLAGS   :=
SANWARN    :=
endif

CXX        ?= g++
CXXFLAGS   ?= -O2 -g
CXXFLAGS   += -std=c++17 -Wall -Wextra -Werror $(SANWARN) -pthread $(SANFLAGS)
CPPFLAGS   += -Ilib -MMD -MP -DSYSCONFDIR='"$(SYSCONFDIR)"'
LDFLAGS    += -pthread $(SANFLAGS)
LIBS_LIB   := -lldns -linih -lssl -lcrypto
LIBS_MILTER:= -lmilter

LIB_SRC    := $(sort $(wildcard lib/*/*.cpp))
MILTER_SRC := $(sort $(wildcard milter/daemon/*.cpp))
QUERY_SRC  := $(sort $(wildcard milter/query/*.cpp))
UNIT_SRC   := $(sort $(wildcard t/unit/*.cpp))
TSUP_SRC   := $(sort $(wildcard t/support/*.cpp))
TOOL_SRC   := $(sort $(wildcard t/tools/*.cpp))
BENCH_SRC  := $(sort $(wildcard t/bench/*.cpp))

obj = $(patsubst %.cpp,$(BUILD)/obj/%.o,$(1))

LIB_A      := $(BUILD)/libregmilter.a
MILTER_BIN := $(BUILD)/regmilter
QUERY_BIN  := $(BUILD)/regmilter-query
UNIT_BIN   := $(BUILD)/t/unit-tests
TOOL_BINS  := $(patsubst t/tools/%.cpp,$(BUILD)/t/%,$(TOOL_SRC))
BENCH_BINS := $(patsubst t/bench/%.cpp,$(BUILD)/t/bench-%,$(BENCH_SRC))
NULL_MILTER:= $(BUILD)/t/null-milter
TSUP_A     := $(BUILD)/t/libtsupport.a

DEPS_STAMP := build/.deps-installed
BENCH_DEPS := build/.deps-bench-installed

.PHONY: all check unit integration run bench install clean deps man-check
# Keep the objects of chained rules (test tools, benches): no rebuild on every make.
.SECONDARY:
all: $(QUERY_BIN) $(if $(MILTER_SRC),$(MILTER_BIN))

# One list of packages (contrib/debian-packages), one install step reading it.
# Building and make check need the build, test and run packages; make bench
# also the bench ones (the peers it compares against, Unbound, perf). Without
# root the bench prints the apt-get command and goes on: a missing peer is skipped.
deps: $(DEPS_STAMP)
$(DEPS_STAMP): contrib/debian-packages contrib/install-deps
	@contrib/install-deps build test run
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

$(TSUP_A): $(call obj,$(TSUP_SRC))
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(MILTER_BIN): $(call obj,$(MILTER_SRC)) $(LIB_A)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS_MILTER) $(LIBS_LIB)

$(QUERY_BIN): $(call obj,$(QUERY_SRC)) $(LIB_A)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS_LIB)

$(UNIT_BIN): $(call obj,$(UNIT_SRC)) $(TSUP_A) $(LIB_A)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS_LIB)

$(BUILD)/t/%: $(BUILD)/obj/t/tools/%.o $(TSUP_A) $(LIB_A)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS_LIB)

$(BUILD)/t/bench-%: $(BUILD)/obj/t/bench/%.o $(TSUP_A) $(LIB_A)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS_LIB)

# The do-nothing libmilter filter of the bench's comparison.
$(NULL_MILTER): $(BUILD)/obj/t/bench/compare/null-milter.o
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS_MILTER)

# Every test: unit tests, the openspf conformance suite, then the integration
# scripts (each starts and stops its own servers on loopback).
check: all $(UNIT_BIN) $(TOOL_BINS) $(NULL_MILTER)
	@t/run-tests $(BUILD)

unit: $(UNIT_BIN)
	$(UNIT_BIN)

integration: all $(TOOL_BINS) $(NULL_MILTER)
	@t/run-tests --only-integration $(BUILD)

# QUICK=1: one run per case, shorter runs (under 2 minutes in all).
bench: all $(BENCH_BINS) $(TOOL_BINS) $(NULL_MILTER) $(BENCH_DEPS)
	@QUICK=$(QUICK) t/run-bench $(BUILD)

run: all
	@contrib/make-run $(BUILD)

man-check:
	@t/man-check

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
	    $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(SYSCONFDIR)/regmilter
	install -m 0755 $(QUERY_BIN) $(DESTDIR)$(BINDIR)/regmilter-query
	if [ -f $(MILTER_BIN) ]; then install -m 0755 $(MILTER_BIN) $(DESTDIR)$(SBINDIR)/regmilter; fi
	for m in man/*.[158]; do [ -f "$$m" ] || continue; \
	    s=$${m##*.}; install -m 0644 $$m $(DESTDIR)$(MANDIR)/man$$s/; done
	if [ ! -f $(DESTDIR)$(SYSCONFDIR)/regmilter/regmilter.ini ]; then \
	    install -m 0644 conf/regmilter.ini $(DESTDIR)$(SYSCONFDIR)/regmilter/regmilter.ini; fi

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
