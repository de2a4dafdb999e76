#!/bin/bash
# Proves the build is reproducible: builds the project twice, from two fresh
# copies in directories with different names, and compares the SHA-256 of
# the artefacts. Also checks that no build-machine path (build directory,
# home, cargo home) is embedded in the binaries.
#
#   deploy/repro-check.sh [--worktree] [ROOT]
#
# Default: `git clone` of HEAD (what is committed). --worktree copies the
# working tree instead (tracked and untracked files that .gitignore does not
# exclude), to check uncommitted work. ROOT (default: a new directory under
# /tmp) receives ROOT/a/unipi-rs and ROOT/b/other-name and is kept for
# inspection. Both builds use one certificate made here, since system.elf
# embeds the TLS certificate and key (inputs, not build products).
#
# Extra make arguments can be passed in REPRO_MAKEFLAGS (e.g. "IPV4=10.0.0.2/24").
set -euo pipefail

src=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
mode=clone
if [ "${1:-}" = --worktree ]; then mode=worktree; shift; fi
root=${1:-$(mktemp -d /tmp/unipi-repro.XXXXXX)}
mkdir -p "$root"
root=$(cd "$root" && pwd)
products=(build/unipi.muen build/unipi.cspec.xml build/system.elf build/system-multiboot.elf build/unipi.iso)

# One snapshot of the sources, taken now, feeds both builds (the working
# tree may change while the first build runs).
commit=$(git -C "$src" rev-parse HEAD)
if [ $mode = worktree ]; then
    (cd "$src" && git ls-files -z --cached --others --exclude-standard |
        xargs -0 tar --no-recursion -cf "$root/worktree.tar" 2>/dev/null) || true
    [ -s "$root/worktree.tar" ] || { echo "repro-check: could not snapshot the working tree"; exit 1; }
fi
copy() { # DEST
    rm -rf "$1"
    mkdir -p "$(dirname "$1")"
    if [ $mode = clone ]; then
        git clone --quiet --no-hardlinks --no-checkout "$src" "$1"
        git -C "$1" checkout --quiet "$commit"
    else
        mkdir -p "$1"
        tar -xf "$root/worktree.tar" -C "$1"
    fi
}

echo "repro-check: $mode of $src (${commit:0:12}) into $root"
[ -f "$root/cert/server.pem" ] || "$src/certs/gen-dev-cert.sh" "$root/cert" 192.168.254.10 >/dev/null

dirs=("$root/a/unipi-rs" "$root/b/other-name")
for d in "${dirs[@]}"; do
    copy "$d"
    echo "repro-check: building in $d (log: $d.log)"
    start=$(date +%s)
    if ! (cd "$d" && env -u CARGO_TARGET_DIR -u MAKEFLAGS -u MAKELEVEL -u MFLAGS \
            make all iso CERT="$root/cert/server.pem" KEY="$root/cert/server.key" ${REPRO_MAKEFLAGS:-}) \
            >"$d.log" 2>&1; then
        tail -30 "$d.log"
        echo "repro-check: build in $d failed (log: $d.log)"
        exit 1
    fi
    echo "repro-check:   done in $(( $(date +%s) - start )) s"
done

status=0
printf '%-28s %-64s %s\n' product "sha256 (a/unipi-rs)" "b/other-name"
for p in "${products[@]}"; do
    a=$(sha256sum "${dirs[0]}/$p" | cut -d' ' -f1)
    b=$(sha256sum "${dirs[1]}/$p" | cut -d' ' -f1)
    if [ "$a" = "$b" ]; then verdict=same; else verdict="DIFFERENT: $b"; status=1; fi
    printf '%-28s %s %s\n' "$p" "$a" "$verdict"
done
for p in "${products[@]}"; do
    a=${dirs[0]}/$p b=${dirs[1]}/$p
    cmp -s "$a" "$b" || { echo "first differing bytes of $p (offset, a, b):"; cmp -l "$a" "$b" | head -5; }
done

# Machine paths would make the binaries differ on another machine or user
# even when both builds here agree.
cargo_home=${CARGO_HOME:-$HOME/.cargo}
for p in build/unipi.muen build/system.elf; do
    for needle in "${dirs[0]}" "$root" "$cargo_home" "$HOME/"; do
        if grep -a -q -F -- "$needle" "${dirs[0]}/$p"; then
            echo "repro-check: $p embeds the path $needle:"
            strings -n 8 "${dirs[0]}/$p" | grep -F -- "$needle" | head -3 | sed 's/^/  /'
            status=1
        fi
    done
done

if [ $status = 0 ]; then
    echo "repro-check: OK, both builds are bit-identical ($(stat -c %s "${dirs[0]}/build/unipi.iso") byte ISO)"
else
    echo "repro-check: FAILED (trees kept in $root)"
fi
exit $status
