# shellcheck shell=bash
# deploy/lib/pool.sh: the tfb-fcgi pool for deploy/stack (sourced, bash).
#
# The pool is started the way a user deploys it: spawn-fcgi binds the
# FastCGI socket and execs tfb-spawn on it, which forks the responders
# and keeps them:
#
#   spawn-fcgi -b 4096 -s $VAR/run/fcgi.sock -M 0600 -- \
#       tfb-spawn -w WORKERS -p $VAR/run/spawn.pid -l $VAR/log/app.log \
#       --graceful-timeout 10s --status $VAR/run/status.sock -- APP APP_ARGS...
#
# tfb-spawn does the process management: it writes its pid file (and
# refuses to start on one naming a running tfb-spawn), logs for itself
# and its workers, drops root for POOL_USER, and on SIGTERM stops its
# workers gracefully, kills the ones left after the graceful timeout and
# exits; its workers die with it.  What is left here is to compose that
# command, wait for the first responder, and stop the supervisor the way
# the front server is stopped.
#
# Expects from its caller: VAR resolved, the knobs APP, APP_ARGS, SPAWN,
# WORKERS, FCGI, FCGI_PORT and POOL_USER, FRONT_USER and STOP_DEADLINE,
# the functions die, is_root and pg_setenv, deploy/lib/proc.sh, and an
# array STARTED to which pool_start adds "pool" before it launches the
# pool.

# pool_pid: the running supervisor's pid; false when none runs from VAR.
pool_pid() {
	pid_in "$VAR/run/spawn.pid" tfb-spawn
}

# pool_workers: how many responders the running supervisor has; false,
# printing nothing, when none runs.
pool_workers() {
	local pid
	pid=$(pool_pid) || return 1
	children "$pid" | wc -l
}

# pool_check: refuse to start without the programs, twice, with a
# WORKERS that tfb-spawn would refuse (where nobody would see its
# message: spawn-fcgi sends it to /dev/null), or on a taken port.
pool_check() {
	[ -x "$APP" ] || die "$APP not found: run make first (or set APP=)"
	[ -x "$SPAWN" ] || die "$SPAWN not found: run make first (or set SPAWN=)"
	! pool_pid >/dev/null || die "the pool already runs from $VAR: deploy/stack stop first"
	case $WORKERS in
	'' | *[!0-9]* | 0) die "WORKERS=$WORKERS: want a positive number of responders" ;;
	esac
	case $FCGI in
	unix) ;;
	tcp)
		! port_taken 127.0.0.1 "$FCGI_PORT" ||
			die "FastCGI port 127.0.0.1:$FCGI_PORT is already taken (set FCGI_PORT)"
		;;
	*) die "FCGI=$FCGI: want unix or tcp" ;;
	esac
	[ -z "$POOL_USER" ] || is_root || die "POOL_USER needs root"
}

pool_start() {
	local launch n i log=$VAR/log/app.log
	pool_check
	pg_setenv
	# The front server opens hundreds of connections at once under load;
	# each waits in the backlog until a responder is free.
	launch=(spawn-fcgi -b 4096)
	if [ "$FCGI" = tcp ]; then
		launch+=(-a 127.0.0.1 -p "$FCGI_PORT")
	elif is_root; then
		# The front server's workers run as www-data.
		launch+=(-s "$VAR/run/fcgi.sock" -G "$FRONT_USER" -M 0660)
	else
		launch+=(-s "$VAR/run/fcgi.sock" -M 0600)
	fi
	# The graceful timeout is the stack's deadline, so that pool_stop
	# finds the supervisor gone in time.
	launch+=(-- "$SPAWN" -w "$WORKERS" -p "$VAR/run/spawn.pid" -l "$log"
		--graceful-timeout "${STOP_DEADLINE}s" --status "$VAR/run/status.sock")
	# The status socket, which tfb-spawn binds, is the front server's to
	# reach as the pool's is.
	! is_root || launch+=(--socket-group "$FRONT_USER")
	[ -z "$POOL_USER" ] || launch+=(-u "$POOL_USER")
	# shellcheck disable=SC2206 # APP_ARGS is split on blanks by design
	launch+=(-- "$APP" $APP_ARGS)

	# tfb-spawn reopens its log on SIGUSR1, as POOL_USER by then.
	touch "$log"
	[ -z "$POOL_USER" ] || chown "$POOL_USER" "$log"
	# A pool killed outright leaves its pid file behind; tfb-spawn would
	# refuse to start on it while that pid lingers as a zombie.
	rm -f "$VAR/run/spawn.pid"
	STARTED+=(pool)
	# spawn-fcgi forks, execs tfb-spawn in the child and exits, failing
	# if the child died within 0.1 s; it prints the child's pid.
	"${launch[@]}" >/dev/null || pool_failed "tfb-spawn did not start"
	# A responder with a bad configuration exits 2 a moment after it
	# starts, and the supervisor after it: look for one that runs.
	for ((i = 0; i < 10; i++)); do
		sleep 0.2
		n=$(pool_workers) && [ "$n" -gt 0 ] && return 0
	done
	pool_failed "no responder runs"
}

# pool_failed WHY: stop what started of the pool, show the end of its
# log, exit.
pool_failed() {
	pool_stop
	echo "deploy/stack: end of $VAR/log/app.log:" >&2
	tail -n 5 "$VAR/log/app.log" | sed 's/^/  /' >&2
	die "the pool: $1"
}

pool_stop() {
	local pid
	# tfb-spawn kills its own stragglers after STOP_DEADLINE: give it a
	# little more.  Killed, it takes its workers along (PR_SET_PDEATHSIG).
	if pid=$(pool_pid); then
		stop_pids tfb-spawn $((STOP_DEADLINE + 2)) "$pid"
	fi
	# A supervisor killed, or running as POOL_USER, leaves its pid file;
	# the socket spawn-fcgi bound is left to us.
	rm -f "$VAR/run/spawn.pid" "$VAR/run/fcgi.sock" "$VAR/run/status.sock"
}
