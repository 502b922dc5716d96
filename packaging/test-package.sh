#!/usr/bin/env bash
# The packaging test (`make package-test`, part of `make test`): checks the .deb and .rpm that
# `make package` left in target/packages/, installs the .deb on this machine, runs the installed
# program, validates what it put on the system, and removes it again.
#
# It installs system-wide (as root, or through sudo), so it refuses to run where a `confab`
# package is already installed: it would replace and then remove it.
#
# Needs: dpkg, apt-cache, desktop-file-validate (desktop-file-utils), appstreamcli (appstream),
# rpm, jq, gzip; `make deps` installs them.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }
fail() { printf 'PACKAGE TEST FAILED: %s\n' "$*" >&2; exit 1; }
ok() { printf '   ok: %s\n' "$*"; }

if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
app_id=org.confab.Confab
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
[ -n "$version" ] || fail "cannot read the version from Cargo.toml"
subcommands=(gui serve loopback join devices sound-check)

# The files both packages must install.
expected_files=(
  /usr/bin/confab
  /usr/share/applications/"$app_id".desktop
  /usr/share/metainfo/"$app_id".metainfo.xml
  /usr/share/icons/hicolor/48x48/apps/"$app_id".png
  /usr/share/icons/hicolor/128x128/apps/"$app_id".png
  /usr/share/icons/hicolor/256x256/apps/"$app_id".png
  /usr/share/icons/hicolor/512x512/apps/"$app_id".png
  /usr/share/icons/hicolor/scalable/apps/"$app_id".svg
  /usr/share/man/man1/confab.1.gz
)
for sub in "${subcommands[@]}"; do expected_files+=("/usr/share/man/man1/confab-$sub.1.gz"); done

one_file() { # one_file GLOB: the single file matching GLOB
  local matches
  # shellcheck disable=SC2206 # the glob is meant to expand
  matches=($1)
  if [ "${#matches[@]}" -ne 1 ] || [ ! -f "${matches[0]}" ]; then
    fail "expected exactly one $1, found: ${matches[*]} (run make package)"
  fi
  printf '%s' "${matches[0]}"
}
deb=$(one_file "target/packages/confab_${version}-*_*.deb")
rpm_file=$(one_file "target/packages/confab-${version}-*.rpm")
printf 'testing %s (%s KiB) and %s (%s KiB)\n' \
  "$deb" "$(( $(stat -c %s "$deb") / 1024 ))" "$rpm_file" "$(( $(stat -c %s "$rpm_file") / 1024 ))"

# PNG width and height from the IHDR chunk (bytes 16..23, big-endian).
png_size() {
  local b
  read -r -a b < <(od -An -tu1 -j16 -N8 "$1")
  [ "${#b[@]}" -eq 8 ] || fail "$1 is not a PNG"
  printf '%dx%d' $(( (b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3] )) \
    $(( (b[4] << 24) | (b[5] << 16) | (b[6] << 8) | b[7] ))
}

step "the .deb's files"
work=$(mktemp -d)
installed=""
cleanup() {
  if [ -n "$installed" ]; then
    echo "cleaning up: removing the test installation"
    $sudo dpkg --purge confab >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

dpkg-deb --contents "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$work/deb-files"
for f in "${expected_files[@]}" /usr/share/doc/confab/README.md; do
  grep -qx "$f" "$work/deb-files" || fail "the .deb lacks $f"
done
ok "${#expected_files[@]} files present, man pages for confab and ${#subcommands[@]} subcommands"
dpkg-deb --extract "$deb" "$work/root"
for size in 48 128 256 512; do
  got=$(png_size "$work/root/usr/share/icons/hicolor/${size}x${size}/apps/$app_id.png")
  [ "$got" = "${size}x${size}" ] || fail "the ${size}x${size} icon is $got"
done
ok "icons are 48, 128, 256 and 512 px"
grep -q '<svg' "$work/root/usr/share/icons/hicolor/scalable/apps/$app_id.svg" || fail "the scalable icon is not SVG"
[ -x "$work/root/usr/bin/confab" ] || fail "/usr/bin/confab is not executable"
if file_out=$(command -v file >/dev/null && file "$work/root/usr/bin/confab"); then
  case "$file_out" in *"not stripped"*) fail "the packaged binary is not stripped" ;; esac
fi

step "the .deb's dependencies"
depends=$(dpkg-deb --field "$deb" Depends)
recommends=$(dpkg-deb --field "$deb" Recommends)
echo "   Depends: $depends"
echo "   Recommends: $recommends"
# From dpkg-shlibdeps (linked) and from our list (loaded with dlopen).
for need in libc6 libasound2 libxkbcommon-x11-0 libxcursor1 libvulkan1 libegl1; do
  grep -Eq "(^|[ ,|])$need([ ,(|]|$)" <<<"$depends" || fail "Depends lacks $need"
done
ok "libasound2 found by dpkg-shlibdeps; the dlopen'ed libraries declared"
# Every package named must exist, or the field has a typo no install would catch (dpkg -i below
# checks Depends; only apt's package lists know packages that are not installed).
if compgen -G "/var/lib/apt/lists/*_Packages*" >/dev/null; then
  for pkg in $(tr ',|' '\n' <<<"$depends, $recommends" | sed 's/(.*)//; s/ //g' | sort -u); do
    apt-cache show "$pkg" >/dev/null 2>&1 || fail "Depends/Recommends names $pkg, which apt does not know"
  done
  ok "every package named in Depends and Recommends is known to apt"
