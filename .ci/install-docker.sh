#!/usr/bin/env bash
# Installs what the watchdog's real-engine tests and the compose/Dockerfile checks need, on a clean
# Debian 12 machine, as root, with only Debian's apt (and npm) reachable:
#   dockerd + containerd + runc + tini (docker-init)  -> a throwaway engine the tests start themselves
#   docker-compose 1.29.2 (Debian's)                  -> `docker-compose config -q` on docker/compose.yaml
#   busybox-static                                    -> the rootfs of the tiny fake-GPU test image
# Idempotent: does nothing when every tool is already there. Never starts a daemon: the packages'
# service scripts are blocked for the duration of the install (tests run their own dockerd in a
# temporary directory).
set -euo pipefail

log() { printf '[install-docker] %s\n' "$*"; }

# Tool -> Debian package that provides it.
declare -A TOOL_PKG=(
  [dockerd]=docker.io
  [containerd]=containerd
  [runc]=runc
  [docker-init]=tini
  [docker-compose]=docker-compose
)
BUSYBOX_STATIC=/bin/busybox

missing_pkgs=()
for tool in "${!TOOL_PKG[@]}"; do
  if path=$(command -v "$tool" 2>/dev/null); then
    log "found $tool at $path"
  else
    missing_pkgs+=("${TOOL_PKG[$tool]}")
  fi
done
# A dynamically linked busybox (package busybox) cannot run inside an empty rootfs: require the static one.
if [[ -x $BUSYBOX_STATIC ]] && ! ldd "$BUSYBOX_STATIC" >/dev/null 2>&1; then
  log "found static busybox at $BUSYBOX_STATIC"
else
  missing_pkgs+=(busybox-static)
fi

if ((${#missing_pkgs[@]} == 0)); then
  log "nothing to install"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  log "missing packages (${missing_pkgs[*]}) and not root: run this script as root" >&2
  exit 1
fi

# Sort and deduplicate (docker.io pulls containerd/runc/tini itself, but be explicit).
mapfile -t missing_pkgs < <(printf '%s\n' "${missing_pkgs[@]}" | sort -u)
log "installing: ${missing_pkgs[*]}"

# Keep package scripts from starting dockerd/containerd (no init system on CI runners in containers,
# and a system daemon is not what the tests use). Only add the policy if none exists, and remove it after.
policy=/usr/sbin/policy-rc.d
added_policy=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  added_policy=1
fi
cleanup() { if ((added_policy)); then rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
start=$SECONDS
apt_log=$(mktemp)
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 \
  "${missing_pkgs[@]}"; } >"$apt_log" 2>&1; then
  cat "$apt_log" >&2
  log "apt-get failed (output above)" >&2
  exit 1
fi
rm -f "$apt_log"
log "installed in $((SECONDS - start)) s:"
for pkg in "${missing_pkgs[@]}"; do
  log "  $(dpkg-query -W -f='${Package} ${Version}' "$pkg")"
done
for tool in "${!TOOL_PKG[@]}"; do
  command -v "$tool" >/dev/null || { log "still missing after install: $tool" >&2; exit 1; }
done
[[ -x $BUSYBOX_STATIC ]] || { log "still missing after install: $BUSYBOX_STATIC" >&2; exit 1; }
