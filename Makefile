# herd - one non-recursive Makefile; sources are found by wildcard, so a new
# file needs no edit here. `make deps` installs missing Debian packages first.
# `make` (all) builds what the README's quick start runs: build/herd, the
# console's assets (web) and build/herd-agent (what runs on hosts).

PKGS      := libmicrohttpd libcurl jansson sqlite3 libpq yaml-0.1 libsodium libnl-route-3.0 gnutls \
	libprotobuf-c snappy
CC        ?= cc
BUILD     ?= build
SANITIZE  ?=
WERROR    ?= $(if $(CI),-Werror,)

CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -g -O2 -pthread \
	-Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wvla -Wwrite-strings -Wno-unused-parameter -Wno-format-truncation $(WERROR) \
	-Isrc -Isrc/lib -Isrc/server -I$(BUILD)/gen
comma := ,
ifneq ($(SANITIZE),)
CFLAGS_BASE += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS     += -fsanitize=$(SANITIZE)
# one build dir per sanitizer set: objects built with other flags never mix
BUILD       := build-san-$(subst $(comma),-,$(SANITIZE))
# Processes exit without freeing what lives until exit (the CLI, agents):
# leak reports would fail every test. Any other report aborts the process.
export ASAN_OPTIONS ?= detect_leaks=0:abort_on_error=1
export UBSAN_OPTIONS ?= print_stacktrace=1:halt_on_error=1
endif

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
ALL_CFLAGS = $(CFLAGS_BASE) $(PKG_CFLAGS) $(CFLAGS)
LIBS       = $(PKG_LIBS) -lm -pthread