else
  echo "   skipped: the Recommends names (no apt package lists here; apt-get update fetches them)"
fi

step "the .rpm"
rpm -qp --queryformat '%{NAME} %{VERSION}\n' "$rpm_file" 2>/dev/null | grep -qx "confab $version" ||
  fail "the .rpm is not confab $version"
rpm -qpl "$rpm_file" 2>/dev/null >"$work/rpm-files"
for f in "${expected_files[@]}"; do
  grep -qx "$f" "$work/rpm-files" || fail "the .rpm lacks $f"
done
rpm -qpR "$rpm_file" 2>/dev/null >"$work/rpm-requires"
for need in 'libasound.so.2()(64bit)' 'libxkbcommon-x11.so.0()(64bit)' 'libvulkan.so.1()(64bit)' 'libEGL.so.1()(64bit)'; do
  grep -qxF "$need" "$work/rpm-requires" || fail "the .rpm does not require $need"
done
ok "same files as the .deb; requires libasound.so.2 (found) and the dlopen'ed libraries"

step "install the .deb"
if dpkg-query -W -f='${Status}' confab 2>/dev/null | grep -q "install ok installed"; then
  fail "a confab package is already installed here; this test would replace and remove it. \
Remove it first (sudo dpkg -r confab), or run the test in a container or CI."
fi
installed=yes
$sudo dpkg -i "$deb" || fail "dpkg -i failed (missing dependencies? make deps installs them)"
[ "$(command -v confab)" = /usr/bin/confab ] || fail "confab on PATH is $(command -v confab), not /usr/bin/confab"
ok "installed"

step "the installed program"
/usr/bin/confab --version | tee "$work/version"
head -n1 "$work/version" | grep -qx "confab $version" || fail "--version does not start with 'confab $version'"
grep -Eq '^OpenH264 [0-9]+\.[0-9]+\.[0-9]+$' "$work/version" || fail "--version does not name OpenH264"
grep -Eq '^libopus [0-9]+\.[0-9]+' "$work/version" || fail "--version does not name libopus"
ok "--version names Confab $version, OpenH264 and libopus"

# Its log goes to a file, shown only when something is wrong.
if ! /usr/bin/confab loopback --seconds 3 --json >"$work/loopback.json" 2>"$work/loopback.log"; then
  tail -n 40 "$work/loopback.log" >&2
  fail "confab loopback failed: $(cat "$work/loopback.json")"
fi
jq -e '.ok == true' "$work/loopback.json" >/dev/null || fail "loopback report is not ok: $(cat "$work/loopback.json")"
ok "confab loopback --seconds 3: \"ok\": true"

if out=$(env -u DISPLAY -u WAYLAND_DISPLAY /usr/bin/confab "confab://127.0.0.1:8787/team%20room" 2>&1); then
  fail "a link without a display should fail"
fi
grep -q 'confab join ws://127.0.0.1:8787/ws "team room" --headless' <<<"$out" ||
  fail "the installed confab did not take the link apart: $out"
ok "confab confab://HOST:PORT/ROOM is understood (no display here, so it says how to join headless)"

step "what the package put on the system"
desktop-file-validate "/usr/share/applications/$app_id.desktop" || fail "desktop-file-validate"
ok "desktop-file-validate"
appstreamcli validate --no-net "/usr/share/metainfo/$app_id.metainfo.xml" || fail "appstreamcli validate"
ok "appstreamcli validate"
grep -qx 'Exec=confab %u' "/usr/share/applications/$app_id.desktop" || fail "the desktop entry does not pass links (%u)"
grep -q '^MimeType=.*x-scheme-handler/confab;' "/usr/share/applications/$app_id.desktop" ||
  fail "the desktop entry does not handle confab:// links"
# desktop-file-utils' dpkg trigger registers the handler in the MIME cache.
if [ -f /usr/share/applications/mimeinfo.cache ]; then
  grep -q "^x-scheme-handler/confab=.*$app_id.desktop" /usr/share/applications/mimeinfo.cache ||
    fail "confab:// is not in /usr/share/applications/mimeinfo.cache"
  ok "confab:// links are registered with the desktop (mimeinfo.cache)"
fi
zcat /usr/share/man/man1/confab.1.gz | grep -q '^\.SH FILES' || fail "confab(1) has no FILES section"
for sub in "${subcommands[@]}"; do
  zcat "/usr/share/man/man1/confab-$sub.1.gz" | grep -q '^\.SH OPTIONS' || fail "confab-$sub(1) lists no options"
done
ok "man pages: confab(1) and one per subcommand"

step "remove the package"
$sudo dpkg --purge confab || fail "dpkg --purge failed"
installed=""
for f in "${expected_files[@]}"; do
  [ ! -e "$f" ] || fail "$f is still there after purge"
done
dpkg-query -W -f='${Status}' confab 2>/dev/null | grep -q "install ok installed" && fail "confab still installed"
ok "purged: /usr/bin/confab and every packaged file are gone"

printf '\nPACKAGE TEST PASSED\n'
