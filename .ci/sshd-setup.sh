#!/usr/bin/env bash
# Install what tests/test_ssh.py and tests/test_signals.py need: an OpenSSH server and client,
# and tmux. Idempotent and quiet; exits 0 even when it cannot install (those tests then skip
# with the reason). The tests start their own sshd on 127.0.0.1 with throwaway keys; this
# script never starts or configures a system service.
set -u

need=()
command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
command -v tmux >/dev/null 2>&1 || need+=(tmux)
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "sshd-setup: cannot install ${need[*]} (needs root and apt-get); the SSH tests will skip" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}"; } \
        >/tmp/changeover-sshd-setup.log 2>&1; then
    echo "sshd-setup: installing ${need[*]} failed (see /tmp/changeover-sshd-setup.log);" \
         "the SSH tests will skip" >&2
fi
exit 0
