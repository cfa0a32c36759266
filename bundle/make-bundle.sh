#!/usr/bin/env bash
# bundle/make-bundle.sh — builds Sigil's offline bundle: one tar holding install.sh, a SHA-256
# manifest signed with the administrator's key, its signature, and payload.tar.gz (compiled dist/,
# production node_modules, hardening/, package.json). See bundle/README.md.
# Beside the bundle it writes OUT-without-.tar.install.sh.sha256: the SHA-256 of install.sh, for the
# administrator to hand out with the public key (the host checks install.sh before running it).
#
# Exit codes: 0 built, 1 a step failed, 2 usage.
set -euo pipefail
umask 022

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
KEY=${SIGIL_BUNDLE_KEY:-}
OUT=${SIGIL_BUNDLE_OUT:-}
DIST=$REPO/dist
MODULES=copy

usage() {
  cat <<'EOF'
Usage: make-bundle.sh --key ADMIN_KEY.pem [--out FILE] [--dist DIR] [--npm-ci]

Builds sigil-bundle-VERSION.tar for installing an appliance with no network: install.sh,
MANIFEST.sha256 (a header "# sigil-bundle version VERSION" / "# sequence N", then every file's
SHA-256), MANIFEST.sig (openssl dgst -sha384 -sign with the administrator's private key) and
payload.tar.gz. install.sh refuses a bundle whose sequence is lower than the installed one's.
The administrator keeps the key; the host is given the matching public key (or certificate)
separately, never from the bundle, and with it install.sh or its SHA-256, which is written beside
the bundle as BUNDLE.install.sh.sha256 (BUNDLE: --out without .tar).

OPTIONS
  --key FILE     administrator's private key, PEM (env SIGIL_BUNDLE_KEY); if it is encrypted,
                 its passphrase comes from env SIGIL_BUNDLE_KEY_PASS
  --out FILE     the bundle to write (env SIGIL_BUNDLE_OUT; default ./sigil-bundle-VERSION.tar)
  --dist DIR     compiled code (default: REPO/dist; run `make build` first)
  --npm-ci       install production node_modules afresh with `npm ci --omit=dev` (needs the
                 registry or a warm npm cache); default: copy the production packages already
                 built in REPO/node_modules (native addons included, so build on a machine of the
                 appliance's architecture, Node major version and libc)
  -h, --help     this help

ENVIRONMENT
  SIGIL_BUNDLE_KEY, SIGIL_BUNDLE_KEY_PASS, SIGIL_BUNDLE_OUT   as above
  SIGIL_BUNDLE_GZIP_LEVEL   payload compression 1-9 (default 6)
  SOURCE_DATE_EPOCH         time stamped on every archived file (default: last commit's time)
  SIGIL_BUNDLE_SEQUENCE     the manifest's sequence number, a non-negative integer (default: the
                            SOURCE_DATE_EPOCH above); install.sh refuses to go below the installed one

EXIT CODES
  0 built, 1 a step failed, 2 usage

EXAMPLES
  make build && bundle/make-bundle.sh --key ~/admin/bundle-key.pem --out /media/usb/sigil.tar
  SIGIL_BUNDLE_KEY=admin.pem SIGIL_BUNDLE_KEY_PASS=… bundle/make-bundle.sh
EOF
}

die_usage() { echo "error: $*" >&2; exit 2; }
die() { echo "error: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --key) [ $# -ge 2 ] || die_usage "--key needs a file"; KEY=$2; shift 2 ;;
    --out) [ $# -ge 2 ] || die_usage "--out needs a file"; OUT=$2; shift 2 ;;
    --dist) [ $# -ge 2 ] || die_usage "--dist needs a directory"; DIST=$2; shift 2 ;;
    --npm-ci) MODULES=ci; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die_usage "unknown argument '$1' (allowed: --key, --out, --dist, --npm-ci, --help)" ;;
  esac
done

[ -n "$KEY" ] || die_usage "--key (or SIGIL_BUNDLE_KEY) is required: the manifest must be signed"
[ -f "$KEY" ] || die_usage "--key $KEY is not a file"
[ -f "$DIST/server/main.js" ] || die_usage "$DIST/server/main.js is missing: build first (make build) or pass --dist"
VERSION=$(node -p 'require(process.argv[1]).version' "$REPO/package.json")
[ -n "$OUT" ] || OUT=$PWD/sigil-bundle-$VERSION.tar
OUT_DIR=$(cd "$(dirname "$OUT")" && pwd) || die_usage "--out: directory of $OUT does not exist"
OUT=$OUT_DIR/$(basename "$OUT")

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
P=$STAGE/payload
mkdir -p "$P"

# Code, configuration templates and scripts.
cp -R "$DIST" "$P/dist"
mkdir -p "$P/hardening"
for f in "$REPO"/hardening/*; do
  case "$f" in *.ts) continue ;; esac
  cp "$f" "$P/hardening/"
done
cp "$REPO/package.json" "$REPO/package-lock.json" "$P/"
[ ! -f "$REPO/README.md" ] || cp "$REPO/README.md" "$P/"

# Production dependencies only.
if [ "$MODULES" = ci ]; then
  (cd "$P" && npm ci --omit=dev --no-audit --no-fund --ignore-scripts=false >&2)
else
  mkdir -p "$P/node_modules"
  # npm resolves the production tree from the lockfile and node_modules, offline.
  list=$(cd "$REPO" && npm ls --omit=dev --all --parseable 2>/dev/null || true)
  count=0
  while IFS= read -r dir; do
    case "$dir" in "$REPO"/node_modules/*) ;; *) continue ;; esac
    rel=${dir#"$REPO"/}
    mkdir -p "$P/$(dirname "$rel")"
    cp -R "$dir" "$P/$(dirname "$rel")/"
    count=$((count + 1))
  done <<<"$list"
  [ "$count" -gt 0 ] || die "npm ls found no production package in $REPO/node_modules (run npm ci first)"
fi
# Runtime needs no executables' shims, and a bundle with symlinks could point outside /opt/sigil.
find "$P" -path '*/node_modules/.bin' -prune -exec rm -rf {} +
if [ -n "$(find "$P" -type l -print -quit)" ]; then
  die "the payload holds symbolic links, which install.sh refuses: $(find "$P" -type l | head -3 | tr '\n' ' ')"
fi

# Payload archive: fixed order, owner and times, so the same inputs give the same bytes.
cp "$HERE/install.sh" "$STAGE/install.sh"
chmod 0755 "$STAGE/install.sh"
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$REPO" log -1 --format=%ct 2>/dev/null || date +%s)}
sequence=${SIGIL_BUNDLE_SEQUENCE:-$epoch}
case "$sequence" in ''|*[!0-9]*) die_usage "SIGIL_BUNDLE_SEQUENCE / SOURCE_DATE_EPOCH must be a non-negative integer: '$sequence'" ;; esac
[ "${#sequence}" -le 18 ] || die_usage "the sequence '$sequence' has more than 18 digits"
case "$VERSION" in [0-9A-Za-z]*) ;; *) die "package.json version '$VERSION' is not usable" ;; esac
case "$VERSION" in *[!0-9A-Za-z.+~-]*) die "package.json version '$VERSION' has characters install.sh does not accept" ;; esac
(cd "$STAGE" && tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" \
  --format=gnu -cf - payload | gzip -n -"${SIGIL_BUNDLE_GZIP_LEVEL:-6}" > payload.tar.gz)

# Manifest: a header with the version and the sequence (install.sh refuses to go below the
# installed sequence; sha256sum -c skips '#' lines), the archive and install.sh (checked before
# anything is unpacked), then every payload file (checked after unpacking into a staging
# directory, before it is moved into place).
(
  cd "$STAGE"
  printf '# sigil-bundle version %s\n# sequence %s\n' "$VERSION" "$sequence"
  sha256sum payload.tar.gz install.sh
  find payload -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
) > "$STAGE/MANIFEST.sha256"

pass=()
[ -z "${SIGIL_BUNDLE_KEY_PASS:-}" ] || pass=(-passin env:SIGIL_BUNDLE_KEY_PASS)
openssl dgst -sha384 -sign "$KEY" "${pass[@]}" -out "$STAGE/MANIFEST.sig" "$STAGE/MANIFEST.sha256" \
  || die "openssl could not sign with $KEY"

tar --owner=0 --group=0 --numeric-owner --mtime="@$epoch" --format=gnu \
  -cf "$OUT.tmp" -C "$STAGE" install.sh MANIFEST.sha256 MANIFEST.sig payload.tar.gz
mv "$OUT.tmp" "$OUT"
# install.sh's SHA-256 in sha256sum -c form, to hand out with the public key.
INSTALL_SUM=${OUT%.tar}.install.sh.sha256
(cd "$STAGE" && sha256sum install.sh) > "$INSTALL_SUM.tmp"
mv "$INSTALL_SUM.tmp" "$INSTALL_SUM"
files=$(grep -c '  payload/' "$STAGE/MANIFEST.sha256")
echo "bundle: $OUT ($files payload files, $(du -h "$OUT" | cut -f1)), version $VERSION, sequence $sequence"
echo "bundle: manifest sha256 $(sha256sum "$STAGE/MANIFEST.sha256" | cut -d' ' -f1)"
echo "bundle: install.sh sha256 $(cut -d' ' -f1 "$INSTALL_SUM") in $INSTALL_SUM (hand it out with the public key)"
