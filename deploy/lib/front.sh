# shellcheck shell=bash
# deploy/lib/front.sh: the front server for deploy/stack (sourced, bash):
# nginx or lighttpd, rendered from deploy/nginx or deploy/lighttpd (the
# settings every one shares, then the part that serves the pool),
# started, found through its pid file and stopped, with any workers its
# master left behind.
#
# Expects from its caller: ROOT, VAR resolved, the knobs SERVER, PORT,
# LISTEN_ADDR, FCGI, FCGI_PORT, KEEPALIVE and WORKERS, FRONT_USER and
# STOP_DEADLINE, the functions die and is_root, deploy/lib/proc.sh, and
# an array STARTED to which front_start adds "front" before it launches
# the server.

# render TEMPLATE OUT NAME=VALUE...: replace each @NAME@ by VALUE.
render() {
	local text kv
	text=$(<"$1")
	shift
	local out=$1
	shift
	for kv; do
		text=${text//"@${kv%%=*}@"/"${kv#*=}"}
	done
	if [[ $text =~ @[A-Z_]+@ ]]; then
		die "$out: no value for ${BASH_REMATCH[0]}"
	fi
	printf '%s\n' "$text" >"$out"
}

# render_nginx SITE DIR NAME=VALUE...: nginx's configuration in DIR/conf,
# as deploy/cluster/render makes it too: deploy/nginx/nginx.conf.in (the
# settings every nginx of the project shares) as nginx.conf, the template
# SITE (what this nginx serves) as nginx-site.conf, and the buffers and
# CGI variables every nginx passes to tfb-fcgi as fastcgi.conf.  Each
# gets VAR=DIR and the NAME=VALUEs.
render_nginx() {
	local site=$1 dir=$2
	shift 2
	render "$ROOT/deploy/nginx/nginx.conf.in" "$dir/conf/nginx.conf" \
		VAR="$dir" SITE="$dir/conf/nginx-site.conf" "$@"
	render "$site" "$dir/conf/nginx-site.conf" VAR="$dir" \
		FASTCGI="$dir/conf/fastcgi.conf" "$@"
	cp "$ROOT/deploy/nginx/fastcgi.conf" "$dir/conf/fastcgi.conf"
}

# The running front server, from its pid file: "nginx PID", or nothing.
front_running() {
	local s pid
	for s in nginx lighttpd; do
		if pid=$(pid_in "$VAR/run/$s.pid" "$s"); then
			echo "$s $pid"
			return 0
		fi
	done
	return 1
}

# front_check: refuse to start a second front server, or on a taken port.
front_check() {
	local running
	if running=$(front_running); then
		die "${running% *} already runs from $VAR: deploy/stack stop first"
	fi
	! port_taken "$LISTEN_ADDR" "$PORT" ||
		die "port $LISTEN_ADDR:$PORT is already taken (set PORT)"
}

front_start() {
	local nofile conns fcgi_addr backend user_line user_lines
	local keep_line keep_conn code i host=$LISTEN_ADDR
	front_check

	# Two descriptors per client (its own, the FastCGI one) plus slack.
	# Capped by the hard limit: even root may lack CAP_SYS_RESOURCE (in a
	# container), and the servers only warn when they cannot raise it.
	nofile=$(ulimit -Hn)
	[ "$nofile" != unlimited ] && [ "$nofile" -lt 65536 ] || nofile=65536
	conns=$((nofile / 2 < 16384 ? nofile / 2 : 16384))

	case $FCGI in
	unix)
		fcgi_addr=unix:$VAR/run/fcgi.sock
		backend="\"socket\" => \"$VAR/run/fcgi.sock\""
		;;
	tcp)
		fcgi_addr=127.0.0.1:$FCGI_PORT
		backend="\"host\" => \"127.0.0.1\", \"port\" => $FCGI_PORT"
		;;
	*) die "FCGI=$FCGI: want unix or tcp" ;;
	esac

	if is_root; then
		user_line="user $FRONT_USER $FRONT_USER;"
		user_lines="server.username = \"$FRONT_USER\""$'\n'"server.groupname = \"$FRONT_USER\""
	else
		user_line="# not root: no user switch"
		user_lines=$user_line
	fi

	case $KEEPALIVE in *[!0-9]* | '') die "KEEPALIVE=$KEEPALIVE: want a number" ;; esac
	if [ "$KEEPALIVE" -gt 0 ]; then
		keep_line="keepalive $KEEPALIVE;"
		keep_conn=on
	else
		keep_line="# no keepalive: a new FastCGI connection per request"
		keep_conn=off
	fi

	# Recorded before the launch, so that a stop that comes in the middle
	# knows to wait for the pid file (written once the server daemonized).
	STARTED+=(front)
	echo "$SERVER http://$LISTEN_ADDR:$PORT" >"$VAR/run/front"
	case $SERVER in
	nginx)
		mkdir -p "$VAR/tmp/nginx"
		render_nginx "$ROOT/deploy/nginx/pool.conf.in" "$VAR" \
			USER_LINE="$user_line" NOFILE="$nofile" \
			WORKER_CONNECTIONS=$conns LISTEN="$LISTEN_ADDR" PORT="$PORT" \
			FCGI_ADDR="$fcgi_addr" KEEPALIVE_LINE="$keep_line" KEEP_CONN=$keep_conn
		# nginx checks the config and binds before it daemonizes, so
		# its exit status says whether it started.
		/usr/sbin/nginx -p "$VAR/" -c "$VAR/conf/nginx.conf" \
			-e "$VAR/log/nginx.error.log" ||
			die "nginx did not start, see $VAR/log/nginx.error.log"
		;;
	lighttpd)
		# lighttpd opens its error log after dropping to www-data.
		mkdir -p "$VAR/tmp/lighttpd"
		touch "$VAR/log/lighttpd.error.log"
		! is_root || chown "$FRONT_USER": "$VAR/tmp/lighttpd" "$VAR/log/lighttpd.error.log"
		render "$ROOT/deploy/lighttpd/lighttpd.conf.in" "$VAR/conf/lighttpd.conf" \
			VAR="$VAR" LISTEN="$LISTEN_ADDR" PORT="$PORT" \
			USER_LINES="$user_lines" NOFILE="$nofile" \
			MAX_CONNECTIONS=$conns SITE="$VAR/conf/lighttpd-site.conf"
		render "$ROOT/deploy/lighttpd/pool.conf.in" "$VAR/conf/lighttpd-site.conf" \
			VAR="$VAR" FCGI_BACKEND="$backend"
		# lighttpd's parent exits once the daemon is set up, with its status.
		/usr/sbin/lighttpd -f "$VAR/conf/lighttpd.conf" ||
			die "lighttpd did not start, see $VAR/log/lighttpd.error.log"
		;;
	*) die "SERVER=$SERVER: want nginx or lighttpd" ;;
	esac

	# Any HTTP answer means the front server is up; a 502 means the pool
	# is not, which pool_start has ruled out already.
	[ "$host" != 0.0.0.0 ] || host=127.0.0.1
	for ((i = 0; i < 100; i++)); do
		code=$(http_status "$host" "$PORT" /plaintext)
		[ -z "$code" ] || break
		sleep 0.1
	done
	[ -n "$code" ] || die "$SERVER does not answer on $LISTEN_ADDR:$PORT"
	[ "$code" = 200 ] ||
		echo "deploy/stack: warning: /plaintext answered $code, see $VAR/log/app.log" >&2
}

