#!/bin/sh
# Installs mizzen as a service, the way k3s's install.sh installs k3s:
#
#   curl -sfL https://HOST/install.sh | INSTALL_MIZZEN_DOWNLOAD_URL=https://HOST/v0.1.0 sh -
#   curl -sfL https://HOST/install.sh | MIZZEN_URL=https://SERVER:6443 MIZZEN_TOKEN=T sh -
#   INSTALL_MIZZEN_BINARY=./mizzen-arm64 sh install.sh server --tls-san pi.lan   # airgap
#
# It runs `mizzen server`, or `mizzen agent` when MIZZEN_URL is set, under
# systemd (or OpenRC where there is no systemd), and installs
# mizzen-uninstall.sh (mizzen-agent-uninstall.sh for an agent) beside the
# binary. Running it again upgrades in place. A failure before the service
# is started (download, checksum, arguments, a file that cannot be
# written) changes nothing: every file is staged beside its destination,
# then all are renamed over theirs.
#
# Environment:
#   INSTALL_MIZZEN_DOWNLOAD_URL  where scripts/build's dist/ is served: the
#                                binary is URL/mizzen-<arch>, checked against
#                                URL/sha256sum-mizzen.txt
#   INSTALL_MIZZEN_BINARY        a local binary to install instead (airgap)
#   INSTALL_MIZZEN_SHA256        the binary's expected sha256 (hex)
#   INSTALL_MIZZEN_SHA256_FILE   a sha256sum file with a line for mizzen-<arch>
#                                (or a single line) to check the binary against
#   INSTALL_MIZZEN_SKIP_DOWNLOAD=true  keep the binary already in the bin dir
#   INSTALL_MIZZEN_BIN_DIR       default /usr/local/bin
#   INSTALL_MIZZEN_SYSTEMD_DIR   default /etc/systemd/system
#   INSTALL_MIZZEN_EXEC          the command and flags, split at blanks:
#                                "server --disable-agent", "agent", or flags only;
#                                the script's arguments are appended
#   INSTALL_MIZZEN_SKIP_ENABLE=true  neither enable nor start the service
#   INSTALL_MIZZEN_SKIP_START=true   enable it but do not start it
#   INSTALL_MIZZEN_INIT          systemd or openrc (default: detected)
#   INSTALL_MIZZEN_ROOT          write every file under this directory and never
#                                enable, start or stop a service (for images/tests)
#   MIZZEN_*                     written to the service's env file (mode 0600):
#                                MIZZEN_URL and MIZZEN_TOKEN make it an agent
set -eu

info() { echo "[INFO]  $*"; }
warn() { echo "[WARN]  $*" >&2; }
fatal() {
	echo "[ERROR] $*" >&2
	exit 1
}

# sq quotes a value for sh: 'it'\''s'.
sq() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

# sdq quotes a value for a systemd ExecStart line.
sdq() { printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/\$/$$/g' -e 's/%/%%/g')"; }

# dqe escapes a value for the inside of sh's double quotes.
# shellcheck disable=SC2016 # sed's expression, not the shell's
dqe() { printf '%s' "$1" | sed 's/[\\"$`]/\\&/g'; }

# flag_value NAME ARGS... prints the value of --NAME in ARGS (the last one).
flag_value() {
	fv_name=$1
	shift
	fv_value=
	while [ "$#" -gt 0 ]; do
		case "$1" in
		--"$fv_name"=*) fv_value=${1#*=} ;;
		--"$fv_name")
			[ "$#" -lt 2 ] || fv_value=$2
			[ "$#" -lt 2 ] || shift
			;;
		esac
		shift
	done
	printf '%s' "$fv_value"
}

