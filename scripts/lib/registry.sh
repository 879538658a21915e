# shellcheck shell=bash
# start_local_registry DIR: starts Debian's docker-registry on a free 127.0.0.1 port, storing under DIR, and sets
# REGISTRY (host:port) and REGISTRY_PID. Our own config: the packaged one listens on every interface.
start_local_registry() {
  local dir=$1
  mkdir -p "$dir"
  cat > "$dir/registry.yml" <<CONF
version: 0.1
log: { level: info, accesslog: { disabled: true } }
storage: { filesystem: { rootdirectory: $dir/data }, delete: { enabled: true } }
http: { addr: 127.0.0.1:0 }
CONF
  docker-registry serve "$dir/registry.yml" > "$dir/registry.log" 2>&1 &
  REGISTRY_PID=$!
  local port=
  for _ in $(seq 1 200); do
    port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$dir/registry.log" | head -1 | cut -d: -f2) && [ -n "$port" ] && break
    sleep 0.05
  done
  if [ -z "$port" ]; then
    echo "the local registry did not start:" >&2
    cat "$dir/registry.log" >&2
    return 1
  fi
  REGISTRY=127.0.0.1:$port
}
