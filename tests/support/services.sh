#!/usr/bin/env bash
# Real external services for Burrow's test suite: a Docker engine, an SSH/SFTP
# server and an S3-compatible server, all on this machine, on loopback only.
#
#   tests/support/services.sh [start] [docker] [ssh] [s3]   ensure they run (default: all)
#   tests/support/services.sh stop [docker] [ssh] [s3]      stop what this script started
#   tests/support/services.sh status                        one line per service
#   source tests/support/services.sh [docker] [ssh] [s3]    start, then export the variables here
#
# BURROW_TEST_S3_WANT=moto (or s3s-fs) forces the S3 backend; the default,
# auto, is s3s-fs, or moto when s3s-fs cannot be built.
#
# "start" installs what is missing (Debian packages with apt-get, s3s-fs with
# cargo install, moto with pip as the S3 fallback), starts each service unless
# it already answers, checks it for real, then writes target/test-services.env
# (relative to the repo root), atomically: `export VAR=value` lines, one per
# variable, values unquoted and without spaces, for the services just asked
# for plus any other of ours that still runs; the last line,
# BURROW_TEST_SERVICES=docker,ssh,s3, lists which. `stop` drops the stopped
# services' lines (the file goes when none is left). Everything else it keeps
# lives under target/ too (keys, configs, pid files, logs); `cargo clean`
# removes it, so stop the services before that.
# It prints nothing when all is well (an install that takes a while says one
# line on stderr); on failure it names the step, shows the end of the relevant
# log and exits non-zero, and removes target/test-services.env.
#
# Needs root (we are root on the dev and CI machines): it installs packages,
# runs dockerd and creates the unprivileged login user `burrowtest`.
#
# When sourced, nothing of this file's settings leaks into the calling shell:
# it runs itself as a child process and then sources the env file. (A bare
# `source tests/support/services.sh` inside a script that has positional
# parameters passes those on, as bash does: name the services in that case.)

if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
  __burrow_services_script="${BASH_SOURCE[0]}"
  if bash "$__burrow_services_script" "$@"; then
    case "${1:-}" in
      stop | status) ;;
      *) . "$(cd "$(dirname "$__burrow_services_script")/../.." && pwd)/target/test-services.env" ;;
    esac
    unset __burrow_services_script
    return 0
  else
    unset __burrow_services_script
    return 1
  fi
fi

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TARGET="$ROOT/target"
STATE="$TARGET/test-services" # install/build logs, dockerd pid file, lock
ENV_FILE="$TARGET/test-services.env"
ALL_SERVICES=(docker ssh s3)

DOCKER_IMAGE="burrow-test-busybox:latest"
DOCKERFILE_DIR="$ROOT/sandbox-images/offline/busybox"
DOCKERD_LOG="$TARGET/dockerd.log"
DOCKERD_PID="$STATE/dockerd.pid"

SSH_DIR="$TARGET/ssh"
SSH_USER="burrowtest"
SSH_PASSWORD="burrowtest-pw"
SSH_PORT_BASE=22220

S3_DIR="$TARGET/s3"
S3_BUCKET="burrow-test"
S3_ACCESS_KEY="burrowtestaccess"
S3_SECRET_KEY="burrowtestsecret"
S3_PORT_BASE=29000
S3S_FS_VERSION="0.14.1" # 0.17 needs rustc 1.96
# One line per routed request (op name, bucket, key), plus the request/response
# lines; s3s_fs's own debug lines repeat whole requests, so keep it at info.
S3_RUST_LOG="info,s3s=debug,s3s_fs=info"

# ---------------------------------------------------------------- helpers

die() {
  echo "services.sh: error: $*" >&2
  exit 1
}

note() { echo "services.sh: $*" >&2; }

# Print the end of a log file to stderr (for failures).
show_log() {
  local file=$1 lines=${2:-40}
  if [[ -s $file ]]; then
    echo "---- last $lines lines of $file ----" >&2
    tail -n "$lines" "$file" >&2 || true
    echo "----" >&2
  fi
}

# run_logged LOG STEP CMD...: run quietly, appending to LOG; on failure show it and die.
run_logged() {
  local log=$1 step=$2
  shift 2
  if ! "$@" >>"$log" 2>&1; then
    show_log "$log"
    die "$step failed (full log: $log)"
  fi
}

need_root() {
  [[ $(id -u) -eq 0 ]] || die "$1 needs root (installs packages / starts system daemons); run as root"
}

