#!/usr/bin/env bash
# System packages the sandbox uses when it can: bubblewrap for namespaces.
# Best effort: without root or apt the sandbox falls back (see sandbox/README.md) and says so.
set -u
if ! command -v bwrap >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends bubblewrap) >/dev/null 2>&1 \
      && echo "installed bubblewrap" || echo "warning: could not install bubblewrap; the sandbox will run with reduced isolation"
  else
    echo "warning: bubblewrap not installed and no root/apt; the sandbox will run with reduced isolation"
  fi
fi
# Installed is not enough: containers and hardened kernels can forbid the namespaces it needs.
if command -v bwrap >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ]; then ns="--unshare-pid --unshare-net --unshare-ipc"; else ns="--unshare-all"; fi
  # shellcheck disable=SC2086
  bwrap $ns --die-with-parent --ro-bind / / --dev /dev --proc /proc true >/dev/null 2>&1 \
    || echo "warning: bwrap is installed but cannot create namespaces here; the sandbox will fall back (see sandbox/README.md)"
fi
exit 0
