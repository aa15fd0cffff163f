#!/usr/bin/env bash
# Docker for `sam local invoke`: `tools/docker_daemon.sh start` makes sure a Docker daemon answers, and
# `tools/docker_daemon.sh stop` stops the one it started (and only that one).
#
# start: nothing to do when `docker info` answers. Otherwise, as root on a Debian or Ubuntu machine (CI), it
# installs Debian's docker.io when absent and starts dockerd in the background (log: build/dockerd.log), then
# waits for its socket to answer. Anywhere else it says what is missing and fails.
set -euo pipefail
cd "$(dirname "$0")/.."

STATE_DIR=build
PID_FILE="$STATE_DIR/dockerd.pid"
LOG_FILE="$STATE_DIR/dockerd.log"
# How long dockerd may take to answer on its socket (it usually does in 1-3 s).
START_TIMEOUT_S=60

say() { echo "docker_daemon: $*" >&2; }

answers() { docker info >/dev/null 2>&1; }

can_install() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; }

install_docker() {
    say "installing Debian's docker.io (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    # A fresh machine may have no package lists yet.
    if ! apt-get install -y --no-install-recommends docker.io >/dev/null; then
        apt-get update -qq
        apt-get install -y --no-install-recommends docker.io >/dev/null
    fi
}

start() {
    if answers; then
        return 0
    fi
    if command -v docker >/dev/null && [[ "$(docker info 2>&1 || true)" == *"permission denied"* ]]; then
        say "the Docker daemon runs, but its socket is not yours: add yourself to the docker group, or run as root."
        return 1
    fi
    if ! command -v dockerd >/dev/null; then
        if ! can_install; then
            if command -v docker >/dev/null; then
                say "the Docker daemon does not answer: start Docker (Docker Desktop, or 'sudo systemctl start docker')."
            else
                say "Docker is not installed: install Docker Engine or Docker Desktop (https://docs.docker.com/get-docker/)."
                say "(As root on Debian or Ubuntu, this script installs Debian's docker.io itself.)"
            fi
            return 1
        fi
        install_docker
    fi
    if [ "$(id -u)" != 0 ]; then
        say "the Docker daemon does not answer, and only root can start it: 'sudo systemctl start docker'."
        return 1
    fi
    mkdir -p "$STATE_DIR"
    say "starting dockerd (log: $LOG_FILE)"
    nohup dockerd >"$LOG_FILE" 2>&1 &
    echo $! >"$PID_FILE"
    local deadline=$((SECONDS + START_TIMEOUT_S))
    until answers; do
        if ! kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
            say "dockerd exited at start; the end of its log:"
            tail -n 20 "$LOG_FILE" >&2
            rm -f "$PID_FILE"
            return 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            say "dockerd did not answer within ${START_TIMEOUT_S} s; see $LOG_FILE"
            return 1
        fi
        sleep 0.2
    done
    say "dockerd answers ($(docker version --format '{{.Server.Version}}'))"
}

stop() {
    [ -f "$PID_FILE" ] || return 0
    local pid
    pid="$(cat "$PID_FILE")"
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ]; then
        kill "$pid"
        # dockerd stops its containers (10 s each at most) and its own containerd before it exits.
        local deadline=$((SECONDS + START_TIMEOUT_S))
        while kill -0 "$pid" 2>/dev/null; do
            if [ "$SECONDS" -ge "$deadline" ]; then
                say "dockerd (pid $pid) is still stopping after ${START_TIMEOUT_S} s; see $LOG_FILE"
                return 1
            fi
            sleep 0.2
        done
        say "dockerd stopped"
    fi
    rm -f "$PID_FILE"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