# setup_arch sets ARCH from uname.
setup_arch() {
	os=$(uname -s)
	[ "$os" = Linux ] || fatal "unsupported operating system $os: mizzen runs on Linux"
	machine=$(uname -m)
	case "$machine" in
	x86_64 | amd64) ARCH=amd64 ;;
	aarch64 | arm64) ARCH=arm64 ;;
	armv7* | armv8l) ARCH=arm ;;
	*) fatal "unsupported architecture $machine: mizzen is built for x86_64 (amd64), aarch64 (arm64) and armv7l (arm)" ;;
	esac
}

# setup_env reads the environment and arguments into the settings below.
setup_env() {
	ROOT=${INSTALL_MIZZEN_ROOT:-}
	R=
	if [ -n "$ROOT" ]; then
		[ -d "$ROOT" ] || fatal "INSTALL_MIZZEN_ROOT $ROOT is not a directory"
		# CDPATH would make cd print the directory too.
		R=$(CDPATH='' cd -- "$ROOT" && pwd -P)
		[ "$R" != / ] || R=
	elif [ "$(id -u)" != 0 ]; then
		fatal "run the installer as root (curl -sfL ... | sudo sh -), or set INSTALL_MIZZEN_ROOT to write the files under a directory"
	fi

	BIN_DIR=${INSTALL_MIZZEN_BIN_DIR:-/usr/local/bin}
	SYSTEMD_DIR=${INSTALL_MIZZEN_SYSTEMD_DIR:-/etc/systemd/system}
	for d in "$BIN_DIR" "$SYSTEMD_DIR"; do
		case "$d" in
		*[[:space:]]*) fatal "$d holds a blank, which a service file cannot" ;;
		/*) ;;
		*) fatal "$d is not an absolute path" ;;
		esac
	done

	case "${1:-}" in
	server | agent)
		CMD=$1
		shift
		;;
	-* | "")
		if [ -n "${MIZZEN_URL:-}" ]; then
			[ -n "${MIZZEN_TOKEN:-}${MIZZEN_TOKEN_FILE:-}" ] ||
				fatal "MIZZEN_URL is set, so this is an agent install, but MIZZEN_TOKEN (or MIZZEN_TOKEN_FILE) is not: set it to the server's token (DATA/server/token)"
			CMD=agent
		else
			CMD=server
		fi
		;;
	*) fatal "unknown command $1: INSTALL_MIZZEN_EXEC and the arguments start with server, agent or a flag" ;;
	esac
	ARGS_Q=
	ARGS_SD=
	for a in "$@"; do
		case "$a" in *"
"*) fatal "an argument holds a newline: $a" ;; esac
		ARGS_Q="$ARGS_Q $(sq "$a")"
		ARGS_SD="$ARGS_SD \\
	$(sdq "$a")"
	done

	if [ "$CMD" = server ]; then NAME=mizzen; else NAME=mizzen-agent; fi
	case "${INSTALL_MIZZEN_INIT:-}" in
	systemd | openrc) INIT=$INSTALL_MIZZEN_INIT ;;
	"")
		if [ -d "$R/run/systemd/system" ] && { [ -n "$ROOT" ] || command -v systemctl >/dev/null 2>&1; }; then
			INIT=systemd
		elif [ -x "$R/sbin/openrc-run" ]; then
			INIT=openrc
		else
			fatal "found neither systemd ($R/run/systemd/system) nor OpenRC ($R/sbin/openrc-run) to run mizzen; set INSTALL_MIZZEN_INIT=systemd or openrc"
		fi
		;;
	*) fatal "INSTALL_MIZZEN_INIT=$INSTALL_MIZZEN_INIT: not systemd or openrc" ;;
	esac

	BIN=$BIN_DIR/mizzen
	UNINSTALL=$BIN_DIR/$NAME-uninstall.sh
	if [ "$INIT" = systemd ]; then
		SERVICE_FILE=$SYSTEMD_DIR/$NAME.service
		ENV_FILE=$SYSTEMD_DIR/$NAME.service.env
	else
		SERVICE_FILE=/etc/init.d/$NAME
		ENV_FILE=/etc/mizzen/$NAME.env
	fi

	# What the uninstaller removes besides the files written here.
	DATA_DIR=$(flag_value data-dir "$@")
	DATA_DIR=${DATA_DIR:-${MIZZEN_DATA_DIR:-/var/lib/mizzen}}
	NODE_NAME=$(flag_value node-name "$@")
	NODE_NAME=${NODE_NAME:-${MIZZEN_NODE_NAME:-}}
	KUBECONFIG_FILE=$(flag_value write-kubeconfig "$@")
	KUBECONFIG_FILE=${KUBECONFIG_FILE:-${MIZZEN_WRITE_KUBECONFIG:-}}
	DOCKER=$(flag_value docker-host "$@")
	# Not the installer's DOCKER_HOST: the service does not get it.
	DOCKER=${DOCKER:-${MIZZEN_DOCKER_HOST:-}}
}

# sha256 prints a file's sha256.
sha256() {
	if command -v sha256sum >/dev/null 2>&1; then
		sha256sum "$1" | cut -d ' ' -f 1
	elif command -v shasum >/dev/null 2>&1; then
		shasum -a 256 "$1" | cut -d ' ' -f 1
	else
		fatal "found neither sha256sum nor shasum to check the binary"
	fi
}

download() {
	info "Downloading $1"
	if command -v curl >/dev/null 2>&1; then
		curl -fsSL -o "$2" "$1" || fatal "download of $1 failed"
	elif command -v wget >/dev/null 2>&1; then
		wget -qO "$2" "$1" || fatal "download of $1 failed"
	else
		fatal "found neither curl nor wget to download $1"
	fi
}

# obtain_binary puts the binary in $TMP/mizzen and checks it, or sets
# NEW_BINARY= when the installed one is kept.
obtain_binary() {
	NEW_BINARY=$TMP/mizzen
	sums=${INSTALL_MIZZEN_SHA256_FILE:-}
	if [ "${INSTALL_MIZZEN_SKIP_DOWNLOAD:-}" = true ]; then
		[ -x "$R$BIN" ] || fatal "INSTALL_MIZZEN_SKIP_DOWNLOAD=true but there is no executable $R$BIN"
		NEW_BINARY=
		return
	elif [ -n "${INSTALL_MIZZEN_BINARY:-}" ]; then
		[ -f "$INSTALL_MIZZEN_BINARY" ] || fatal "INSTALL_MIZZEN_BINARY $INSTALL_MIZZEN_BINARY is not a file"
		cp "$INSTALL_MIZZEN_BINARY" "$NEW_BINARY"
	elif [ -n "${INSTALL_MIZZEN_DOWNLOAD_URL:-}" ]; then
		url=${INSTALL_MIZZEN_DOWNLOAD_URL%/}
		download "$url/mizzen-$ARCH" "$NEW_BINARY"
		if [ -z "${INSTALL_MIZZEN_SHA256:-}" ] && [ -z "$sums" ]; then
			sums=$TMP/sha256sum-mizzen.txt
			download "$url/sha256sum-mizzen.txt" "$sums"
		fi
	else
		fatal "no binary to install: set INSTALL_MIZZEN_DOWNLOAD_URL (where scripts/build's dist/ is served) or INSTALL_MIZZEN_BINARY (a local file)"
	fi
	[ -s "$NEW_BINARY" ] || fatal "the binary is empty"

	want=${INSTALL_MIZZEN_SHA256:-}
	if [ -z "$want" ] && [ -n "$sums" ]; then
		[ -f "$sums" ] || fatal "checksum file $sums is missing"
		want=$(awk -v f="mizzen-$ARCH" '$2 == f || $2 == "*" f { print $1; exit }' "$sums")
		if [ -z "$want" ] && [ "$(grep -c . "$sums")" = 1 ]; then
			want=$(awk '{ print $1; exit }' "$sums")
		fi
		[ -n "$want" ] || fatal "checksum file $sums has no line for mizzen-$ARCH"
	fi
	if [ -n "$want" ]; then
		got=$(sha256 "$NEW_BINARY")
		[ "$got" = "$(echo "$want" | tr 'A-F' 'a-f')" ] ||
			fatal "checksum mismatch for the mizzen-$ARCH binary: expected $want, got $got; nothing was installed"
		info "Checksum of mizzen-$ARCH verified"
	else
		warn "no checksum given (INSTALL_MIZZEN_SHA256 or INSTALL_MIZZEN_SHA256_FILE): the binary is not verified"
	fi
	chmod 0755 "$NEW_BINARY"
}

# write_env_file writes every MIZZEN_* variable of the environment.
write_env_file() {
	umask 077
	: >"$TMP/env"
	for name in $(env | sed -n 's/^\(MIZZEN_[A-Za-z0-9_]*\)=.*/\1/p' | sort -u); do
		value=
		eval "value=\${$name}"
		case "$value" in *"
