# shellcheck shell=bash
# deploy/lib/pool.sh: the tfb-fcgi pool for deploy/stack (sourced, bash).
#
# Expects from its caller: ROOT, VAR resolved, the knobs APP, APP_ARGS,
# WORKERS, FCGI, FCGI_PORT and POOL_USER, FRONT_USER, the functions die,
# is_root, pg_setenv and port_taken, and an array STARTED to which
# pool_start adds "pool" before it launches the pool.

# pool_check: refuse to start without a responder, twice, or on a taken port.
pool_check() {
	[ -x "$APP" ] || die "$APP not found: run make first (or set APP=)"
	if "$ROOT/spawn/tfb-pool" status -P "$VAR/run/spawn.pid" >/dev/null 2>&1; then
		die "the pool already runs from $VAR: deploy/stack stop first"
	fi
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
	local args
	pool_check
	pg_setenv
	args=(-w "$WORKERS" -P "$VAR/run/spawn.pid" -l "$VAR/log/app.log")
	if [ "$FCGI" = tcp ]; then
		args+=(-a "127.0.0.1:$FCGI_PORT")
	elif is_root; then
		# The front server's workers run as www-data.
		args+=(-s "$VAR/run/fcgi.sock" -G "$FRONT_USER" -M 0660)
	else
		args+=(-s "$VAR/run/fcgi.sock" -M 0600)
	fi
	[ -z "$POOL_USER" ] || args+=(-u "$POOL_USER")
	# shellcheck disable=SC2206 # APP_ARGS is split on blanks by design
	args+=(-- $APP_ARGS)
	STARTED+=(pool)
	APP=$APP "$ROOT/spawn/tfb-pool" "${args[@]}"
}

pool_stop() {
	"$ROOT/spawn/tfb-pool" stop -P "$VAR/run/spawn.pid"
}
