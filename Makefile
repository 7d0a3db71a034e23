# tfb-fcgi: the TechEmpower routes from a pool of FastCGI responders.
#
#   make            build build/tfb-fcgi (and build/tfb-spawn)
#   make test       unit tests, then integration tests against real
#                   PostgreSQL, nginx and lighttpd; ends
#                   "N passed, N failed, N skipped"
#   make run        PostgreSQL (embedded under var/ unless PGHOST is set),
#                   the pool and nginx on 127.0.0.1:$(PORT); Ctrl-C stops it
#   make start/stop the same in the background
#   make bench      process-count scaling experiments (see README)
#   make test-cluster  as root: nginx, two app hosts, a PostgreSQL primary
#                   and its standby in network namespaces (deploy/cluster);
#                   make test runs it too
#   make test-fresh README's two commands in a bare Debian 12 root (root only)
#
# Switches: SANITIZE=address,undefined  OPT=-O0  CC=clang  V=1 (show commands)
#           B=DIR (build directory)  SERVER=lighttpd  WORKERS=N  PORT=N

CC ?= cc
PKG_CONFIG ?= pkg-config
PKGS = libpq json-c

OPT ?= -O2 -g
WARN = -std=c11 -Wall -Wextra -pedantic -Wshadow -Wstrict-prototypes \
       -Wmissing-prototypes -Wold-style-definition -Wpointer-arith \
       -Wwrite-strings -Wvla -Wformat=2 -fno-common
WERROR ?= -Werror
ifdef SANITIZE
SAN = -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
FORTIFY =
else
SAN =
FORTIFY = -D_FORTIFY_SOURCE=2
endif

B = build
.DEFAULT_GOAL = all

# The libraries' flags come from pkg-config, which can only answer once
# deploy/deps has installed the packages.  So they live in a generated
# file whose rule runs deploy/deps first; make builds it before anything
# else and restarts.  Goals that compile nothing do not ask for it.
NOBUILD_GOALS = clean format format-check stop test-fresh
ifneq ($(filter-out $(NOBUILD_GOALS),$(or $(MAKECMDGOALS),all)),)
include $(B)/pkg.mk
endif

$(B)/pkg.mk: Makefile deploy/deps
	@deploy/deps build
	@mkdir -p $(@D)
	@cflags=$$($(PKG_CONFIG) --cflags $(PKGS)) && \
	 libs=$$($(PKG_CONFIG) --libs $(PKGS)) && \
	 printf 'PKG_CFLAGS = %s\nPKG_LIBS = %s\n' "$$cflags" "$$libs" >$@.tmp
	@mv $@.tmp $@

ALL_CPPFLAGS = -D_POSIX_C_SOURCE=200809L $(FORTIFY) -Iapp -Ispawn \
               $(PKG_CFLAGS) $(CPPFLAGS)
ALL_CFLAGS = $(WARN) $(WERROR) $(OPT) $(SAN) $(CFLAGS)
DEPFLAGS = -MMD -MP
ALL_LDFLAGS = $(SAN) $(LDFLAGS)
LDLIBS_APP = -lfcgi $(PKG_LIBS) $(LDLIBS)

# V=1 shows the commands.
ifeq ($(V),1)
Q =
msg = @true
else
Q = @
msg = @printf '  %-6s %s\n'
endif

# spawn/ is the lower layer: the process mechanics the responder runs
# inside (log, listening socket, scoreboard, options, exit codes) and the
# supervisor.  app/ uses it; nothing in spawn/ knows app/.
SPAWN_SRCS = $(wildcard spawn/*.c)
SPAWN_OBJS = $(SPAWN_SRCS:%.c=$(B)/%.o)
APP_SRCS = $(wildcard app/*.c)
APP_OBJS = $(APP_SRCS:%.c=$(B)/%.o)
LIBS = $(B)/libapp.a $(B)/libspawn.a

TEST_SRCS = $(wildcard tests/app/test_*.c tests/spawn/test_*.c)
TEST_BINS = $(TEST_SRCS:%.c=$(B)/%)

PROGS = $(B)/tfb-fcgi $(B)/tfb-spawn

.PHONY: all deps test unit test-cluster test-fresh run start stop bench format \
        format-check clean

all: deps $(PROGS)

# Missing Debian packages are installed when root, named otherwise.
deps:
	@deploy/deps build

$(B)/tfb-fcgi: $(B)/app/main.o $(LIBS)
	$(msg) LINK $@
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS_APP)

$(B)/tfb-spawn: $(B)/spawn/main.o $(B)/libspawn.a
	$(msg) LINK $@
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/libapp.a: $(filter-out $(B)/app/main.o,$(APP_OBJS))
$(B)/libspawn.a: $(filter-out $(B)/spawn/main.o,$(SPAWN_OBJS))
$(LIBS):
	$(msg) AR $@
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(B)/%.o: %.c
	@mkdir -p $(@D)
	$(msg) CC $<
	$(Q)$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) $(DEPFLAGS) -c -o $@ $<

# A unit test mirrors one source file: it #includes the .c it tests (so
# that it reaches the file's static functions) and links the rest from the
# libraries, whose copy of that module the linker then never needs.
$(B)/tests/%: tests/%.c tests/harness.h $(wildcard tests/*/*.inc) $(LIBS)
	@mkdir -p $(@D)
	$(msg) TEST $@
	$(Q)$(CC) $(ALL_CPPFLAGS) -Itests $(ALL_CFLAGS) $(DEPFLAGS) $(ALL_LDFLAGS) \
	    -o $@ $< \
	    $(LIBS) $(LDLIBS_APP)

unit: all $(TEST_BINS)

test: all $(TEST_BINS)
	@deploy/deps test
	@APP=$(abspath $(B))/tfb-fcgi TFB_BUILD_DIR=$(abspath $(B)) tests/run $(TEST_BINS)

# deploy/cluster's deployment built on this machine out of network
# namespaces (tests/integration/test_cluster.py), alone.
test-cluster: all
	@deploy/deps test
	@APP=$(abspath $(B))/tfb-fcgi TFB_BUILD_DIR=$(abspath $(B)) TESTS=test_cluster \
	    tests/run

# The stack starts what was just built; stopping needs no build.
run start: all
	@deploy/deps run
	@APP=$${APP:-$(abspath $(B))/tfb-fcgi} deploy/stack $@

stop:
	@deploy/stack $@

bench: all
	@deploy/deps bench
	@tests/bench/run

# README's two commands on a bare Debian 12 root filesystem (tests/fresh).
test-fresh:
	@deploy/deps fresh
	@tests/fresh/run

FORMAT_SRCS = $(wildcard app/*.[ch] spawn/*.[ch] tests/*.h tests/*/*.[ch])

format:
	clang-format -i $(FORMAT_SRCS)

format-check:
	clang-format --dry-run --Werror $(FORMAT_SRCS)

clean:
	rm -rf $(B)

-include $(APP_OBJS:.o=.d) $(SPAWN_OBJS:.o=.d) $(TEST_BINS:=.d)