"*) fatal "$name holds a newline, which an env file cannot" ;; esac
		# Double quotes: systemd's EnvironmentFile= and sh read \\ \" \$ \` alike
		# (systemd takes '…'\''…' apart differently from sh).
		printf '%s="%s"\n' "$name" "$(dqe "$value")" >>"$TMP/env"
	done
	umask 022
}

write_systemd_unit() {
	if [ "$CMD" = server ]; then what="server"; else what="agent"; fi
	cat >"$TMP/service" <<EOF
[Unit]
Description=mizzen $what: lightweight Kubernetes
Documentation=https://github.com/mizzen-dev/mizzen
Wants=network-online.target
After=network-online.target docker.service

[Install]
WantedBy=multi-user.target

[Service]
Type=simple
EnvironmentFile=-$ENV_FILE
KillMode=process
Delegate=yes
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
TimeoutStartSec=0
Restart=always
RestartSec=5s
ExecStartPre=-/sbin/modprobe br_netfilter
ExecStartPre=-/sbin/modprobe overlay
ExecStart=$BIN \\
	$CMD$ARGS_SD
EOF
}

write_openrc_script() {
	cat >"$TMP/service" <<EOF
#!/sbin/openrc-run
# mizzen $CMD, installed by mizzen's install.sh.

depend() {
	need net
	after network-online docker
	want cgroups
}

supervisor=supervise-daemon
name=$NAME
command=$(sq "$BIN")
command_args="$(dqe "$(sq "$CMD")$ARGS_Q")"
output_log=/var/log/$NAME.log
error_log=/var/log/$NAME.log
pidfile=/var/run/$NAME.pid
respawn_delay=5
respawn_max=0
rc_ulimit="-n 1048576"

set -a
if [ -f $(sq "$ENV_FILE") ]; then . $(sq "$ENV_FILE"); fi
set +a
EOF
}

