#!/usr/bin/env bash
# One 3-person call measurement: the desktop app (under Xvfb, test pattern camera at 720p) hosts
# nothing; it joins a server with two headless 720p peers. Prints the app's UI-thread frame
# times (from its log) and its CPU (from /proc) over a 40 s window after a 20 s warm-up.
# Usage: tools/ui-perf/run.sh MODE TAG   (MODE: gpu or cpu, the CONFAB_VIDEO_UPLOAD path; needs
# Xvfb and imagemagick; CONFAB_BIN picks the binary, default target/release/confab)
set -euo pipefail
MODE=$1; TAG=$2
BIN=${CONFAB_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/target/release/confab}
D=/tmp/perf-$TAG; rm -rf $D; mkdir -p $D/config/confab $D/state $D/data
cat > $D/config/confab/config.toml <<TOML
name = "Ann"
room = "perf"
camera = "TestPattern"
microphone = "TestTone"
speaker = "Off"
TOML
export XDG_CONFIG_HOME=$D/config XDG_STATE_HOME=$D/state XDG_DATA_HOME=$D/data
PORT=$((8800 + RANDOM % 100))
Xvfb :77 -screen 0 1280x800x24 >/dev/null 2>&1 & XV=$!
sleep 1
$BIN serve --listen 127.0.0.1:$PORT >$D/serve.log 2>&1 & SV=$!
sleep 0.5
export CONFAB_VIDEO_UPLOAD=$MODE
DISPLAY=:77 $BIN gui --join 127.0.0.1:$PORT --room perf >$D/app.out 2>&1 & APP=$!
unset CONFAB_VIDEO_UPLOAD
sleep 2
$BIN join 127.0.0.1:$PORT perf --name Ben --seconds 75 --resolution 1280x720 --bind 127.0.0.1 >$D/ben.json 2>$D/ben.log & B=$!
$BIN join 127.0.0.1:$PORT perf --name Cy --seconds 75 --resolution 1280x720 --bind 127.0.0.1 >$D/cy.json 2>$D/cy.log & C=$!
sleep 20
t0=$(awk '{print $14+$15}' /proc/$APP/stat); s0=$(date +%s.%N)
sleep 40
t1=$(awk '{print $14+$15}' /proc/$APP/stat); s1=$(date +%s.%N)
DISPLAY=:77 import -window root $D/shot.png 2>/dev/null || true
HZ=$(getconf CLK_TCK)
cpu=$(python3 -c "print(round(($t1-$t0)/$HZ/($s1-$s0)*100,1))")
# The app logs the UI thread every 30 s of a call; wait for a line inside the window.
sleep 12
line=$(grep -h "ui thread per frame" $D/state/confab/logs/* | tail -1 || true)
kill $APP $B $C $SV 2>/dev/null || true; sleep 1; kill $XV 2>/dev/null || true
echo "$TAG mode=$MODE app_cpu_percent_of_one_core=$cpu | $line"