APT_UPDATED=0
# ensure_pkgs PKG...: apt-get install those not installed yet (apt-get update once, first).
ensure_pkgs() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  need_root "installing ${missing[*]}"
  local log="$STATE/apt.log"
  note "installing Debian packages: ${missing[*]} (log: $log)"
  local apt_opts=(-o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0)
  if ((APT_UPDATED == 0)); then
    run_logged "$log" "apt-get update" apt-get "${apt_opts[@]}" update -q
    APT_UPDATED=1
  fi
  # Keep package scripts from starting their own daemons (a system sshd on
  # port 22, dockerd through its init script): this script starts what it needs.
  local policy=/usr/sbin/policy-rc.d added_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && added_policy=1
  fi
  local rc=0
  DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y -q --no-install-recommends \
    "${missing[@]}" >>"$log" 2>&1 || rc=$?
  ((added_policy)) && rm -f "$policy"
  if ((rc != 0)); then
    show_log "$log"
    die "apt-get install ${missing[*]} failed (full log: $log)"
  fi
}

# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
  timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# pick_port STATEFILE BASE: the port remembered in STATEFILE if it is free,
# else the first free one in BASE..BASE+99; remembered for next time.
pick_port() {
  local statefile=$1 base=$2 p
  if [[ -s $statefile ]]; then
    p=$(<"$statefile")
    if [[ $p =~ ^[0-9]+$ ]] && ! port_open "$p"; then
      echo "$p"
      return 0
    fi
  fi
  for ((p = base; p < base + 100; p++)); do
    if ! port_open "$p"; then
      echo "$p" >"$statefile"
      echo "$p"
      return 0
    fi
  done
  die "no free TCP port on 127.0.0.1 in $base..$((base + 99))"
}

# pid_from PIDFILE PATTERN: print the pid in PIDFILE if that process is alive
# and its command line contains PATTERN (guards against reused pids).
pid_from() {
  local pidfile=$1 pattern=$2 pid
  [[ -s $pidfile ]] || return 1
  pid=$(<"$pidfile")
  pid=${pid//[^0-9]/}
  [[ -n $pid && -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$pattern" || return 1
  echo "$pid"
}

# stop_pidfile NAME PIDFILE PATTERN [WAIT_SECONDS]: TERM, wait, then KILL.
stop_pidfile() {
  local name=$1 pidfile=$2 pattern=$3 wait=${4:-15} pid i
  if pid=$(pid_from "$pidfile" "$pattern"); then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < wait * 10; i++)); do
      [[ -e /proc/$pid && $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]] || break
      sleep 0.1
    done
    if [[ -e /proc/$pid && $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]; then
      note "$name (pid $pid) did not stop within ${wait}s; sending KILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pidfile"
}

# wait_until SECONDS DESCRIPTION CMD...: poll CMD every 0.2s.
wait_until() {
  local secs=$1 i
  shift 2 # $2 only names what is awaited, for the reader
  for ((i = 0; i < secs * 5; i++)); do
    "$@" && return 0
    sleep 0.2
  done
  return 1
}

# Start a long-running server detached from our session, record its pid.
# start_daemon PIDFILE LOG CMD... (LOG is truncated). No job control here, so
# setsid does not fork and $! is the server's own pid. fd 9 (our lock) is
# closed so that the server does not hold the lock for its whole life.
start_daemon() {
  local pidfile=$1 log=$2
  shift 2
  (cd / && exec setsid "$@" </dev/null >"$log" 2>&1 9>&-) &
  echo $! >"$pidfile"
}

# ---------------------------------------------------------------- env file

declare -a ENV_LINES=()
add_env() {
  local name=$1 value=$2
  if [[ $value =~ ^[A-Za-z0-9_./:@+,=-]*$ ]]; then
    ENV_LINES+=("export $name=$value")
  else
    ENV_LINES+=("export $name=$(printf '%q' "$value")")
  fi
}

# Each service's lines go to $STATE/SERVICE.env; the env file is those of the
# services just started plus those of the others that still run, written
# atomically (readers never see it half-written or missing during a rerun).
save_fragment() {
  printf '%s\n' "${ENV_LINES[@]}" >"$STATE/$1.env"
  ENV_LINES=()
}

svc_alive() {
  case $1 in
    docker) (
      eval "$(grep '^export DOCKER_HOST=' "$STATE/docker.env" || true)"
      docker_ok
    ) ;;
    ssh) pid_from "$SSH_DIR/sshd.pid" sshd >/dev/null ;;
    s3) pid_from "$S3_DIR/s3.pid" "$(s3_pattern)" >/dev/null ;;
  esac
}