# write_uninstall writes the uninstall script: its settings, then its body.
write_uninstall() {
	cat >"$TMP/uninstall" <<EOF
#!/bin/sh
# Uninstalls the $NAME service as install.sh installed it: stops it,
# removes mizzen's Docker containers, its pod network and Service rules
# (mizzen agent --cleanup), its data dir, /etc/mizzen, the service files,
# the binary and this script. Docker and everything else stay as they are.
# MIZZEN_DATA_DIR and MIZZEN_NODE_NAME override the data dir and the node
# whose containers go (default: every container labelled io.mizzen.node).
set -u
ROOT=$(sq "$R")
NAME=$(sq "$NAME")
INIT=$(sq "$INIT")
BIN=$(sq "$BIN")
SELF=$(sq "$UNINSTALL")
SERVICE_FILE=$(sq "$SERVICE_FILE")
ENV_FILE=$(sq "$ENV_FILE")
SYSTEMD_DIR=$(sq "$SYSTEMD_DIR")
DATA_DIR=$(sq "$DATA_DIR")
NODE_NAME=$(sq "$NODE_NAME")
KUBECONFIG_FILE=$(sq "$KUBECONFIG_FILE")
DOCKER=$(sq "$DOCKER")
EOF
	cat >>"$TMP/uninstall" <<'EOF'

DATA_DIR=${MIZZEN_DATA_DIR:-$ROOT$DATA_DIR}
NODE_NAME=${MIZZEN_NODE_NAME:-$NODE_NAME}
# Without trailing slashes, to match the mounts below it.
while :; do
	case "$DATA_DIR" in
	?*/) DATA_DIR=${DATA_DIR%/} ;;
	*) break ;;
	esac
