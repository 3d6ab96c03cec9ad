#!/bin/sh
# Before removal (deb: remove | upgrade …; rpm: 0 = erase, 1 = upgrade). On an upgrade
# nothing is stopped or disabled; on removal every unit is stopped and disabled.
set -e

case "$1" in
	remove | 0) ;;
	*) exit 0 ;;
esac

root=${DPKG_ROOT:-}
units="imdsmend.timer imdsmend-watch.service imdsmend.service imdsmend-boot.service"
if [ -z "$root" ] && [ -d /run/systemd/system ]; then
	systemctl stop $units || true
fi
systemctl ${root:+--root="$root"} disable $units >/dev/null 2>&1 || true
exit 0
