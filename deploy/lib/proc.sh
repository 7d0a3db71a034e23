# shellcheck shell=bash
# deploy/lib/proc.sh: processes and ports, as the stack's scripts see
# them (sourced, bash): whether a pid runs, which pid a pid file names,
# a process's children, stopping processes with a deadline, whether a
# port is taken, what status an HTTP server answers.  bash reads /proc
# and /dev/tcp itself: the stack polls these, and no check forks a
# command.
#
# Needs nothing from its caller; stop_pids writes its one line to stderr
# in deploy/stack's name.

# proc_stat PID: set P_STATE and P_PPID from /proc/PID/stat; false when
# PID does not exist.  The fields are read after the last ")": the
# command name before it, in parentheses, may hold blanks and ")" itself.
proc_stat() {
	local stat
	read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
	stat=${stat##*) }
	P_STATE=${stat%% *}
	stat=${stat#* }
	P_PPID=${stat%% *}
}

# alive PID: true while PID runs; a zombie counts as gone (the daemons
# are orphans, and some init processes reap orphans only now and then).
alive() {
	proc_stat "$1" && [ "$P_STATE" != Z ]
}

# children PID: the pids of PID's living children, one a line.
children() {
	local d
	for d in /proc/[0-9]*; do
		proc_stat "${d#/proc/}" && [ "$P_PPID" = "$1" ] && [ "$P_STATE" != Z ] &&
			echo "${d#/proc/}"
	done
	return 0
}

# pid_in FILE [COMM]: print the pid on the first line of FILE if that
# process runs, and, given COMM, runs the program COMM (its
# /proc/PID/comm); false otherwise.  A process killed outright leaves its
# pid file behind, and the pid may name another process by then: COMM
# keeps us from signalling it.
pid_in() {
	local pid='' comm=''
	read -r pid 2>/dev/null <"$1" || true
	case $pid in '' | *[!0-9]*) return 1 ;; esac
	alive "$pid" || return 1
	if [ -n "${2:-}" ]; then
		read -r comm 2>/dev/null <"/proc/$pid/comm" || true
		[ "$comm" = "$2" ] || return 1
	fi
	echo "$pid"
}

# stop_pids WHAT SECONDS PID...: SIGTERM to every PID, then wait for
# them; SIGKILL to those still running after SECONDS, saying so (WHAT
# names them).  Returns once all are gone, or false 2 s after the SIGKILL
# if one still is (a process stuck in the kernel).
stop_pids() {
	local what=$1 secs=$2 pid live i
	shift 2
	kill -TERM "$@" 2>/dev/null || true
	for ((i = 0; ; i++)); do
		live=()
		for pid; do
			! alive "$pid" || live+=("$pid")
		done
		[ ${#live[@]} -gt 0 ] || return 0
		if [ "$i" -eq $((secs * 20)) ]; then
			echo "deploy/stack: killing $what (pid ${live[*]}) after ${secs}s" >&2
			kill -KILL "${live[@]}" 2>/dev/null || true
		fi
		[ "$i" -lt $((secs * 20 + 40)) ] || return 1
		sleep 0.05
	done
}

# port_taken HOST PORT: does something accept connections there?
port_taken() {
	(exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# http_status HOST PORT PATH: the status code of a GET of PATH at
# HOST:PORT, or nothing when nothing answers there.
http_status() {
	local code
	(
		exec 3<>"/dev/tcp/$1/$2" || exit 0
		printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$3" "$1" >&3
		read -r -t 10 _ code _ <&3 || exit 0
		echo "$code"
	) 2>/dev/null
}
