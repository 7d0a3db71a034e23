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

# pool_workers: how many workers the running supervisor has; false,
# printing nothing, when none runs.  A worker is a child that runs another
# program: the status page's process, a fork of the supervisor, runs the
# supervisor's own (whatever name or title it shows), and is none.
pool_workers() {
	local pid c exe n=0
	pid=$(pool_pid) || return 1
	exe=$(readlink "/proc/$pid/exe") || return 1
	for c in $(children "$pid"); do
		[ "$(readlink "/proc/$c/exe" 2>/dev/null)" = "$exe" ] || n=$((n + 1))
	done
	echo "$n"
}

# db_verdict: what the workers of the page "tfb-spawn status SOCKET full"
# (on stdin) say of their database: "up" when one is connected; "none"
# when a worker runs that says nothing of one (another responder, or
# --db-mode per-request, which connects at the first request); "down
# ATTEMPTS ERROR" for the worker that tried most, all of them failing;
# "wait" while none has tried yet.
db_verdict() {
	awk '
	/^state: / { st = $2 }
	/^db state: / { db = $3 }
	/^db attempts: / { at = $3 }
	/^db last error: / {
		err = $0
		sub(/^db last error: */, "", err)
		if (db == "up") up = 1
		else if (db == "none" && st != "Starting") none = 1
		else if (db == "down" && at + 0 >= most + 0) { most = at; why = err }
	}
	END {
		if (up) print "up"
		else if (none) print "none"
		else if (most != "") print "down", most, why
		else print "wait"
	}'
}

# pool_wait_db [SECONDS]: wait, 10 s at most, for the first worker's
# database connection, as the pool's status page tells it; false, saying
# the database's own words, when every worker fails to connect twice
# (a database that does not exist, a password refused, a server that
# refuses connections) or none has connected in time.
pool_wait_db() {
	local i verdict='wait' tries=$((${1:-10} * 10))
	for ((i = 0; i < tries; i++)); do
		verdict=$("$SPAWN" status "$VAR/run/status.sock" full 2>/dev/null |
			db_verdict) || verdict='wait'
		case $verdict in
		up | none) return 0 ;;
		"down "[2-9]* | "down "[1-9][0-9]*) break ;;
		esac
		sleep 0.1
	done
	case $verdict in
	down*) verdict=${verdict#down * } ;;
	*) verdict="no worker connected within ${1:-10} s" ;;
	esac
	echo "deploy/stack: the database cannot be used: $verdict" >&2
	echo "deploy/stack: (the PG* settings, or the connection string in APP_ARGS; log in $VAR/log/app.log)" >&2
	return 1
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