SRCS      := $(wildcard src/lib/*.c src/server/*.c src/server/*/*.c src/agent/*.c src/cli/*.c)
# herd-agent (what runs on hosts): the agent and `herd meta` with their own
# HTTP client (src/hostbin/: sockets + mbedTLS) instead of libcurl, linked
# statically with musl (musl-gcc; glibc's static libc alone is 0.87 MB and
# its getaddrinfo wants NSS): objects of its own under $(BUILD)/host/. No
# server code, SQLite, libmicrohttpd, libyaml, libsodium, libnl or libcurl.
# Debian's static libjansson.a and libmbedtls.a libmbedx509.a libmbedcrypto.a
# (libmbedtls-dev ships no pkg-config file) are named by path so that no
# glibc library is searched, and so is libprotobuf-c.a for the protobuf push
# (src/lib/pushwire.c with its generated $(GEN)/push.pb-c.c, compiled here
# with musl-gcc too). A sanitizer build links it dynamically with glibc
# instead (ASan cannot be static).
HOST_CC     := $(if $(SANITIZE),$(CC),musl-gcc)
HOST_BUILD  := $(BUILD)/host
HOST_CFLAGS := $(CFLAGS_BASE) -Isrc/hostbin -idirafter /usr/include $(CFLAGS)
HOST_SRCS   := $(wildcard src/hostbin/*.c src/agent/*.c) src/cli/cmd-meta.c \
	$(filter-out src/lib/httpc.c src/lib/util-crypto.c src/lib/tlsfp-pem.c src/lib/yamljson.c src/lib/promwire.c,$(wildcard src/lib/*.c))
HOST_OBJS   := $(patsubst %.c,$(HOST_BUILD)/%.o,$(HOST_SRCS)) $(HOST_BUILD)/gen/push.pb-c.o
HOST_LIBS   := $(foreach l,jansson protobuf-c mbedtls mbedx509 mbedcrypto,$(shell $(CC) -print-file-name=lib$(l).a))
HOST_LDFLAGS := $(if $(SANITIZE),$(LDFLAGS) -pthread -lm,-static -s)
# Protocol messages (proto/*.proto, e.g. Prometheus remote write) are
# compiled by protoc-c into $(BUILD)/gen/ at build time, never committed.
GEN       := $(BUILD)/gen
GEN_SRCS  := $(patsubst proto/%.proto,$(GEN)/%.pb-c.c,$(wildcard proto/*.proto))
GEN_HDRS  := $(GEN_SRCS:.c=.h)
OBJS      := $(patsubst %.c,$(BUILD)/%.o,$(SRCS)) $(GEN_SRCS:.c=.o)
MAIN_OBJ  := $(BUILD)/src/main.o
UNIT_SRCS := $(wildcard tests/unit/test-*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
FUZZ_SRCS := $(wildcard fuzz/fuzz-*.c)
# Tools the tests run (tests/tools/<name>.c -> $(BUILD)/tests/<name>), e.g.
# store-at: a store at an older schema version, made by the real migrations.
TEST_TOOLS := $(patsubst tests/tools/%.c,$(BUILD)/tests/%,$(wildcard tests/tools/*.c))
# The fake QingCloud (tests/fake-qingcloud/): a test double of QingCloud's
# API in its own process. Not part of libherd.a and linked with no herd code.
FAKE_QC_SRCS := $(wildcard tests/fake-qingcloud/*.c)
FAKE_QC      := $(BUILD)/fake-qingcloud

.PHONY: all deps check unit e2e demo bench fuzz clean web shellcheck
.DEFAULT_GOAL := all

all: deps web $(BUILD)/herd $(BUILD)/herd-agent

deps:
	@tools/deps.sh build

# Order-only on deps and the generated headers: with -j, nothing compiles
# before the headers exist.
$(BUILD)/%.o: %.c | deps $(GEN_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

# Kept: as products of a pattern chain make would delete them as intermediates.
.SECONDARY: $(GEN_SRCS) $(GEN_HDRS)
$(GEN)/%.pb-c.c $(GEN)/%.pb-c.h: proto/%.proto | deps
	@mkdir -p $(GEN)
	protoc-c --c_out=$(GEN) --proto_path=proto $<

$(GEN)/%.pb-c.o: $(GEN)/%.pb-c.c $(GEN)/%.pb-c.h
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/libherd.a: $(OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/herd: $(MAIN_OBJ) $(BUILD)/libherd.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(HOST_BUILD)/%.o: %.c | deps $(GEN_HDRS)
	@mkdir -p $(dir $@)
	$(HOST_CC) $(HOST_CFLAGS) -MMD -MP -c $< -o $@

$(HOST_BUILD)/gen/%.pb-c.o: $(GEN)/%.pb-c.c $(GEN)/%.pb-c.h
	@mkdir -p $(dir $@)
	$(HOST_CC) $(HOST_CFLAGS) -c $< -o $@

$(BUILD)/herd-agent: $(HOST_OBJS)
	$(HOST_CC) -o $@ $^ $(HOST_LIBS) $(HOST_LDFLAGS)

# The static client's unit test: its objects built like libherd.a's (glibc),
# linked ahead of libherd.a so that libcurl's httpc.o is never pulled in.
$(BUILD)/tests/test-httpc-mini: tests/unit/test-httpc-mini.c $(BUILD)/src/hostbin/httpc-mini.o \
		$(BUILD)/src/hostbin/crypto-mbed.o $(BUILD)/libherd.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Isrc/hostbin $(shell pkg-config --cflags cmocka) -o $@ $^ \
		$(LDFLAGS) -ljansson -lmbedtls -lmbedx509 -lmbedcrypto -pthread $(shell pkg-config --libs cmocka)

$(BUILD)/tests/test-%: tests/unit/test-%.c $(BUILD)/libherd.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(shell pkg-config --cflags cmocka) -o $@ $< $(BUILD)/libherd.a \
		$(LDFLAGS) $(LIBS) $(shell pkg-config --libs cmocka)

$(TEST_TOOLS): $(BUILD)/tests/%: tests/tools/%.c $(BUILD)/libherd.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libherd.a $(LDFLAGS) $(LIBS)

# The host list page bench (bench/hostpage-sql.c): the model's queries on a
# temporary store, linked with libherd.a as the unit tests are.
$(BUILD)/hostpage-bench: bench/hostpage-sql.c $(BUILD)/libherd.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libherd.a $(LDFLAGS) $(LIBS)

# The connection bench (bench/conns.c): a client only, linked with no herd code.
$(BUILD)/conns-bench: bench/conns.c | deps
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -I%,$(CFLAGS_BASE)) $(CFLAGS) -o $@ $< $(LDFLAGS)

$(FAKE_QC): $(FAKE_QC_SRCS) $(wildcard tests/fake-qingcloud/*.h) | deps
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -I%,$(CFLAGS_BASE)) $(shell pkg-config --cflags libmicrohttpd jansson libsodium) $(CFLAGS) \
		-o $@ $(FAKE_QC_SRCS) $(LDFLAGS) \
		$(shell pkg-config --libs libmicrohttpd jansson libsodium) -pthread

unit: deps $(UNIT_BINS)

# Everything reports TAP; prove runs the unit binaries and the bats files,
# on SQLite, then tools/check-pg.sh the store contract and a list of them on
# a throwaway PostgreSQL (docs/ha.md, "Tests"). tools/prove-report.sh is
# prove with failing cases' diagnostics shown, and repeated at the end.
check: deps web $(BUILD)/herd $(BUILD)/herd-agent $(UNIT_BINS) $(TEST_TOOLS) $(FAKE_QC) $(BUILD)/conns-bench
	@tools/deps.sh check
	shellcheck -x scripts/*.sh examples/*/scripts/*.sh examples/*/*.sh tools/*.sh bench/*.sh
	tools/check-banned.sh src
	tools/check-layers.sh
	CMOCKA_MESSAGE_OUTPUT=TAP HERD_BIN=$(CURDIR)/$(BUILD)/herd \
		tools/prove-report.sh $(UNIT_BINS) $(sort $(wildcard tests/e2e/*.bats))
	HERD_BIN=$(CURDIR)/$(BUILD)/herd tools/check-pg.sh

e2e: deps $(BUILD)/herd $(TEST_TOOLS) $(FAKE_QC) $(BUILD)/conns-bench
	HERD_BIN=$(CURDIR)/$(BUILD)/herd tools/prove-report.sh $(sort $(wildcard tests/e2e/*.bats))

# HERD_PROVIDER=qingcloud: the same demo on the fake QingCloud (docs/qingcloud.md)
demo: deps web $(BUILD)/herd $(if $(filter qingcloud,$(HERD_PROVIDER)),$(FAKE_QC))
	@tools/deps.sh demo
	HERD_BIN=$(CURDIR)/$(BUILD)/herd examples/queue/demo.sh

bench: deps web $(BUILD)/herd $(BUILD)/herd-agent $(BUILD)/conns-bench $(BUILD)/hostpage-bench $(BUILD)/tests/push-pb
	@tools/deps.sh bench
	HERD_BIN=$(CURDIR)/$(BUILD)/herd bench/run.sh

# The console (web/): uPlot comes from npm (web/package-lock.json) into
# web/vendor/, and every served text file gets a gzip twin that the server
# sends to clients taking gzip. node_modules, vendor/ and *.gz are not committed.
# Part of the default goal; quiet, and a second run rewrites nothing.
WEB_GZ_FIND := find web -path web/node_modules -prune -o -type f \
	\( -name '*.html' -o -name '*.js' -o -name '*.css' -o -name '*.svg' \) -print
web: deps
	@[ -d web/node_modules/uplot ] || command -v npm >/dev/null || \
		{ echo "herd: the console's chart library comes from npm; install Node.js with npm" >&2; exit 1; }
	@[ -d web/node_modules/uplot ] || (cd web && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
	@mkdir -p web/vendor
	@cp -pu web/node_modules/uplot/dist/uPlot.iife.min.js web/node_modules/uplot/dist/uPlot.min.css web/vendor/
	@for f in $$($(WEB_GZ_FIND)); do [ "$$f.gz" -nt "$$f" ] || gzip -9 -n -c "$$f" >"$$f.gz"; done

# libFuzzer targets (clang): build/fuzz/fuzz-<name>
fuzz: deps $(GEN_SRCS)
	@mkdir -p $(BUILD)/fuzz
	for f in $(FUZZ_SRCS); do \
		clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -Isrc -Isrc/lib -Isrc/server \
			$(PKG_CFLAGS) -o $(BUILD)/fuzz/$$(basename $$f .c) $$f \
			-I$(GEN) $(filter-out src/main.c,$(SRCS)) $(GEN_SRCS) $(LIBS) || exit 1; \
	done

clean:
	rm -rf build build-san

-include $(OBJS:.o=.d) $(MAIN_OBJ:.o=.d) $(HOST_OBJS:.o=.d)
