#!/usr/bin/env bash
# Release: build announcer and subscriber for every target (static, no cgo,
# -trimpath, version stamped), one archive per target holding both binaries,
# README.md and LICENSE (when there is one): .tar.gz, or .zip for Windows;
# and dist/SHA256SUMS over the archives.
#
#   scripts/release.sh                      # version: git describe (vX.Y.Z at a tag)
#   VERSION=v1.2.3 scripts/release.sh
#   TARGETS="linux/amd64 linux/arm64" scripts/release.sh
#
# Archives are reproducible for a given commit and Go version: file times
# are the commit's, owners are 0, entries sorted, gzip without a timestamp
# (GNU tar, zip and sha256sum or shasum are needed; Linux and CI have them).
# Check a download with: sha256sum --ignore-missing -c SHA256SUMS
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS=${TARGETS:-linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64}
VERSION=${VERSION:-$(git describe --tags --match 'v*' --always --dirty)}
COMMANDS="announcer subscriber"

commit=$(git rev-parse HEAD)
modified=false
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
	modified=true
	echo "warning: uncommitted changes; the binaries say \"(modified)\"" >&2
fi
# The build info's own VCS stamp is missing in a git worktree
# (golang/go#58218) and where GOFLAGS has -buildvcs=false: stamp it here.
pkg=github.com/thingtracker/ttn/cmd/internal/version
ldflags="-s -w -X $pkg.Version=$VERSION -X $pkg.Commit=$commit -X $pkg.Modified=$modified"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
mtime="@$SOURCE_DATE_EPOCH"

if command -v sha256sum >/dev/null; then sha256=(sha256sum); else sha256=(shasum -a 256); fi

echo "ttn $VERSION ($commit, modified=$modified) with $(go version)"
rm -rf dist
mkdir -p dist
for target in $TARGETS; do
	goos=${target%/*} goarch=${target#*/}
	name="ttn_${VERSION}_${goos}_${goarch}"
	stage="dist/$name"
	mkdir -p "$stage"
	ext=
	[ "$goos" = windows ] && ext=.exe
	for cmd in $COMMANDS; do
		CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch \
			go build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$stage/$cmd$ext" "./cmd/$cmd"
	done
	for doc in README.md LICENSE; do
		[ -f "$doc" ] && cp "$doc" "$stage/"
	done
	touch -d "$mtime" "$stage" "$stage"/*
	if [ "$goos" = windows ]; then
		(cd dist && TZ=UTC zip -q -X -r "$name.zip" "$name")
		archive="$name.zip"
	else
		tar -C dist --sort=name --mtime="$mtime" --owner=0 --group=0 --numeric-owner \
			-cf - "$name" | gzip -n -9 >"dist/$name.tar.gz"
		archive="$name.tar.gz"
	fi
	rm -rf "$stage"
	echo "$target: dist/$archive"
done
(cd dist && "${sha256[@]}" ttn_* >SHA256SUMS)
echo "dist/SHA256SUMS:"
cat dist/SHA256SUMS
