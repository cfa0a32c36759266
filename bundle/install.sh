#!/bin/sh
# install.sh — installs a Sigil offline bundle after proving it is the one the administrator
# signed. Nothing of the payload is unpacked before the manifest's signature verifies with the
# administrator's public key (given here, never taken from the bundle) and the payload archive's
# SHA-256 matches the manifest; every unpacked file is checked again before it is moved into place.
# It never uses the network (no npm, no registry): the bundle carries its node_modules.
# The signed manifest carries the bundle's version and sequence; a bundle older than the installed
# one (PREFIX/BUNDLE-SEQUENCE) is refused unless --allow-downgrade.
#
# This script must itself be trusted before it runs: take it (or its SHA-256) from the
# administrator, with the public key, not from the bundle. See bundle/README.md.
#
# Exit codes: 0 installed (or verified), 1 a step failed, 2 usage, 3 verification said no
# (including a refused downgrade).
set -eu
umask 022

PREFIX=/opt/sigil
BUNDLE=
PUBKEY=
VERIFY_ONLY=0
ALLOW_DOWNGRADE=0

usage() {
  cat <<'EOF'
Usage: install.sh --bundle FILE --pubkey FILE [--prefix DIR] [--verify-only] [--allow-downgrade]

Verifies and installs a Sigil offline bundle made by bundle/make-bundle.sh.

Run only an install.sh you trust: the one the administrator handed out with the public key, or the
one from the bundle after checking it by hand (see the first EXAMPLES and bundle/README.md). The
install.sh inside the bundle is not verified before it runs.

OPTIONS
  --bundle FILE   the bundle (sigil-bundle-VERSION.tar)
  --pubkey FILE   the administrator's public key or certificate (PEM), from your own safe copy:
                  never the one that travels with the bundle
  --prefix DIR    where to install (default /opt/sigil); an existing installation is kept as
                  DIR.previous
  --verify-only   verify everything, install nothing
  --allow-downgrade
                  install even if the bundle's signed sequence is lower than the installed one's
                  (PREFIX/BUNDLE-SEQUENCE); without it such a bundle is refused (exit 3)
  -h, --help      this help

EXIT CODES
  0 installed (or verified), 1 a step failed, 2 usage, 3 verification said no (including a
  refused downgrade)

EXAMPLES
  # verify the bundle by hand first, with the public key from the administrator's media:
  tar -xf sigil-bundle-0.1.0.tar MANIFEST.sha256 MANIFEST.sig install.sh
  openssl dgst -sha384 -verify /media/admin/bundle-pub.pem -signature MANIFEST.sig MANIFEST.sha256
  grep '  install.sh$' MANIFEST.sha256 | sha256sum -c
  # (or: sha256sum -c /media/admin/sigil-bundle.install.sh.sha256, the value handed out)
  sh install.sh --bundle sigil-bundle-0.1.0.tar --pubkey /media/admin/bundle-pub.pem
  sh install.sh --bundle sigil-bundle-0.1.0.tar --pubkey admin-cert.pem --verify-only
EOF
}

die_usage() { echo "error: $*" >&2; exit 2; }
die() { echo "error: $*" >&2; exit 1; }
refuse() { echo "error: verification failed: $*" >&2; exit 3; }
say() { echo "install: $*"; }
# The version (line 1) and sequence (line 2) of a header "# sigil-bundle version V" / "# sequence N",
# as the manifest carries it and PREFIX/BUNDLE-SEQUENCE records it; empty when not understood.
header_version() { sed -n '1s/^# sigil-bundle version \([0-9A-Za-z][0-9A-Za-z.+~-]*\)$/\1/p' "$1"; }
header_sequence() { sed -n '2s/^# sequence \([0-9]\{1,18\}\)$/\1/p' "$1"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --bundle) [ $# -ge 2 ] || die_usage "--bundle needs a file"; BUNDLE=$2; shift 2 ;;
    --pubkey) [ $# -ge 2 ] || die_usage "--pubkey needs a file"; PUBKEY=$2; shift 2 ;;
    --prefix) [ $# -ge 2 ] || die_usage "--prefix needs a directory"; PREFIX=$2; shift 2 ;;
    --verify-only) VERIFY_ONLY=1; shift ;;
    --allow-downgrade) ALLOW_DOWNGRADE=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die_usage "unknown argument '$1' (allowed: --bundle, --pubkey, --prefix, --verify-only, --allow-downgrade, --help)" ;;
  esac
