#!/bin/sh
# Serves the Git repositories below BASE on stdin/stdout with `git daemon
# --inetd`. QEMU runs this once per guest connection to the guestfwd address
# (-netdev user,...,guestfwd=tcp:192.168.254.2:9418-cmd:THIS BASE), so the
# guest reaches a real Git server without any host port being opened (the
# netdev itself always has restrict=on, so this is all the guest can reach).
base=${1:?usage: git-inetd.sh BASE}
exec git daemon --inetd --export-all --informative-errors --base-path="$base" "$base"
