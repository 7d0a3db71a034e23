# shellcheck shell=bash
# tests/tap.sh: TAP lines from a bash test program (sourced), as
# tests/kit/tap.py prints them from Python and tests/harness.h from C.
#
#   check "$rc" "what it checks" "a detail line" ...   # ok when rc is 0
#   tap_end                                            # the plan; false if one failed
#
# TAP_N counts the checks (set it first to go on from another count),
# TAP_FAILED the failed ones.

TAP_N=${TAP_N:-0}
TAP_FAILED=${TAP_FAILED:-0}

# check STATUS DESCRIPTION [DETAIL...]: "ok N - DESCRIPTION" when STATUS
# is 0; else "not ok N - DESCRIPTION" and each DETAIL on "# " lines.
# Returns whether it passed.
check() {
	local rc=$1 desc=$2 detail line
	shift 2
	TAP_N=$((TAP_N + 1))
	if [ "$rc" -eq 0 ]; then
		echo "ok $TAP_N - $desc"
		return 0
	fi
	TAP_FAILED=$((TAP_FAILED + 1))
	echo "not ok $TAP_N - $desc"
	for detail; do
		while IFS= read -r line; do
			printf '# %s\n' "$line"
		done <<<"$detail"
	done
	return 1
}

# tap_end: the plan, "1..N"; false when a check failed.
tap_end() {
	echo "1..$TAP_N"
	[ "$TAP_FAILED" -eq 0 ]
}
