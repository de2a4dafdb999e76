#!/bin/sh
# Makes (or updates) the bare repository REPO from the directory SITE: one
# commit on branch main with SITE's files. Author, committer and dates come
# from SOURCE_DATE_EPOCH, so the same content always gives the same commit id.
#
#   scripts/site-repo.sh SITE REPO
set -eu
site=$(cd "${1:?usage: site-repo.sh SITE REPO}" && pwd)
repo=${2:?usage: site-repo.sh SITE REPO}
: "${SOURCE_DATE_EPOCH:=1700000000}"
export GIT_AUTHOR_NAME="unipi-rs build" GIT_AUTHOR_EMAIL="build@unipi-rs.invalid"
export GIT_COMMITTER_NAME="$GIT_AUTHOR_NAME" GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"
export GIT_AUTHOR_DATE="@$SOURCE_DATE_EPOCH +0000" GIT_COMMITTER_DATE="@$SOURCE_DATE_EPOCH +0000"
[ -d "$repo" ] || git init -q --bare -b main "$repo"
index=$(mktemp)
trap 'rm -f "$index"' EXIT
rm -f "$index"
export GIT_INDEX_FILE="$index"
git --git-dir="$repo" --work-tree="$site" add -A .
tree=$(git --git-dir="$repo" write-tree)
parent=$(git --git-dir="$repo" rev-parse -q --verify refs/heads/main || true)
if [ -n "$parent" ] && [ "$(git --git-dir="$repo" rev-parse "$parent^{tree}")" = "$tree" ]; then
    exit 0 # unchanged
fi
commit=$(echo "Site from $(basename "$site")" | git --git-dir="$repo" commit-tree "$tree" ${parent:+-p "$parent"})
git --git-dir="$repo" update-ref refs/heads/main "$commit"
git --git-dir="$repo" symbolic-ref HEAD refs/heads/main
echo "$repo: main at $commit"