done
[ -n "$BUNDLE" ] || die_usage "--bundle is required"
[ -f "$BUNDLE" ] || die_usage "--bundle $BUNDLE is not a file"
[ -n "$PUBKEY" ] || die_usage "--pubkey is required: the administrator's public key, from your own copy"
[ -f "$PUBKEY" ] || die_usage "--pubkey $PUBKEY is not a file"
for tool in openssl sha256sum tar gzip; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed"
done
case "$PREFIX" in /*) ;; *) PREFIX=$(pwd)/$PREFIX ;; esac
PREFIX=${PREFIX%/}

WORK=$(mktemp -d)
STAGING=
# Set while PREFIX has been moved to PREFIX.previous and the new payload is not yet in its place:
# if the script ends then, the previous installation is moved back.
ASIDE=0
cleanup() {
  if [ "$ASIDE" = 1 ] && [ ! -e "$PREFIX" ] && [ -d "$PREFIX.previous" ]; then
    if mv "$PREFIX.previous" "$PREFIX"; then
      echo "error: nothing installed; the previous installation is back in $PREFIX" >&2
    else
      echo "error: nothing installed; the previous installation is in $PREFIX.previous: move it back to $PREFIX" >&2
    fi
  fi
  rm -rf "$WORK"
  [ -z "$STAGING" ] || rm -rf "$STAGING"
}
# A signal ends the script (running cleanup once, on EXIT); it never resumes the next step.
trap cleanup EXIT
trap 'echo "error: interrupted; $PREFIX left as it was" >&2; exit 1' INT TERM HUP

# 1. The manifest and its signature: two named members, nothing else yet.
tar -xf "$BUNDLE" -C "$WORK" MANIFEST.sha256 MANIFEST.sig 2>/dev/null || refuse "the bundle has no MANIFEST.sha256 / MANIFEST.sig"
for f in MANIFEST.sha256 MANIFEST.sig; do
  [ -f "$WORK/$f" ] && [ ! -L "$WORK/$f" ] || refuse "$f is not a regular file"
done

if grep -q '^-----BEGIN CERTIFICATE-----' "$PUBKEY"; then
  openssl x509 -in "$PUBKEY" -pubkey -noout > "$WORK/pub.pem" 2>/dev/null || die_usage "--pubkey $PUBKEY: not a readable certificate"
else
  openssl pkey -pubin -in "$PUBKEY" -out "$WORK/pub.pem" 2>/dev/null || die_usage "--pubkey $PUBKEY: not a PEM public key or certificate"
fi
FPR=$(openssl pkey -pubin -in "$WORK/pub.pem" -outform DER | sha256sum | cut -d' ' -f1)

if ! openssl dgst -sha384 -verify "$WORK/pub.pem" -signature "$WORK/MANIFEST.sig" "$WORK/MANIFEST.sha256" >/dev/null 2>&1; then
  refuse "MANIFEST.sig does not verify with the public key $FPR"
fi
say "manifest signed by the key sha256:$FPR"

# 2. The manifest's own shape: an optional two-line header "# sigil-bundle version V" and
#    "# sequence N" (signed with the rest; sha256sum -c skips '#' lines), then "<64 hex>  <path>"
#    lines, paths relative, no "..", nothing but the archive, install.sh and files under payload/.
#    A manifest without the header (bundles made before it existed) counts as sequence 0.
B_VERSION=unknown
B_SEQ=0
if [ "$(head -c 1 "$WORK/MANIFEST.sha256")" = '#' ]; then
  B_VERSION=$(header_version "$WORK/MANIFEST.sha256")
  B_SEQ=$(header_sequence "$WORK/MANIFEST.sha256")
  [ -n "$B_VERSION" ] && [ -n "$B_SEQ" ] || refuse "manifest header not understood: $(head -2 "$WORK/MANIFEST.sha256" | tr '\n' ' ')"
  tail -n +3 "$WORK/MANIFEST.sha256" > "$WORK/body.sha256"
else
  cp "$WORK/MANIFEST.sha256" "$WORK/body.sha256"
fi
bad=$(grep -Evn '^[0-9a-f]{64}  (payload\.tar\.gz|install\.sh|payload/[^/].*)$' "$WORK/body.sha256" | head -1 || true)
[ -z "$bad" ] || refuse "manifest line not understood: $bad"
if grep -Eq '(^|/)\.\.(/|$)' "$WORK/body.sha256"; then refuse "manifest names a path with '..'"; fi

# 2b. Not older than what is installed (a replayed old bundle is still validly signed).
I_SEQ=
I_VERSION=unknown
if [ -f "$PREFIX/BUNDLE-SEQUENCE" ]; then
  I_SEQ=$(header_sequence "$PREFIX/BUNDLE-SEQUENCE")
  I_VERSION=$(header_version "$PREFIX/BUNDLE-SEQUENCE")
  [ -n "$I_SEQ" ] || die "$PREFIX/BUNDLE-SEQUENCE is not understood; move it away only if you know which bundle is installed"
  [ -n "$I_VERSION" ] || I_VERSION=unknown
fi
if [ -n "$I_SEQ" ]; then installed="version $I_VERSION, sequence $I_SEQ"
elif [ -e "$PREFIX" ]; then installed="no recorded sequence"
else installed="nothing"; fi
say "bundle version $B_VERSION, sequence $B_SEQ (installed in $PREFIX: $installed)"
if [ -n "$I_SEQ" ] && [ "$B_SEQ" -lt "$I_SEQ" ]; then
  if [ "$VERIFY_ONLY" = 1 ]; then
    echo "warning: this bundle (sequence $B_SEQ) is older than the installed one (sequence $I_SEQ); installing it would need --allow-downgrade" >&2
  elif [ "$ALLOW_DOWNGRADE" = 1 ]; then
    echo "warning: --allow-downgrade: installing sequence $B_SEQ (version $B_VERSION) over sequence $I_SEQ (version $I_VERSION)" >&2
  else
    echo "error: refusing a downgrade: bundle version $B_VERSION sequence $B_SEQ is older than the installed version $I_VERSION sequence $I_SEQ (pass --allow-downgrade to install it anyway)" >&2
    exit 3
  fi
fi

# 3. The payload archive and install.sh, checked against the manifest before unpacking.
tar -xf "$BUNDLE" -C "$WORK" payload.tar.gz install.sh 2>/dev/null || refuse "the bundle has no payload.tar.gz / install.sh"
for f in payload.tar.gz install.sh; do
  [ -f "$WORK/$f" ] && [ ! -L "$WORK/$f" ] || refuse "$f is not a regular file"
done
grep -E '  (payload\.tar\.gz|install\.sh)$' "$WORK/body.sha256" > "$WORK/top.sha256"
[ "$(wc -l < "$WORK/top.sha256")" -eq 2 ] || refuse "the manifest must list payload.tar.gz and install.sh once each"
(cd "$WORK" && sha256sum -c --strict --quiet top.sha256) >/dev/null 2>&1 || refuse "payload.tar.gz or install.sh does not match the signed manifest"
self=$(sha256sum < "$0" | cut -d' ' -f1)
if ! grep -q "^$self  install.sh\$" "$WORK/body.sha256"; then
  echo "warning: this install.sh is not the one in the bundle; trusting it is your choice" >&2
fi

# 4. What the archive would create: only directories and regular files, only under payload/.
# Decompressed once; listed, then unpacked, from the same bytes.
gzip -dc "$WORK/payload.tar.gz" > "$WORK/payload.tar" 2>/dev/null || refuse "payload.tar.gz is not a readable archive"
rm -f "$WORK/payload.tar.gz"
tar -tvf "$WORK/payload.tar" > "$WORK/listing" 2>/dev/null || refuse "payload.tar.gz is not a readable archive"
odd=$(grep -v '^[-d]' "$WORK/listing" | head -1 || true)
[ -z "$odd" ] || refuse "payload holds something other than files and directories: $odd"
tar -tf "$WORK/payload.tar" > "$WORK/names"
outside=$(grep -Ev '^payload(/|$)' "$WORK/names" | head -1 || true)
[ -z "$outside" ] || refuse "payload names a path outside payload/: $outside"
if grep -Eq '(^|/)\.\.(/|$)' "$WORK/names"; then refuse "payload names a path with '..'"; fi

# 5. Unpack next to the destination (same file system, so the final move is a rename), then check
#    every file against the manifest, and that there is no file the manifest does not name.
if [ "$VERIFY_ONLY" = 1 ]; then
  STAGING=$WORK/unpack
  mkdir "$STAGING"
else
  mkdir -p "$(dirname "$PREFIX")"
  STAGING=$(mktemp -d "$(dirname "$PREFIX")/.sigil-install.XXXXXX")
fi
tar -xf "$WORK/payload.tar" -C "$STAGING" --no-same-owner || die "could not unpack the payload"
rm -f "$WORK/payload.tar"
grep '  payload/' "$WORK/body.sha256" > "$WORK/files.sha256" || true
(cd "$STAGING" && sha256sum -c --strict --quiet "$WORK/files.sha256") >/dev/null 2>&1 || refuse "an unpacked file does not match the signed manifest"
(cd "$STAGING" && find payload -type f | LC_ALL=C sort) > "$WORK/found"
sed 's/^[0-9a-f]\{64\}  //' "$WORK/files.sha256" | LC_ALL=C sort > "$WORK/listed"
cmp -s "$WORK/found" "$WORK/listed" || refuse "the payload holds files the manifest does not name: $(comm -23 "$WORK/found" "$WORK/listed" | head -3 | tr '\n' ' ')"
say "verified $(wc -l < "$WORK/listed") files"

if [ "$VERIFY_ONLY" = 1 ]; then
  say "--verify-only: nothing installed"
  exit 0
fi

# 6. Into place. The previous installation stays as PREFIX.previous until the next install.
#    The installed bundle's version and sequence go with it, for the next install's check.
printf '# sigil-bundle version %s\n# sequence %s\n' "$B_VERSION" "$B_SEQ" > "$STAGING/payload/BUNDLE-SEQUENCE"
chmod 0644 "$STAGING/payload/BUNDLE-SEQUENCE"
# Removing an old PREFIX.previous may take a while: a signal then leaves PREFIX as it was.
[ ! -e "$PREFIX.previous" ] || rm -rf "$PREFIX.previous"
# From here on a signal is ignored: the two renames are not interrupted, and if the second fails
# the first is undone (cleanup, on EXIT).
trap '' INT TERM HUP
kept=0
if [ -e "$PREFIX" ]; then
  mv "$PREFIX" "$PREFIX.previous" || die "could not move $PREFIX aside; nothing installed"
  ASIDE=1
  kept=1
fi
if ! mv "$STAGING/payload" "$PREFIX"; then
  die "could not move the new installation into $PREFIX"   # cleanup moves PREFIX.previous back
fi
ASIDE=0
rmdir "$STAGING"
STAGING=
[ "$kept" = 0 ] || say "previous installation kept as $PREFIX.previous"
say "installed into $PREFIX"
cat <<EOF
Next:
  1. harden the host:     sudo $PREFIX/hardening/apply     (then: sudo $PREFIX/hardening/check)
  2. initialise (once):   sudo -u sigil node $PREFIX/dist/server/main.js init --data /var/lib/sigil --listen <LAN-IP>:8443
  3. start:               sudo systemctl start sigil-server
EOF
