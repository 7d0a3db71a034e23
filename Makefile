# tfb-fcgi: the TechEmpower routes from a pool of FastCGI responders.
#
#   make            build build/tfb-fcgi (and build/tfb-spawn)
#   make test       unit tests, then integration tests against real
#                   PostgreSQL, nginx and lighttpd; ends
#                   "N passed, N failed, N skipped"
#   make run        PostgreSQL (embedded under var/ unless PGHOST is set),
#                   the pool and nginx on 127.0.0.1:$(PORT); Ctrl-C stops it
#   make start/stop the same in the background
#   make bench      the article's experiment: this pool against Flask and
#                   FastAPI, the database a hop away (tests/bench/README.md)
#   make test-cluster  as root: nginx, two app hosts, a PostgreSQL primary
#                   and its standby in network namespaces (deploy/cluster);
#                   make test runs it too
#   make test-fresh README's two commands in a bare Debian 12 root (root only)
#   make install    the programs, systemd units, nginx snippet, SQL and
#                   licence under PREFIX (/usr/local), DESTDIR too;
#                   make uninstall takes them away
#   make deb        build/tfb-fcgi_VERSION_ARCH.deb, with dpkg-deb
#   make fuzz       the libFuzzer targets, FUZZ_SECONDS (60) each
#   make test-sanitize  make test on an AddressSanitizer and
#                   UndefinedBehaviorSanitizer build (in build-asan)
#
# Switches: SANITIZE=address,undefined  OPT=-O0  CC=clang  V=1 (show commands)
#           B=DIR (build directory)  SERVER=lighttpd  WORKERS=N  PORT=N
#           PREFIX=/usr/local  DESTDIR=  (make install)

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
NOBUILD_GOALS = clean format format-check stop test-fresh fuzz fuzz-build \
                uninstall
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

ALL_CPPFLAGS = -D_POSIX_C_SOURCE=200809L $(FORTIFY) -Iapp -Ispawn/core \
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

# spawn/ is the lower layer, in two units.  spawn/core/ holds the process
# mechanics a responder runs inside (log, options, listening socket,
# scoreboard, record judge, exit codes): app/ and the supervisor both use
# it.  spawn/supervisor/ is tfb-spawn, the pool: it uses core/ and knows no
# application.  Nothing in spawn/ knows app/; core/ knows neither.
CORE_SRCS = $(wildcard spawn/core/*.c)
CORE_OBJS = $(CORE_SRCS:%.c=$(B)/%.o) $(B)/version.o
SUP_SRCS = $(wildcard spawn/supervisor/*.c)
SUP_OBJS = $(SUP_SRCS:%.c=$(B)/%.o)
APP_SRCS = $(wildcard app/*.c)
APP_OBJS = $(APP_SRCS:%.c=$(B)/%.o)
LIBS = $(B)/libapp.a $(B)/libsupervisor.a $(B)/libcore.a

TEST_SRCS = $(wildcard tests/app/test_*.c tests/spawn/*/test_*.c)
TEST_BINS = $(TEST_SRCS:%.c=$(B)/%)
# Programs the integration tests run: a scripted FastCGI worker for the
# supervisor, the delay line that puts the database a round trip away,
# and the bench's open-loop load.
TEST_TOOLS = $(B)/tests/spawn/supervisor/fake_worker $(B)/tests/integration/netdelay \
             $(B)/tests/bench/openloop

PROGS = $(B)/tfb-fcgi $(B)/tfb-spawn

.PHONY: FORCE all deps install uninstall deb test unit test-cluster test-fresh run start stop bench format \
        format-check clean fuzz fuzz-build fuzz-bins test-sanitize

all: deps $(PROGS)

# Missing Debian packages are installed when root, named otherwise.
deps:
	@deploy/deps build

$(B)/tfb-fcgi: $(B)/app/main.o $(B)/libapp.a $(B)/libcore.a
	$(msg) LINK $@
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS_APP)

$(B)/tfb-spawn: $(B)/spawn/supervisor/main.o $(B)/libsupervisor.a $(B)/libcore.a
	$(msg) LINK $@
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/libapp.a: $(filter-out $(B)/app/main.o,$(APP_OBJS))
$(B)/libsupervisor.a: $(filter-out $(B)/spawn/supervisor/main.o,$(SUP_OBJS))
$(B)/libcore.a: $(CORE_OBJS)
$(LIBS):
	$(msg) AR $@
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(B)/%.o: %.c
	@mkdir -p $(@D)
	$(msg) CC $<
	$(Q)$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) $(DEPFLAGS) -c -o $@ $<