assemble_env_file() {
  local just_started=" $* " s up=() tmp="$ENV_FILE.tmp.$$"
  for s in "${ALL_SERVICES[@]}"; do
    [[ -s $STATE/$s.env ]] || continue
    if [[ $just_started != *" $s "* ]] && ! svc_alive "$s"; then
      rm -f "$STATE/$s.env"
      continue
    fi
    up+=("$s")
  done
  if ((${#up[@]} == 0)); then
    rm -f "$ENV_FILE"
    return 0
  fi
  {
    echo "# Written by tests/support/services.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ); do not edit."
    for s in "${up[@]}"; do cat "$STATE/$s.env"; done
    echo "export BURROW_TEST_SERVICES=$(IFS=,; echo "${up[*]}")"
  } >"$tmp"
  mv -f "$tmp" "$ENV_FILE"
}

# ---------------------------------------------------------------- docker

docker_ok() { timeout 15 docker info >/dev/null 2>&1; }

svc_docker() {
  need_root "docker"
  ensure_pkgs docker.io busybox-static
  command -v docker >/dev/null || die "docker: no docker client on PATH after installing docker.io"

  local docker_host=""
  if [[ -n ${DOCKER_HOST:-} ]] && docker_ok; then
    docker_host=$DOCKER_HOST
  else
    unset DOCKER_HOST
    if ! docker_ok; then
      if ! pid_from "$DOCKERD_PID" dockerd >/dev/null; then
        [[ -x /usr/sbin/dockerd ]] || die "docker: /usr/sbin/dockerd missing (package docker.io)"
        # dockerd needs cgroups mounted (v2, or v1 hierarchies); no init system mounts them here.
        if [[ ! -e /sys/fs/cgroup/cgroup.controllers && ! -d /sys/fs/cgroup/memory ]]; then
          ensure_pkgs cgroupfs-mount
          run_logged "$STATE/cgroupfs-mount.log" "mounting cgroups (cgroupfs-mount)" cgroupfs-mount
        fi
        # A stale /var/run/docker.pid from a dead daemon keeps dockerd from starting.
        if [[ -s /var/run/docker.pid ]] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
          rm -f /var/run/docker.pid
        fi
        start_daemon "$DOCKERD_PID" "$DOCKERD_LOG" env -u DOCKER_HOST /usr/sbin/dockerd
      fi
      if ! wait_until 60 "dockerd" docker_ok; then
        show_log "$DOCKERD_LOG"
        die "docker: the daemon does not answer on /var/run/docker.sock after 60s (log: $DOCKERD_LOG)"
      fi
    fi
  fi

  # The offline test image, rebuilt when its inputs change (label = their hash).
  local busybox=/bin/busybox
  [[ -x $busybox ]] || die "docker: $busybox missing (package busybox-static)"
  if ldd "$busybox" >/dev/null 2>&1; then
    die "docker: $busybox is dynamically linked; install busybox-static (not busybox)"
  fi
  [[ -f $DOCKERFILE_DIR/Dockerfile && -f $DOCKERFILE_DIR/pgrep ]] ||
    die "docker: $DOCKERFILE_DIR/{Dockerfile,pgrep} missing"
  local inputs have
  inputs=$(cat "$DOCKERFILE_DIR/Dockerfile" "$DOCKERFILE_DIR/pgrep" "$busybox" | sha256sum | cut -c1-64)
  have=$(docker image inspect -f '{{ index .Config.Labels "burrow.image-inputs" }}' "$DOCKER_IMAGE" 2>/dev/null || true)
  if [[ $have != "$inputs" ]]; then
    local ctx log="$STATE/docker-build.log" old_id
    old_id=$(docker image inspect -f '{{.Id}}' "$DOCKER_IMAGE" 2>/dev/null || true)
    ctx=$(mktemp -d)
    cp "$DOCKERFILE_DIR/Dockerfile" "$DOCKERFILE_DIR/pgrep" "$ctx"/
    cp "$busybox" "$ctx/busybox"
    : >"$log"
    # The legacy builder: no buildx plugin needed, nothing pulled (FROM scratch).
    if ! DOCKER_BUILDKIT=0 docker build --label "burrow.image-inputs=$inputs" -t "$DOCKER_IMAGE" "$ctx" >>"$log" 2>&1; then
      rm -rf "$ctx"
      show_log "$log"
      die "docker: building $DOCKER_IMAGE failed (log: $log)"
    fi
    rm -rf "$ctx"
    # The previous build, now untagged (kept if a container still uses it).
    [[ -n $old_id ]] && docker rmi "$old_id" >/dev/null 2>&1 || true
  fi

  local out
  if ! out=$(timeout 60 docker run --rm --network none "$DOCKER_IMAGE" echo ok 2>&1) || [[ $out != ok ]]; then
    echo "$out" >&2
    show_log "$DOCKERD_LOG" 20
    die "docker: 'docker run --rm --network none $DOCKER_IMAGE echo ok' did not print ok"
  fi

  add_env BURROW_TEST_DOCKER_IMAGE "$DOCKER_IMAGE"
  [[ -n $docker_host ]] && add_env DOCKER_HOST "$docker_host"
  return 0
}

docker_stop() {
  stop_pidfile dockerd "$DOCKERD_PID" dockerd 40
}

# ---------------------------------------------------------------- ssh

ssh_client_opts() {
  local port=$1
  echo "-F /dev/null -p $port -o UserKnownHostsFile=$SSH_DIR/known_hosts -o GlobalKnownHostsFile=/dev/null" \
    "-o StrictHostKeyChecking=yes -o ConnectTimeout=10 -o LogLevel=ERROR"
}

ssh_banner_ok() {
  local port=$1 banner
  banner=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"; head -c 4 <&3' _ "$port" 2>/dev/null) || return 1
  [[ $banner == SSH- ]]
}

svc_ssh() {
  need_root "ssh"
  ensure_pkgs openssh-server openssh-client
  [[ -x /usr/sbin/sshd ]] || die "ssh: /usr/sbin/sshd missing (package openssh-server)"
  [[ -x /usr/lib/openssh/sftp-server ]] || die "ssh: /usr/lib/openssh/sftp-server missing (package openssh-sftp-server)"

  mkdir -p "$SSH_DIR"
  chmod 0700 "$SSH_DIR"
  local k
  for k in "ed25519 ssh_host_ed25519_key burrow-test-host" "ed25519 id_ed25519 burrow-test-user" "rsa id_rsa burrow-test-user-rsa"; do
    set -- $k
    if [[ ! -s $SSH_DIR/$2 || ! -s $SSH_DIR/$2.pub ]]; then
      rm -f "$SSH_DIR/$2" "$SSH_DIR/$2.pub"
      if [[ $1 == rsa ]]; then
        ssh-keygen -q -t rsa -b 3072 -N '' -C "$3" -f "$SSH_DIR/$2" </dev/null || die "ssh: ssh-keygen for $2 failed"
      else
        ssh-keygen -q -t ed25519 -N '' -C "$3" -f "$SSH_DIR/$2" </dev/null || die "ssh: ssh-keygen for $2 failed"
      fi
    fi
    chmod 0600 "$SSH_DIR/$2"
  done
  cat "$SSH_DIR/id_ed25519.pub" "$SSH_DIR/id_rsa.pub" >"$SSH_DIR/authorized_keys"
  chmod 0600 "$SSH_DIR/authorized_keys"

  # The unprivileged login user, its password and its authorized_keys.
  if ! id -u "$SSH_USER" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/bash --comment "Burrow test user" "$SSH_USER" ||
      die "ssh: useradd $SSH_USER failed"
  fi
  local home
  home=$(getent passwd "$SSH_USER" | cut -d: -f6)
  [[ -n $home ]] || die "ssh: no home directory for $SSH_USER"
  if [[ ! -d $home ]]; then
    mkdir -p "$home" && cp -rT /etc/skel "$home" 2>/dev/null || true
    chown -R "$SSH_USER:" "$home"
  fi
  echo "$SSH_USER:$SSH_PASSWORD" | chpasswd || die "ssh: chpasswd for $SSH_USER failed"
  usermod --unlock "$SSH_USER" >/dev/null 2>&1 || true
  install -d -o "$SSH_USER" -g "$(id -gn "$SSH_USER")" -m 0700 "$home/.ssh"
  # Add this checkout's keys and keep the others': checkouts of the repository
  # on one machine share the login user, and replacing the file would lock
  # the other checkouts' tests out.
  local user_keys="$home/.ssh/authorized_keys" key
  touch "$user_keys"
  while IFS= read -r key; do
    grep -qxF -- "$key" "$user_keys" || printf '%s\n' "$key" >>"$user_keys"
  done <"$SSH_DIR/authorized_keys"
  chown "$SSH_USER:" "$user_keys"
  chmod 0600 "$user_keys"

  # Askpass helper so the password login can be checked without sshpass.
  printf '#!/bin/sh\necho %s\n' "$SSH_PASSWORD" >"$SSH_DIR/askpass.sh"
  chmod 0700 "$SSH_DIR/askpass.sh"

  local pidfile="$SSH_DIR/sshd.pid" config="$SSH_DIR/sshd_config" log="$SSH_DIR/sshd.log"
  local portfile="$SSH_DIR/port" port="" pid=""
  if pid=$(pid_from "$pidfile" sshd) && [[ -s $portfile ]] && ssh_banner_ok "$(<"$portfile")"; then
    port=$(<"$portfile")
  else
    [[ -n $pid ]] && stop_pidfile sshd "$pidfile" sshd
    pid=""
    port=$(pick_port "$portfile" "$SSH_PORT_BASE")
  fi

  local desired
  desired=$(
    cat <<EOF
# Written by tests/support/services.sh; regenerated on every run.
ListenAddress 127.0.0.1
Port $port
AddressFamily inet
HostKey $SSH_DIR/ssh_host_ed25519_key
PidFile $pidfile
LogLevel VERBOSE
StrictModes no
UsePAM no
PermitRootLogin yes
PubkeyAuthentication yes
PasswordAuthentication yes
KbdInteractiveAuthentication no
PermitEmptyPasswords no
AuthorizedKeysFile .ssh/authorized_keys
MaxStartups 200
MaxSessions 100
MaxAuthTries 20
LoginGraceTime 30
PrintMotd no
PrintLastLog no
UseDNS no
X11Forwarding no
AllowTcpForwarding yes
AllowAgentForwarding yes
AcceptEnv LANG LC_* BURROW_*
Subsystem sftp /usr/lib/openssh/sftp-server

# root may log in with the same user keys, read from our own file.
Match User root
    AuthorizedKeysFile $SSH_DIR/authorized_keys
EOF
  )
  if [[ ! -f $config || "$(<"$config")" != "$desired" ]]; then
    # New or changed config: a running sshd of ours must restart to use it.
    if [[ -n $pid ]]; then
      stop_pidfile sshd "$pidfile" sshd
      pid=""
      if port_open "$port"; then
        port=$(pick_port "$portfile" "$SSH_PORT_BASE")
        desired=$(sed "s/^Port .*/Port $port/" <<<"$desired")
      fi
    fi
    printf '%s\n' "$desired" >"$config"
  fi
  echo "$port" >"$portfile"

  # known_hosts for our host key on our port.
  echo "[127.0.0.1]:$port $(cut -d' ' -f1-2 "$SSH_DIR/ssh_host_ed25519_key.pub")" >"$SSH_DIR/known_hosts"

  local fresh=0
  if [[ -z $pid ]]; then
    fresh=1
    mkdir -p /run/sshd && chmod 0755 /run/sshd # privilege separation directory
    local out
    out=$(/usr/sbin/sshd -t -f "$config" 2>&1) || die "ssh: sshd rejects $config: $out"
    rm -f "$pidfile"
    : >"$log"
    # sshd daemonizes itself and writes its PidFile.
    (cd / && setsid /usr/sbin/sshd -f "$config" -E "$log" </dev/null >/dev/null 2>&1 9>&-) ||
      { show_log "$log"; die "ssh: starting /usr/sbin/sshd -f $config failed"; }
    if ! wait_until 20 sshd eval 'pid_from "$pidfile" sshd >/dev/null && ssh_banner_ok "$port"'; then
      show_log "$log"
      die "ssh: sshd does not answer on 127.0.0.1:$port after 20s (log: $log)"
    fi
  fi

  # Real logins: after a start, both keys, the password and the sftp
  # subsystem; when it was already running, the ed25519 key only (fast path).
  local opts out keys=(id_ed25519)
  opts=$(ssh_client_opts "$port")
  ((fresh)) && keys+=(id_rsa)
  for k in "${keys[@]}"; do
    # shellcheck disable=SC2086
    if ! out=$(ssh $opts -o BatchMode=yes -o IdentitiesOnly=yes -i "$SSH_DIR/$k" \
      "$SSH_USER@127.0.0.1" echo ok </dev/null 2>&1) || [[ $out != ok ]]; then
      echo "$out" >&2
      show_log "$log" 20
      die "ssh: key login as $SSH_USER with $SSH_DIR/$k on port $port failed"
    fi
  done
  ((fresh)) || { ssh_env "$pidfile" "$port" "$log"; return 0; }
  # shellcheck disable=SC2086
  if ! out=$(SSH_ASKPASS="$SSH_DIR/askpass.sh" SSH_ASKPASS_REQUIRE=force DISPLAY=:0 \
    ssh $opts -o BatchMode=no -o PubkeyAuthentication=no -o PreferredAuthentications=password \
    -o NumberOfPasswordPrompts=1 "$SSH_USER@127.0.0.1" echo ok </dev/null 2>&1) || [[ $out != ok ]]; then
    echo "$out" >&2
    show_log "$log" 20
    die "ssh: password login as $SSH_USER on port $port failed"
  fi
  # shellcheck disable=SC2086
  if ! out=$(echo ls -la | sftp -q -b - -F /dev/null -P "$port" -o UserKnownHostsFile="$SSH_DIR/known_hosts" \
    -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentitiesOnly=yes \
    -o ConnectTimeout=10 -i "$SSH_DIR/id_ed25519" "$SSH_USER@127.0.0.1" 2>&1); then
    echo "$out" >&2
    show_log "$log" 20
    die "ssh: sftp ls as $SSH_USER on port $port failed"
  fi

  ssh_env "$pidfile" "$port" "$log"
}

ssh_env() {
  local pidfile=$1 port=$2 log=$3
  add_env BURROW_TEST_SSH_HOST 127.0.0.1
  add_env BURROW_TEST_SSH_PORT "$port"
  add_env BURROW_TEST_SSH_USER "$SSH_USER"
  add_env BURROW_TEST_SSH_KEY "$SSH_DIR/id_ed25519"
  add_env BURROW_TEST_SSH_RSA_KEY "$SSH_DIR/id_rsa"
  add_env BURROW_TEST_SSH_KNOWN_HOSTS "$SSH_DIR/known_hosts"
  add_env BURROW_TEST_SSH_PASSWORD "$SSH_PASSWORD"
  add_env BURROW_TEST_SSH_PIDFILE "$pidfile"
  add_env BURROW_TEST_SSH_LOG "$log"
}

ssh_stop() {
  stop_pidfile sshd "$SSH_DIR/sshd.pid" sshd 15
}

# ---------------------------------------------------------------- s3

# s3_request METHOD PATH: a SigV4-signed request with the test credentials
# (python3 standard library only); prints the HTTP status, then the body.
s3_request() {
  EP="http://127.0.0.1:$1" AK=$S3_ACCESS_KEY SK=$S3_SECRET_KEY python3 - "$2" "$3" <<'PY'
import datetime, hashlib, hmac, os, sys, urllib.error, urllib.request
method, path = sys.argv[1], sys.argv[2]
ep, ak, sk, region = os.environ["EP"], os.environ["AK"], os.environ["SK"], "us-east-1"
host = ep.split("://", 1)[1]
now = datetime.datetime.now(datetime.timezone.utc)
amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
payload = hashlib.sha256(b"").hexdigest()
signed = "host;x-amz-content-sha256;x-amz-date"
canonical = "\n".join([method, path, "", f"host:{host}\nx-amz-content-sha256:{payload}\nx-amz-date:{amz_date}\n", signed, payload])
scope = f"{day}/{region}/s3/aws4_request"
to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
key = ("AWS4" + sk).encode()
for part in (day, region, "s3", "aws4_request"):
    key = hmac.new(key, part.encode(), hashlib.sha256).digest()
sig = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
headers = {"x-amz-date": amz_date, "x-amz-content-sha256": payload,
           "Authorization": f"AWS4-HMAC-SHA256 Credential={ak}/{scope}, SignedHeaders={signed}, Signature={sig}"}
req = urllib.request.Request(ep + path, method=method, headers=headers, data=b"" if method == "PUT" else None)
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    with opener.open(req, timeout=10) as r:
        status, body = r.status, r.read()
except urllib.error.HTTPError as e:
    status, body = e.code, e.read()
print(status)
sys.stdout.write(body.decode("utf-8", "replace"))
PY
}

s3_http_ok() {
  local port=$1 line
  line=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"; printf "GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" >&3; head -n 1 <&3' _ "$port" 2>/dev/null) || return 1
  [[ $line == HTTP/* ]]
}

cargo_bin_dir() { echo "${CARGO_HOME:-$HOME/.cargo}/bin"; }

# Ensure s3s-fs is installed; print its path, or return 1 (then moto is used).
ensure_s3s_fs() {
  local bin
  bin="$(cargo_bin_dir)/s3s-fs"
  if [[ -x $bin ]] && cargo install --list 2>/dev/null | grep -q "^s3s-fs v$S3S_FS_VERSION:"; then
    echo "$bin"
    return 0
  fi
  command -v cargo >/dev/null || return 1
  # A failed build is not retried on every run (it takes minutes); delete the marker to retry.
  [[ -e $S3_DIR/s3s-fs-install-failed ]] && return 1
  local log="$S3_DIR/cargo-install.log"
  note "installing s3s-fs $S3S_FS_VERSION with cargo install (several minutes; log: $log)"
  # From $HOME, with no project build settings: cargo install would honour
  # CARGO_TARGET_DIR, RUSTFLAGS and the cwd's .cargo/config.toml.
  if ! (cd "$HOME" && env -u CARGO_TARGET_DIR -u CARGO_BUILD_TARGET_DIR -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS \
    cargo install s3s-fs --version "$S3S_FS_VERSION" --features binary --locked) >"$log" 2>&1; then
    show_log "$log" 15
    note "cargo install s3s-fs failed (log: $log); falling back to moto"
    touch "$S3_DIR/s3s-fs-install-failed"
    return 1
  fi
  [[ -x $bin ]] || return 1
  echo "$bin"
}

# Ensure moto's server is importable (run as `python3 -m moto.server`, no shims needed).
ensure_moto() {
  python3 -c 'import moto.server, flask, werkzeug' 2>/dev/null && return 0
  local log="$S3_DIR/pip-install.log"
  note "installing moto[server] with pip (log: $log)"
  run_logged "$log" "pip install 'moto[server]'" python3 -m pip install -q 'moto[server]'
  python3 -c 'import moto.server, flask, werkzeug' 2>/dev/null ||
    die "s3: python3 cannot import moto.server after pip install 'moto[server]' (log: $log)"
}

svc_s3() {
  command -v python3 >/dev/null || die "s3: python3 is needed (request signing, moto fallback)"
  mkdir -p "$S3_DIR"
  local pidfile="$S3_DIR/s3.pid" log="$S3_DIR/s3.log" portfile="$S3_DIR/port"
  local backendfile="$S3_DIR/backend" data="$S3_DIR/data" port="" backend="" pid=""

  local want=${BURROW_TEST_S3_WANT:-auto}
  case $want in auto | s3s-fs | moto) ;; *) die "s3: BURROW_TEST_S3_WANT must be auto, s3s-fs or moto, not '$want'" ;; esac
  if [[ -s $backendfile ]]; then
    backend=$(<"$backendfile")
    if [[ $want != auto && $want != "$backend" ]]; then
      stop_pidfile "s3 ($backend)" "$pidfile" "$(s3_pattern)"
    fi
    if pid=$(pid_from "$pidfile" "$(s3_pattern)") && [[ -s $portfile ]] && s3_http_ok "$(<"$portfile")"; then
      port=$(<"$portfile")
    else
      [[ -n $pid ]] && stop_pidfile "s3 ($backend)" "$pidfile" "$(s3_pattern)"
      pid=""
    fi
  fi

  if [[ -z $pid ]]; then
    local bin
    port=$(pick_port "$portfile" "$S3_PORT_BASE")
    if [[ $want != moto ]] && bin=$(ensure_s3s_fs); then
      backend=s3s-fs
      mkdir -p "$data"
      start_daemon "$pidfile" "$log" env RUST_LOG="$S3_RUST_LOG" NO_COLOR=1 "$bin" \
        --host 127.0.0.1 --port "$port" --access-key "$S3_ACCESS_KEY" --secret-key "$S3_SECRET_KEY" "$data"
    else
      [[ $want == s3s-fs ]] && die "s3: s3s-fs $S3S_FS_VERSION is not installed and could not be (BURROW_TEST_S3_WANT=s3s-fs)"
      ensure_moto
      backend=moto
      start_daemon "$pidfile" "$log" env PYTHONUNBUFFERED=1 "$(python3 -c 'import sys; print(sys.executable)')" -m moto.server -H 127.0.0.1 -p "$port"
    fi
    echo "$backend" >"$backendfile"
    if ! wait_until 30 "s3" s3_http_ok "$port"; then
      show_log "$log"
      die "s3: $backend does not answer on 127.0.0.1:$port after 30s (log: $log)"
    fi
  fi

  # The test bucket: a directory under the root for s3s-fs; a PUT for moto
  # (in memory, so after every start).
  if [[ $backend == s3s-fs ]]; then
    mkdir -p "$data/$S3_BUCKET"
  fi
  local resp status
  resp=$(s3_request "$port" GET /) || die "s3: signed ListBuckets request to 127.0.0.1:$port failed"
  status=$(head -n 1 <<<"$resp")
  [[ $status == 200 ]] || { echo "$resp" >&2; show_log "$log" 20; die "s3: signed ListBuckets returned HTTP $status"; }
  if ! grep -q "<Name>$S3_BUCKET</Name>" <<<"$resp"; then
    if [[ $backend == moto ]]; then
      resp=$(s3_request "$port" PUT "/$S3_BUCKET") || die "s3: CreateBucket $S3_BUCKET failed"
      [[ $(head -n 1 <<<"$resp") == 200 ]] || { echo "$resp" >&2; die "s3: CreateBucket $S3_BUCKET returned HTTP $(head -n 1 <<<"$resp")"; }
    fi
    resp=$(s3_request "$port" GET /)
    grep -q "<Name>$S3_BUCKET</Name>" <<<"$resp" || { echo "$resp" >&2; die "s3: bucket $S3_BUCKET not listed by ListBuckets"; }
  fi

  add_env AWS_ENDPOINT_URL "http://127.0.0.1:$port"
  add_env AWS_ACCESS_KEY_ID "$S3_ACCESS_KEY"
  add_env AWS_SECRET_ACCESS_KEY "$S3_SECRET_KEY"
  add_env AWS_REGION us-east-1
  add_env AWS_DEFAULT_REGION us-east-1
  add_env AWS_EC2_METADATA_DISABLED true # never ask 169.254.169.254 for anything
  add_env AWS_ALLOW_HTTP true            # object_store refuses http:// endpoints otherwise
  add_env BURROW_TEST_S3_BUCKET "$S3_BUCKET"
  add_env BURROW_TEST_S3_BACKEND "$backend"
  add_env BURROW_TEST_S3_LOG "$log"
  add_env BURROW_TEST_S3_PIDFILE "$pidfile"
  [[ $backend == s3s-fs ]] && add_env BURROW_TEST_S3_ROOT "$data"
  return 0
}

# The command-line pattern of the recorded s3 backend's process.
s3_pattern() {
  if [[ -s $S3_DIR/backend && $(<"$S3_DIR/backend") == moto ]]; then echo moto.server; else echo s3s-fs; fi
}

s3_stop() {
  stop_pidfile "s3" "$S3_DIR/s3.pid" "$(s3_pattern)" 15
}

# ---------------------------------------------------------------- status

status_line() {
  case $1 in
    docker)
      if docker_ok; then
        if pid_from "$DOCKERD_PID" dockerd >/dev/null; then echo "docker: running (dockerd pid $(<"$DOCKERD_PID"), started by us)"; else echo "docker: running (not started by us)"; fi
      else echo "docker: not answering"; fi ;;
    ssh)
      local pid
      if pid=$(pid_from "$SSH_DIR/sshd.pid" sshd) && [[ -s $SSH_DIR/port ]]; then echo "ssh: running (sshd pid $pid, port $(<"$SSH_DIR/port"))"; else echo "ssh: not running"; fi ;;
    s3)
      local pid b=s3s-fs
      [[ -s $S3_DIR/backend ]] && b=$(<"$S3_DIR/backend")
      if pid=$(pid_from "$S3_DIR/s3.pid" "$(s3_pattern)") && [[ -s $S3_DIR/port ]]; then
        echo "s3: running ($b pid $pid, port $(<"$S3_DIR/port"))"
      else echo "s3: not running"; fi ;;
  esac
}

# ---------------------------------------------------------------- main

main() {
  local action=start
  case "${1:-}" in
    start | stop | status) action=$1; shift ;;
    -h | --help) sed -n '2,33p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; return 0 ;;
  esac
  local services=("$@") s
  ((${#services[@]})) || services=("${ALL_SERVICES[@]}")
  for s in "${services[@]}"; do
    case $s in
      docker | ssh | s3) ;;
      *) die "unknown service '$s' (known: ${ALL_SERVICES[*]}; actions: start stop status)" ;;
    esac
  done

  mkdir -p "$TARGET" "$STATE"
  exec 9>"$STATE/lock"
  flock -w 1200 9 || die "another services.sh run holds $STATE/lock for over 20 minutes"

  case $action in
    status)
      for s in "${services[@]}"; do status_line "$s"; done
      ;;
    stop)
      # Reverse order of start.
      for s in s3 ssh docker; do
        if [[ " ${services[*]} " == *" $s "* ]]; then
          "${s}_stop"
          rm -f "$STATE/$s.env"
        fi
      done
      assemble_env_file
      ;;
    start)
      # On any failure, no env file: tests must not run against half the services.
      trap 'rc=$?; if ((rc != 0)); then rm -f "$ENV_FILE" "$ENV_FILE.tmp.$$"; fi' EXIT
      # One apt-get run for everything missing; ripgrep is not needed by the
      # services, it is the benchmark anchor and wanted on the machine.
      local pkgs=(ripgrep)
      [[ " ${services[*]} " == *" docker "* ]] && pkgs+=(docker.io busybox-static)
      [[ " ${services[*]} " == *" ssh "* ]] && pkgs+=(openssh-server openssh-client)
      ensure_pkgs "${pkgs[@]}"
      for s in "${ALL_SERVICES[@]}"; do
        if [[ " ${services[*]} " == *" $s "* ]]; then
          rm -f "$STATE/$s.env"
          "svc_$s"
          save_fragment "$s"
        fi
      done
      assemble_env_file "${services[@]}"
      ;;
  esac
}

main "$@"
