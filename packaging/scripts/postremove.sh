#!/bin/sh
# After removal (deb: remove | purge | upgrade …; rpm: 0 = erase, 1 = upgrade).
set -e

root=${DPKG_ROOT:-}
case "$1" in
	remove | purge | 0)
		if [ -z "$root" ] && [ -d /run/systemd/system ]; then
			systemctl daemon-reload || true
		fi
		journalctl --update-catalog ${root:+--root="$root"} >/dev/null 2>&1 || true
		;;
esac
# purge (deb only) also drops the ledger and backups: nothing is left to undo with.
if [ "$1" = purge ]; then
	rm -rf "$root/var/lib/imdsmend"
fi
exit 0
