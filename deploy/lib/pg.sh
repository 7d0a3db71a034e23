# shellcheck shell=bash
# deploy/lib/pg.sh: PostgreSQL for deploy/stack (sourced, bash): the
# embedded cluster under $VAR/pg (created, configured, loaded, started and
# stopped), or the server PGHOST names (only checked, or loaded when told:
# "deploy/stack pg load" runs roles.sql there too, as PG_SUPERUSER).
#
# Expects from its caller: ROOT, VAR resolved, PG_OS_USER, the functions
# die and is_root, and an array STARTED to which pg_start adds "pg" before
# it launches the cluster.

PG_PORT=${PGPORT:-5432} # the embedded cluster's port

pg_bindir() {
	if [ -n "${PG_BINDIR:-}" ]; then
		echo "$PG_BINDIR"
		return
	fi
	local d
	d=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
	[ -x "$d/postgres" ] || die "no PostgreSQL server found: run deploy/deps run"
	echo "$d"
}

# The embedded cluster unless PGHOST names another server.  "deploy/stack
# env" output in the caller's environment still means the embedded one.
pg_embedded() {
	[ -z "${PGHOST:-}" ] || [ "$(readlink -f "$PGHOST" 2>/dev/null)" = "$VAR/run/pg" ]
}

# pg_setenv: export the PG* variables the application and psql use.
pg_setenv() {
	if pg_embedded; then
		export PGHOST=$VAR/run/pg PGPORT=$PG_PORT
		export PGUSER=benchmarkdbuser PGDATABASE=hello_world
	else
		export PGHOST PGPORT=${PGPORT:-5432}
		export PGUSER=${PGUSER:-benchmarkdbuser}
		export PGDATABASE=${PGDATABASE:-hello_world}
	fi
}

# as_pg CMD...: run a server-side command as the cluster's owner, from a
# directory that user can read.
as_pg() {
	if is_root; then
		(cd "$VAR" && runuser -u "$PG_OS_USER" -- "$@")
	else
		(cd "$VAR" && "$@")
	fi
}

pg_running() {
	[ -f "$VAR/pg/data/postmaster.pid" ] &&
		as_pg "$(pg_bindir)/pg_ctl" status -D "$VAR/pg/data" >/dev/null 2>&1
}

# psql_q ARGS...: psql for scripts: no psqlrc, stop at the first error,
# no NOTICEs ("table does not exist, skipping").
psql_q() {
	PGOPTIONS='-c client_min_messages=warning' \
		"$(pg_bindir)/psql" -X -q -v ON_ERROR_STOP=1 "$@" >/dev/null
}

# pg_load: the role and database, then the tables, on any server.
# roles.sql runs as a superuser: "postgres" on the embedded cluster; on
# another server PG_SUPERUSER, or PGUSER when it is unset (TFB's
# benchmarkdbuser is a superuser, and where the role and database exist
# already roles.sql changes nothing, whoever runs it).  A fresh server
# where neither exists needs PG_SUPERUSER=postgres (or its own superuser).
pg_load() {
	local su
	pg_setenv
	if pg_embedded; then
		su=postgres
	else
		su=${PG_SUPERUSER:-$PGUSER}
	fi
	psql_q -U "$su" -d postgres -f "$ROOT/deploy/sql/roles.sql" || return 1
	psql_q -f "$ROOT/deploy/sql/create.sql"
}

# The embedded cluster's settings, rewritten at every start so that a
# change here (or to PGPORT, VAR) needs no new cluster.  From TFB's
# postgresql.conf: pg_stat_statements for the verifier's query counts,
# synchronous_commit off.  fsync and full_page_writes off as well: this
# cluster is a throwaway benchmark fixture, a crash may cost its data
# (deploy/stack pg load, or removing $VAR/pg, rebuilds it).
#
# Root writes nothing where postgres may write: the file is in conf/
# (root's), and the cluster's own postgresql.conf includes it by its
# absolute path, a line postgres itself appends.  A file root wrote into
# the data directory could have been a link postgres planted.
pg_write_conf() {
	local conf=$VAR/conf/pg.conf data=$VAR/pg/data
	cat >"$conf" <<EOF
# Written by deploy/stack at every start: edit deploy/lib/pg.sh instead.
listen_addresses = ''
port = $PG_PORT
unix_socket_directories = '$VAR/run/pg'
max_connections = 256
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
pg_stat_statements.max = 10000
synchronous_commit = off
fsync = off
full_page_writes = off
EOF
	# shellcheck disable=SC2016 # expanded by the shell postgres runs
	grep -qxF "include = '$conf'" "$data/postgresql.conf" ||
		as_pg sh -c 'printf "include = '\''%s'\''\n" "$1" >>"$2"' sh "$conf" \
			"$data/postgresql.conf"
}

