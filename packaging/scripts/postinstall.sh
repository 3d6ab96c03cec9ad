#!/bin/sh
# After install and upgrade (deb: configure [OLD-VERSION]; rpm: 1 = install, 2 = upgrade).
# DPKG_ROOT is set when dpkg installs into another root (dpkg --root, image builders):
# then only that tree is changed, and no running system is touched.
set -e

root=${DPKG_ROOT:-}
live=
if [ -z "$root" ] && [ -d /run/systemd/system ]; then
	live=yes
fi

journalctl --update-catalog ${root:+--root="$root"} >/dev/null 2>&1 || true

first=
case "$1" in
	configure) [ -z "$2" ] && first=yes ;;
	1) first=yes ;;
esac

if [ -n "$live" ]; then
	systemctl daemon-reload || true
fi
if [ -n "$first" ]; then
	# First install: the boot pass and the timer from the next boot on. Nothing runs now;
	# `systemctl start imdsmend.timer` starts the periodic runs at once (docs/install.md).
	systemctl ${root:+--root="$root"} enable imdsmend-boot.service imdsmend.timer >/dev/null 2>&1 || true
elif [ -n "$live" ]; then
	# Upgrade: what the admin enabled stays as it is; a running watch picks up the new binary.
	systemctl try-restart imdsmend-watch.service || true
fi
exit 0
