#!/bin/sh
# A node from the shell, with the nats CLI (github.com/nats-io/natscli,
# v0.4.0). NATS_URL (default nats://127.0.0.1:4222) says where the node's
# NATS server is; NATS_TOKEN (or NATS_USER and NATS_PASSWORD) how to log in.
#
#   nats-cli.sh status                 the node: peers, follows, chains, log, NATS counters
#   nats-cli.sh history [CURSOR]       the next 10 log entries after CURSOR (default 0)
#   nats-cli.sh things TAG             the Things tagged TAG (first page)
#   nats-cli.sh thing TRACKER ID       one Thing: versions, edits, parents, retractions
#   nats-cli.sh watch [N]              wait for N announcements (default 1): subject, Ttn-* headers, payload
#   nats-cli.sh publish TRACKER FILE   announce the Thing in FILE on TRACKER (needs a token,
#                                      or a user allowed to publish on ttn.api.publish)
#   nats-cli.sh service                the API as a NATS service: endpoints and counters
set -eu
: "${NATS_URL:=nats://127.0.0.1:4222}"
export NATS_URL

# plain refuses arguments that would not fit in a JSON string as they are.
plain() {
	for a; do
		case "$a" in
		*[!A-Za-z0-9._:\ -]* | '') echo "nats-cli.sh: '$a': use letters, digits, space, . _ : -" >&2; exit 2 ;;
		esac
	done
}

cmd=${1:-help}
[ $# -gt 0 ] && shift
case "$cmd" in
status) nats request --raw ttn.api.status '' ;;
history)
	after=${1:-0}
	plain "$after"
	nats request --raw ttn.api.history "{\"after\":$after,\"limit\":10}"
	;;
things)
	tag=${1:?TAG}
	plain "$tag"
	nats request --raw ttn.api.things "{\"tag\":\"$tag\"}"
	;;
thing)
	tracker=${1:?TRACKER} id=${2:?ID}
	plain "$tracker" "$id"
	nats request --raw ttn.api.thing "{\"tracker\":\"$tracker\",\"id\":\"$id\"}"
	;;
watch)
	count=${1:-1}
	plain "$count"
	nats subscribe --count "$count" 'ttn.ann.>'
	;;
publish)
	tracker=${1:?TRACKER}
	plain "$tracker"
	thing=$(cat "${2:?FILE}")
	nats request --raw ttn.api.publish "{\"tracker\":\"$tracker\",\"thing\":$thing}"
	;;
service) nats service info ttn ;;
*)
	sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'
	[ "$cmd" = help ] || exit 2
	;;
esac