done
case "$DATA_DIR" in
/?*) ;;
*)
	echo "[ERROR] the data dir '$DATA_DIR' is not an absolute path below /: set MIZZEN_DATA_DIR" >&2
	exit 1
	;;
esac
info() { echo "[INFO]  $*"; }
# fail stops before the data, the binary and this script go, so that the
# uninstall can run again once the problem is fixed.
fail() {
	echo "[ERROR] $*" >&2
	echo "[ERROR] stopped there, keeping $ROOT$BIN and this script: fix that and run $ROOT$SELF again" >&2
	exit 1
}

[ "$(id -u)" = 0 ] || { echo "[ERROR] run $0 as root" >&2; exit 1; }

# A service is never stopped for files installed under a root.
if [ -z "$ROOT" ]; then
	if [ "$INIT" = systemd ] && command -v systemctl >/dev/null 2>&1; then
		systemctl disable --now "$NAME" >/dev/null 2>&1 || true
		systemctl reset-failed "$NAME" >/dev/null 2>&1 || true
	elif [ "$INIT" = openrc ] && command -v rc-service >/dev/null 2>&1; then
		rc-service "$NAME" stop >/dev/null 2>&1 || true
		rc-update del "$NAME" default >/dev/null 2>&1 || true
	fi
fi
rm -f "$ROOT$SERVICE_FILE" "$ROOT$ENV_FILE"
[ "$INIT" != openrc ] || rm -f "$ROOT/var/log/$NAME.log"
if [ -z "$ROOT" ] && [ "$INIT" = systemd ] && command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
info "Removed the $NAME service"

# A server and an agent installed side by side share the rest.
for other in "$ROOT$SYSTEMD_DIR"/mizzen*.service "$ROOT"/etc/init.d/mizzen*; do
	if [ -e "$other" ]; then
		info "$other is still installed: keeping the binary, containers and data"
		rm -f "$ROOT$SELF"
		exit 0
	fi
done

if command -v docker >/dev/null 2>&1; then
	[ -z "$DOCKER" ] || export DOCKER_HOST="$DOCKER"
	if ids=$(docker ps -aq --filter "label=io.mizzen.node${NODE_NAME:+=$NODE_NAME}"); then
		if [ -n "$ids" ]; then
			# shellcheck disable=SC2086 # one ID a word
			docker rm -f -v $ids >/dev/null || fail "could not remove mizzen's containers: $ids"
		fi
		info "Removed mizzen's containers"
	else
		fail "could not list mizzen's containers (is Docker running${DOCKER:+ at $DOCKER}?)"
	fi
else
	echo "[WARN]  no docker command: containers labelled io.mizzen.node were not removed" >&2
fi

# Pod volumes are mounted under the data dir: unmount them, deepest first.
d="$DATA_DIR/" awk 'index($2, ENVIRON["d"]) == 1 { print $2 }' /proc/self/mounts 2>/dev/null | sort -r |
	while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done

if [ -x "$ROOT$BIN" ]; then
	"$ROOT$BIN" agent --cleanup --data-dir "$DATA_DIR" || fail "mizzen agent --cleanup failed"
else
	# Not a reason to stop: with the binary gone, a second run could not do better.
	echo "[ERROR] $ROOT$BIN is missing: mizzen's network stays (remove it with mizzen agent --cleanup)" >&2
	rc=1
