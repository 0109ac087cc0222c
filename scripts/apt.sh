# Sourced by the test, bench and soak scripts: installs Debian packages that are missing, without
# letting a package start its service (nginx would take port 80).
# Usage: apt_install_missing CALLER PACKAGE...   (does nothing without packages)

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install_missing() {
    local caller="$1"
    shift
    [ "$#" -gt 0 ] || return 0
    echo "$caller: installing $*" >&2
    as_root apt-get update -qq
    # policy-rc.d exit 101 keeps the package from starting nginx as a service on port 80.
    local policy=/usr/sbin/policy-rc.d added_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
        as_root chmod +x "$policy"
        added_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
        "$@" </dev/null
    if [ "$added_policy" -eq 1 ]; then as_root rm -f "$policy"; fi
}
