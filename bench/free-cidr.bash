# bench/free-cidr.bash - sourced by the benches that make local networks
# (hosts, lb, console, runs, scale, and herd-local.bash's) and by the e2e
# tests (tests/e2e/lib.bash's random_cidr): free_cidr LEN [SECOND_OCTET] prints a random
# network 198.18.0.0/15 can hold with prefix length LEN (16 to 24), in
# 198.SECOND_OCTET.x when given (18 or 19), that nothing on this machine routes
# or holds an address in yet (`ip -4 route show table all root`: the local
# table's entries cover addresses). herd refuses a local network that
# overlaps one (its bridge would take that traffic), and a bench must not
# measure or disturb someone else's. Ten draws, then the last one anyway (a
# clear refusal from herd beats no network). Not a bench itself (not *.sh).
free_cidr() {
	local len=$1 hi=${2:-} step c
	step=$((1 << (24 - len)))    # how many /24s one network spans
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		c="198.${hi:-$((18 + RANDOM % 2))}.$((RANDOM % 256 / step * step)).0/$len"
		[ -z "$(ip -4 route show table all root "$c" 2>/dev/null)" ] && break
	done
	echo "$c"
}