# pg_record: the PG* settings of an external database, but its password,
# into $VAR/run/pg.env, so that "status", "env" and "psql" reach the
# database the stack started with from a shell without them (pg_recall).
# The password stays out of the file: psql asks for it, or finds it in
# PGPASSWORD or PGPASSFILE.
pg_record() {
	local v
	rm -f "$VAR/run/pg.env"
	pg_embedded && return 0
	for v in $(compgen -e); do
		case $v in PGPASSWORD | PG_BINDIR) continue ;; PG*) ;; *) continue ;; esac
		printf 'export %s=%q\n' "$v" "${!v}"
	done >"$VAR/run/pg.env"
}

# pg_recall: a caller without PGHOST gets the settings the running stack
# recorded (pg_record), if it did.
pg_recall() {
	if [ -z "${PGHOST:-}" ] && [ -n "$VAR" ] && [ -f "$VAR/run/pg.env" ]; then
		# shellcheck source=/dev/null # written by pg_record
		. "$VAR/run/pg.env"
	fi
}

# pg_refusal: libpq's own words on why the database cannot be reached.
pg_refusal() {
	"$(pg_bindir)/psql" -X -w -c '' 2>&1 | sed -n '1s/^psql: error: //p'
}

pg_start() {
	if ! pg_embedded; then
		pg_setenv
		"$(pg_bindir)/pg_isready" -q ||
			die "PostgreSQL at PGHOST=$PGHOST PGPORT=$PGPORT does not answer: $(pg_refusal)"
		pg_record
		return 0
	fi
	rm -f "$VAR/run/pg.env"
	if ! pg_running; then
		pg_start_cluster
	fi

	# Created once, loaded once: the stamp is written after a load that
	# succeeded, so a failed one is tried again at the next start.  It is
	# in conf/, root's, like everything root writes.
	if [ ! -e "$VAR/conf/pg.loaded" ]; then
		pg_load || die "loading deploy/sql failed"
		touch "$VAR/conf/pg.loaded"
	fi
}

pg_start_cluster() {
	local bin data=$VAR/pg/data log=$VAR/log/pg.log
	bin=$(pg_bindir)
	if [ ! -f "$data/PG_VERSION" ]; then
		rm -rf "$VAR/pg" # the remains of an initdb that failed
		mkdir -m 0700 "$VAR/pg"
		! is_root || chown "$PG_OS_USER": "$VAR/pg"
		rm -f "$VAR/conf/pg.loaded"
		as_pg "$bin/initdb" -D "$data" -U postgres -A trust -E UTF8 \
			--no-locale --no-sync >"$VAR/log/initdb.log" 2>&1 ||
			die "initdb failed, see $VAR/log/initdb.log"
	fi
	pg_write_conf
	touch "$log"
	! is_root || chown "$PG_OS_USER": "$log"

	STARTED+=(pg)
	if ! as_pg "$bin/pg_ctl" start -D "$data" -l "$log" -w -t 60 -s >/dev/null; then
		tail -n 5 "$log" >&2
		die "PostgreSQL did not start, see $log"
	fi
}

pg_stop() {
	[ -f "$VAR/pg/data/postmaster.pid" ] || return 0
	pg_running || {
		rm -f "$VAR/pg/data/postmaster.pid"
		return 0
	}
	as_pg "$(pg_bindir)/pg_ctl" stop -D "$VAR/pg/data" -m fast -w -t 30 -s >/dev/null
}
