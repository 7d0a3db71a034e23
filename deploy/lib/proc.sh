# shellcheck shell=bash
# deploy/lib/proc.sh: processes and ports, as the stack's scripts see
# them (sourced, bash): whether a pid runs, whether a pid file names a
# running process, whether a port is taken, what status an HTTP server
# answers.  Needs nothing from its caller.

# alive PID: true while PID runs; a zombie counts as gone (the daemons
# are orphans, and some init processes reap orphans only now and then).
alive() {
	local stat
	read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
	stat=${stat##*) }
	[ "${stat%% *}" != Z ]
}

# pid_file_alive FILE: does the pid on the first line of FILE run?
pid_file_alive() {
	local pid
	read -r pid 2>/dev/null <"$1" && [ -n "$pid" ] && alive "$pid"
}

# port_taken HOST PORT: does something accept connections there?
port_taken() {
	(exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# http_status HOST PORT PATH: the status code of a GET of PATH at
# HOST:PORT, or nothing when nothing answers there.  bash alone: a bare
# Debian has no curl.
http_status() {
	local code
	(
		exec 3<>"/dev/tcp/$1/$2" || exit 0
		printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$3" "$1" >&3
		read -r -t 10 _ code _ <&3 || exit 0
		echo "$code"
	) 2>/dev/null
}