# The version (spawn/core/version.h), asked of deploy/version at every
# make; the file is rewritten, and what links it relinked, only when it
# changes.
VERSION_STR := $(shell deploy/version 2>/dev/null || cat VERSION)
DEB_VERSION = $(shell deploy/version --deb)

$(B)/version.c: FORCE
	@mkdir -p $(@D)
	@printf '/* Written by the Makefile from deploy/version. */\n#include "version.h"\n\nconst char tfb_version[] = "%s";\n' \
	    '$(VERSION_STR)' >$@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi

$(B)/version.o: $(B)/version.c
	$(msg) CC $<
	$(Q)$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

FORCE:

# A unit test mirrors one source file: it #includes the .c it tests (so
# that it reaches the file's static functions) and links the rest from the
# libraries, whose copy of that module the linker then never needs.
$(B)/tests/%: tests/%.c tests/harness.h $(wildcard tests/*/*.inc) $(LIBS)
	@mkdir -p $(@D)
	$(msg) TEST $@
	$(Q)$(CC) $(ALL_CPPFLAGS) -Itests $(ALL_CFLAGS) $(DEPFLAGS) $(ALL_LDFLAGS) \
	    -o $@ $< \
	    $(LIBS) $(LDLIBS_APP)

$(B)/tests/spawn/supervisor/fake_worker: tests/spawn/supervisor/fake_worker.c $(B)/libcore.a
	@mkdir -p $(@D)
	$(msg) TOOL $@
	$(Q)$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) $(DEPFLAGS) $(ALL_LDFLAGS) -o $@ $^ -lfcgi

# The delay line and the open-loop load are part of the test bench, not
# of the product: never a sanitizer build, whose cost would show as
# lateness on the wire or in the load.
$(B)/tests/integration/netdelay $(B)/tests/bench/openloop: $(B)/tests/%: tests/%.c
	@mkdir -p $(@D)
	$(msg) TOOL $@
	$(Q)$(CC) $(ALL_CPPFLAGS) $(WARN) $(WERROR) $(OPT) $(CFLAGS) $(DEPFLAGS) \
	    $(LDFLAGS) -o $@ $<

unit: all $(TEST_BINS)

# The layout and pyflakes (tests/lint), the fuzz targets' smoke
# (tests/fuzz/run) and tests/run's test of itself count among the tests.
test: all $(TEST_BINS) $(TEST_TOOLS)
	@deploy/deps test
	@$(MAKE) --no-print-directory fuzz-build
	@APP=$(abspath $(B))/tfb-fcgi TFB_BUILD_DIR=$(abspath $(B)) \
	    FUZZ_DIR=$(abspath $(FUZZ_B))/tests/fuzz FORMAT_SRCS="$(FORMAT_SRCS)" \
	    tests/run $(TEST_BINS) tests/lint tests/fuzz/run tests/run_selftest.py

# The whole of make test on a sanitizer build of its own: the unit tests,
# and through APP and TFB_BUILD_DIR every integration test, run
# build-asan's binaries.  A sanitizer's report goes to a file of its own
# (log_path), whichever process made it, a worker under tfb-spawn included,
# and any such file fails the run.  The bench's smoke test checks that
# build/tfb-fcgi exists before it starts APP: it is built too.
SANITIZE_B = build-asan
SANITIZE_LOG = $(abspath $(SANITIZE_B))/reports
test-sanitize: all
	@rm -rf $(SANITIZE_LOG) && mkdir -p $(SANITIZE_LOG)
	@ASAN_OPTIONS=log_path=$(SANITIZE_LOG)/asan \
	 UBSAN_OPTIONS=log_path=$(SANITIZE_LOG)/ubsan:print_stacktrace=1 \
	    $(MAKE) --no-print-directory B=$(SANITIZE_B) \
	    SANITIZE=address,undefined test; status=$$?; \
	 if [ -n "$$(ls -A $(SANITIZE_LOG))" ]; then \
	     echo "test-sanitize: sanitizer reports in $(SANITIZE_LOG):"; \
	     head -n 40 $(SANITIZE_LOG)/*; exit 1; \
	 fi; \
	 echo "test-sanitize: no sanitizer report from any process"; \
	 exit $$status

# libFuzzer targets (tests/fuzz), built by clang into a directory of their
# own: the libraries with the sanitizers and coverage (fuzzer-no-link),
# each target linked with libFuzzer's main.  make fuzz runs each for
# FUZZ_SECONDS, growing a corpus in $(FUZZ_B)/tests/fuzz/corpus/ from the
# seeds in tests/fuzz/corpus/; make test runs a smoke of each.
FUZZ_B = build-fuzz
FUZZ_CC = clang-14
FUZZ_SECONDS ?= 60
FUZZ_BINS = $(patsubst %.c,$(B)/%,$(wildcard tests/fuzz/fuzz_*.c))

fuzz-build:
	@deploy/deps test
	@$(MAKE) --no-print-directory B=$(FUZZ_B) CC=$(FUZZ_CC) \
	    SANITIZE=fuzzer-no-link,address,undefined fuzz-bins

fuzz-bins: $(FUZZ_BINS)

$(B)/tests/fuzz/%: tests/fuzz/%.c $(LIBS)
	@mkdir -p $(@D)
	$(msg) FUZZ $@
	$(Q)$(CC) $(ALL_CPPFLAGS) -Itests $(ALL_CFLAGS) $(DEPFLAGS) $(ALL_LDFLAGS) \
	    -fsanitize=fuzzer -o $@ $< $(LIBS) $(LDLIBS_APP)

fuzz: fuzz-build
	@FUZZ_DIR=$(abspath $(FUZZ_B))/tests/fuzz tests/fuzz/run --seconds $(FUZZ_SECONDS)

# deploy/cluster's deployment built on this machine out of network
# namespaces (tests/integration/test_cluster.py), alone.
test-cluster: all $(TEST_TOOLS)
	@deploy/deps test
	@APP=$(abspath $(B))/tfb-fcgi TFB_BUILD_DIR=$(abspath $(B)) TESTS=test_cluster \
	    tests/run

# The stack starts what was just built; stopping needs no build.  The
# shell execs deploy/stack, so that from make to a responder there are
# three launchers: make, deploy/stack, tfb-spawn.  WORKERS, PORT, SERVER
# and the other knobs reach deploy/stack through the environment (make
# exports the variables of its command line).
run start: all
	@deploy/deps run
	@APP=$${APP:-$(abspath $(B))/tfb-fcgi} exec deploy/stack $@

stop:
	@deploy/stack $@

bench: all $(TEST_TOOLS)
	@deploy/deps bench
	@tests/bench/run

# make install: where a package would put things.  The programs in
# BINDIR; the units where systemd reads them: Debian's /lib/systemd/system
# for PREFIX=/usr (a package's place), else PREFIX/lib/systemd/system
# (/usr/local/lib/systemd/system is on systemd's path too), their
# ExecStart naming BINDIR; the nginx snippet and the settings' template in
# /etc, where nginx and the unit look, whatever PREFIX (an existing
# /etc/default/tfb-fcgi is left as it is); the SQL and the licence under
# PREFIX/share.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share/tfb-fcgi
DOCDIR ?= $(PREFIX)/share/doc/tfb-fcgi
SYSCONFDIR ?= /etc
UNITDIR ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)
INSTALL ?= install
INSTALLED = $(BINDIR)/tfb-spawn $(BINDIR)/tfb-fcgi \
            $(UNITDIR)/tfb-fcgi.service $(UNITDIR)/tfb-fcgi.socket \
            $(SYSCONFDIR)/nginx/snippets/tfb-fcgi.conf \
            $(DATADIR)/create.sql $(DATADIR)/roles.sql $(DOCDIR)/LICENSE

install: all
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) \
	    $(DESTDIR)$(SYSCONFDIR)/nginx/snippets $(DESTDIR)$(SYSCONFDIR)/default \
	    $(DESTDIR)$(DATADIR) $(DESTDIR)$(DOCDIR)
	$(INSTALL) -m 755 $(B)/tfb-spawn $(B)/tfb-fcgi $(DESTDIR)$(BINDIR)/
	sed 's|/usr/local/bin/|$(BINDIR)/|g' deploy/systemd/tfb-fcgi.service \
	    >$(DESTDIR)$(UNITDIR)/tfb-fcgi.service
	chmod 644 $(DESTDIR)$(UNITDIR)/tfb-fcgi.service
	$(INSTALL) -m 644 deploy/systemd/tfb-fcgi.socket $(DESTDIR)$(UNITDIR)/
	$(INSTALL) -m 644 deploy/package/nginx-snippet.conf \
	    $(DESTDIR)$(SYSCONFDIR)/nginx/snippets/tfb-fcgi.conf
	[ -e $(DESTDIR)$(SYSCONFDIR)/default/tfb-fcgi ] || $(INSTALL) -m 644 \
	    deploy/package/default $(DESTDIR)$(SYSCONFDIR)/default/tfb-fcgi
	$(INSTALL) -m 644 deploy/sql/create.sql deploy/sql/roles.sql \
	    $(DESTDIR)$(DATADIR)/
	$(INSTALL) -m 644 LICENSE $(DESTDIR)$(DOCDIR)/

# The settings' template goes only if nobody changed it; the directories
# only if empty.
uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	! cmp -s deploy/package/default $(DESTDIR)$(SYSCONFDIR)/default/tfb-fcgi || \
	    rm -f $(DESTDIR)$(SYSCONFDIR)/default/tfb-fcgi
	-rmdir $(DESTDIR)$(DATADIR) $(DESTDIR)$(DOCDIR) 2>/dev/null

# make deb: make install with PREFIX=/usr into a staging root, the
# programs stripped, Debian's copyright file, the maintainer scripts of
# deploy/package (the socket unit enabled and started, as dh_installsystemd
# would; an upgrade re-executes a running pool in place), the files under
# /etc as conffiles, and libc6's version from the newest GLIBC_ symbol the
# programs use.  Version: deploy/version --deb.
DEB_ARCH = $(shell dpkg --print-architecture)
DEB_ROOT = $(B)/deb/root
DEB = $(B)/tfb-fcgi_$(DEB_VERSION)_$(DEB_ARCH).deb

deb: all
	rm -rf $(B)/deb $(B)/tfb-fcgi_*.deb
	$(MAKE) --no-print-directory install DESTDIR=$(abspath $(DEB_ROOT)) \
	    PREFIX=/usr DOCDIR=/usr/share/doc/tfb-fcgi
	strip --strip-unneeded $(DEB_ROOT)/usr/bin/tfb-spawn $(DEB_ROOT)/usr/bin/tfb-fcgi
	mv $(DEB_ROOT)/usr/share/doc/tfb-fcgi/LICENSE \
	    $(DEB_ROOT)/usr/share/doc/tfb-fcgi/copyright
	$(INSTALL) -d $(DEB_ROOT)/DEBIAN
	$(INSTALL) -m 755 deploy/package/postinst deploy/package/prerm \
	    deploy/package/postrm $(DEB_ROOT)/DEBIAN/
	cd $(DEB_ROOT) && find etc -type f | sed 's|^|/|' | sort >DEBIAN/conffiles
	glibc=$$(objdump -T $(DEB_ROOT)/usr/bin/* | grep -o 'GLIBC_[0-9.]*' | \
	    sed 's/GLIBC_//' | sort -V | tail -n 1) && \
	size=$$(du -sk --exclude=DEBIAN $(DEB_ROOT) | cut -f1) && \
	sed -e 's/@VERSION@/$(DEB_VERSION)/' -e 's/@ARCH@/$(DEB_ARCH)/' \
	    -e "s/@SIZE@/$$size/" -e "s/@GLIBC@/$$glibc/" \
	    deploy/package/control.in >$(DEB_ROOT)/DEBIAN/control
	dpkg-deb --root-owner-group -Zxz --build $(DEB_ROOT) $(DEB)

# README's two commands on a bare Debian 12 root filesystem (tests/fresh).
test-fresh:
	@deploy/deps fresh
	@tests/fresh/run

FORMAT_SRCS = $(wildcard app/*.[ch] spawn/*/*.[ch] tests/*.h tests/*/*.[ch] \
              tests/*/*/*.[ch])

format:
	clang-format -i $(FORMAT_SRCS)

format-check:
	clang-format --dry-run --Werror $(FORMAT_SRCS)

clean:
	rm -rf $(B) $(FUZZ_B) $(SANITIZE_B)

-include $(APP_OBJS:.o=.d) $(CORE_OBJS:.o=.d) $(SUP_OBJS:.o=.d) $(TEST_BINS:=.d) \
         $(TEST_TOOLS:=.d) $(FUZZ_BINS:=.d)
