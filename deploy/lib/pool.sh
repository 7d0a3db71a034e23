# shellcheck shell=bash
# deploy/lib/pool.sh: the tfb-fcgi pool for deploy/stack (sourced, bash).
#
# The pool is tfb-spawn, which binds the FastCGI socket itself, forks the
# responders and keeps them, started in a session of its own:
#
#   setsid tfb-spawn --bind $VAR/run/fcgi.sock --socket-mode 0600 \
#       --backlog 4096 -w WORKERS|auto -p $VAR/run/spawn.pid -l $VAR/log/app.log \
#       --graceful-timeout 10s --status $VAR/run/status.sock -- APP APP_ARGS... \
#       </dev/null >/dev/null 2>>$VAR/log/app.log &
#
# so that from make run to a responder there are three launchers: make,
# deploy/stack, tfb-spawn.  tfb-spawn does the process management: it
# binds the socket (and removes it when it exits), writes its pid file
# (and refuses to start on one naming a running tfb-spawn), logs for
# itself and its workers, drops root for POOL_USER, and on SIGTERM stops
# its workers gracefully, kills the ones left after the graceful timeout
# and exits; its workers die with it.  What is left here is to compose
# that command, wait for the first responder, and stop the supervisor the
# way the front server is stopped.  (spawn-fcgi in front of tfb-spawn
# still works, as tests/integration/pool_deploy.py shows; the stack has
# no need of it.)
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
# printing nothing, when none runs.  The status page's process, a fork of
# the supervisor (its comm is tfb-spawn's), is none.
pool_workers() {
	local pid c comm n=0
	pid=$(pool_pid) || return 1
	for c in $(children "$pid"); do
		read -r comm 2>/dev/null <"/proc/$c/comm" || continue
		[ "$comm" = tfb-spawn ] || n=$((n + 1))
	done
	echo "$n"
}

# pool_check: refuse to start without the programs, twice, with a
# WORKERS that tfb-spawn would refuse (its message would go to the log
# alone), or on a taken port.  WORKERS=auto is tfb-spawn's -w auto: the
# pool finds its own size, within TFB_SPAWN_WORKERS_MIN and
# TFB_SPAWN_WORKERS_MAX (1 and 64 by default).
pool_check() {
	[ -x "$APP" ] || die "$APP not found: run make first (or set APP=)"
	[ -x "$SPAWN" ] || die "$SPAWN not found: run make first (or set SPAWN=)"
	! pool_pid >/dev/null || die "the pool already runs from $VAR: deploy/stack stop first"
	case $WORKERS in
	auto) ;;
	'' | *[!0-9]* | 0) die "WORKERS=$WORKERS: want a positive number of responders, or auto" ;;
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
	local launch pid n i log=$VAR/log/app.log
	pool_check
	pg_setenv
	# The front server opens hundreds of connections at once under load;
	# each waits in the backlog until a responder is free.
	launch=("$SPAWN" --backlog 4096)
	if [ "$FCGI" = tcp ]; then
		launch+=(--bind "127.0.0.1:$FCGI_PORT")
	elif is_root; then
		# The front server's workers run as www-data; so does the status
		# socket's reader, which gets the same owner and mode.
		launch+=(--bind "$VAR/run/fcgi.sock" --socket-group "$FRONT_USER"
			--socket-mode 0660)
	else
		launch+=(--bind "$VAR/run/fcgi.sock" --socket-mode 0600)
	fi
	# The graceful timeout is the stack's deadline, so that pool_stop
	# finds the supervisor gone in time.
	launch+=(-w "$WORKERS" -p "$VAR/run/spawn.pid" -l "$log"
		--graceful-timeout "${STOP_DEADLINE}s" --status "$VAR/run/status.sock")
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
	# Detached: a session of its own (no terminal's Ctrl-C reaches it:
	# stopping it is pool_stop's), nothing of ours on its stdin or
	# stdout, and its words before it opens the log (a bad option) in the
	# log all the same.  Run from a shell without job control, setsid
	# execs it in this very process, which stays its parent under
	# "deploy/stack run".
	setsid "${launch[@]}" </dev/null >/dev/null 2>>"$log" &
	pid=$!
	# A responder with a bad configuration exits 2 a moment after it
	# starts, and the supervisor after it: look for one that runs, for
	# two seconds at most.
	for ((i = 0; i < 10; i++)); do
		sleep 0.2
		alive "$pid" || pool_failed "tfb-spawn exited"
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
	# A supervisor killed leaves its pid file and its sockets.
	rm -f "$VAR/run/spawn.pid" "$VAR/run/fcgi.sock" "$VAR/run/status.sock"
}
