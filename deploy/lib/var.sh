# shellcheck shell=bash
# deploy/lib/var.sh: where a checkout keeps its state (sourced, bash).
#
# The state directory, <repo>/var unless VAR says otherwise, holds what
# the stack runs from (PostgreSQL's cluster, sockets, logs) and the
# caches of make test-fresh.  PostgreSQL runs as "postgres" and the front
# servers drop to "www-data": as root, they must be able to reach it.  A
# clone under a home directory that other accounts cannot enter (/root,
# mode 0700) cannot hold it, so the state then lives in
# /var/tmp/tfb-fcgi-<hash of the VAR path> and VAR becomes a symlink to it.

# var_searchable DIR: can an account that neither owns DIR nor any of the
# directories above it, nor shares their group, get through to DIR?  That
# is the case of postgres and www-data in a clone.
var_searchable() {
	local d=$1 mode
	while :; do
		mode=$(stat -L -c %a "$d") || return 1
		[ $((8#$mode & 1)) -eq 1 ] || return 1
		[ "$d" != / ] || return 0
		d=$(dirname "$d")
	done
}

# var_resolve [create]: set VAR to the real state directory.  With
# "create", make it (relocated if root needs that); without, VAR stays
# empty when there is no state directory yet.  Dies (through die) when it
# cannot be used.
var_resolve() {
	local want=${VAR:-$ROOT/var} alt
	case $want in /*) ;; *) want=$PWD/$want ;; esac
	want=${want%/}
	VAR=''

	if [ -L "$want" ] || [ -d "$want" ]; then
		VAR=$(readlink -f "$want")
	fi
	if [ "${1:-}" != create ]; then
		[ -d "$VAR" ] || VAR=''
		return 0
	fi

	if [ -n "$VAR" ] && [ ! -d "$VAR" ]; then
		# A symlink whose target went away (/var/tmp was cleaned).
		mkdir -m 0755 "$VAR"
	elif [ -z "$VAR" ]; then
		mkdir -p "$(dirname "$want")"
		if [ "$EUID" -ne 0 ] || var_searchable "$(dirname "$want")"; then
			mkdir -m 0755 "$want"
			VAR=$want
		fi
	elif [ "$EUID" -eq 0 ] && ! var_searchable "$VAR"; then
		# Made earlier, unreachable: move it aside only if it holds nothing.
		rmdir "$VAR" 2>/dev/null ||
			die "$VAR is not reachable by other accounts; remove it or set VAR elsewhere"
		VAR=''
	fi
	if [ -z "$VAR" ]; then
		alt=/var/tmp/tfb-fcgi-$(printf %s "$want" | sha256sum | cut -c1-12)
		if [ ! -d "$alt" ]; then
			mkdir -m 0755 "$alt"
		elif [ -L "$alt" ] || [ "$(stat -c %u "$alt")" != 0 ]; then
			die "$alt exists but is not root's own directory"
		fi
		ln -sfn "$alt" "$want"
		VAR=$alt
	fi
}