front_stop() {
	local running='' i rc=0
	# A server launched a moment ago may not have written its pid file yet.
	for ((i = 0; i < 20; i++)); do
		running=$(front_running) && break
		[ -e "$VAR/run/front" ] || break
		sleep 0.05
	done
	# Both stop at once on SIGTERM, closing their connections.
	[ -z "$running" ] || stop_pids "${running% *}" "$STOP_DEADLINE" "${running#* }" || rc=1
	front_stop_orphans || rc=1
	# lighttpd, having dropped to www-data, cannot unlink its pid file.
	rm -f "$VAR/run/nginx.pid" "$VAR/run/lighttpd.pid" "$VAR/run/front"
	return $rc
}

# front_orphans: the front server processes that hold our error log open
# with no master left: the workers of an nginx whose master was killed,
# which keep the port and serve on.  By comm (read without a fork), then
# by their descriptors.
front_orphans() {
	local d comm fd
	for d in /proc/[0-9]*; do
		read -r comm 2>/dev/null <"$d/comm" || continue
		case $comm in nginx | lighttpd) ;; *) continue ;; esac
		for fd in "$d"/fd/*; do
			if [ "$(readlink "$fd" 2>/dev/null)" = "$VAR/log/$comm.error.log" ]; then
				echo "${d#/proc/}"
				break
			fi
		done
	done
}

front_stop_orphans() {
	local pids
	mapfile -t pids < <(front_orphans)
	[ ${#pids[@]} -gt 0 ] || return 0
	echo "deploy/stack: stopping front server processes left without their master: ${pids[*]}" >&2
	stop_pids "front server orphans" "$STOP_DEADLINE" "${pids[@]}"
}