fi

rm -rf "$DATA_DIR" "$ROOT/etc/mizzen" || fail "could not remove $DATA_DIR or $ROOT/etc/mizzen"
[ -z "$KUBECONFIG_FILE" ] || rm -f "$ROOT$KUBECONFIG_FILE"
rm -f "$ROOT$BIN" "$ROOT$SELF"
info "Removed mizzen's data, configuration and binary"
exit "${rc:-0}"
EOF
}

# stage copies a file beside its destination, with its mode, as
# DEST.mizzen-new; commit then renames every staged file over its
# destination. A file that cannot be staged unstages the others: nothing
# changes.
STAGED=
stage() {
	STAGED="$STAGED $2"
	if ! { mkdir -p "$(dirname "$R$2")" && rm -f "$R$2.mizzen-new" && cp "$1" "$R$2.mizzen-new" && chmod "$3" "$R$2.mizzen-new"; }; then
		unstage
		fatal "could not write $R$2: nothing was installed"
	fi
}

unstage() {
	set -f
	for f in $STAGED; do rm -f "$R$f.mizzen-new"; done
	set +f
}

commit() {
	set -f
	for f in $STAGED; do mv -f "$R$f.mizzen-new" "$R$f"; done
	set +f
	STAGED=
}

services() {
	if [ -n "$ROOT" ]; then
		info "INSTALL_MIZZEN_ROOT is set: not enabling or starting $NAME"
		return
	fi
	if [ "$INIT" = systemd ]; then
		systemctl daemon-reload
	fi
	# As INSTALL_K3S_SKIP_ENABLE: neither enabled nor started.
	if [ "${INSTALL_MIZZEN_SKIP_ENABLE:-}" = true ]; then
		info "INSTALL_MIZZEN_SKIP_ENABLE=true: not enabling or starting $NAME"
		return
	fi
	info "Enabling $NAME"
	if [ "$INIT" = systemd ]; then
		systemctl enable "$NAME" >/dev/null 2>&1 || fatal "systemctl enable $NAME failed"
		[ "${INSTALL_MIZZEN_SKIP_START:-}" = true ] || { info "Starting $NAME"; systemctl restart "$NAME"; }
	else
		rc-update add "$NAME" default >/dev/null
		[ "${INSTALL_MIZZEN_SKIP_START:-}" = true ] || { info "Starting $NAME"; rc-service "$NAME" restart; }
	fi
}

main() {
	set -f
	# shellcheck disable=SC2086 # INSTALL_MIZZEN_EXEC is split at blanks, as INSTALL_K3S_EXEC is
	set -- ${INSTALL_MIZZEN_EXEC:-} "$@"
	set +f
	setup_arch
	setup_env "$@"

	TMP=$(mktemp -d "${TMPDIR:-/tmp}/mizzen-install.XXXXXX")
	trap 'unstage; rm -rf "$TMP"' EXIT
	trap 'exit 130' INT TERM
	obtain_binary
	write_env_file
	if [ "$INIT" = systemd ]; then write_systemd_unit; else write_openrc_script; fi
	write_uninstall

	# Everything is checked: only now is anything written.
	if [ -n "$NEW_BINARY" ]; then
		info "Installing mizzen ($ARCH) to $R$BIN"
		stage "$NEW_BINARY" "$BIN" 0755
	fi
	stage "$TMP/uninstall" "$UNINSTALL" 0755
	stage "$TMP/env" "$ENV_FILE" 0600
	if [ "$INIT" = systemd ]; then
		stage "$TMP/service" "$SERVICE_FILE" 0644
	else
		stage "$TMP/service" "$SERVICE_FILE" 0755
	fi
	commit
	info "Installed $R$SERVICE_FILE ($CMD), its env file $R$ENV_FILE and $R$UNINSTALL"
	services
}

main "$@"
