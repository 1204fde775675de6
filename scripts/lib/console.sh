# Shell helpers shared by scripts/bench and scripts/fuzz-api: start keyward on loopback, sign an
# administrator in with a cookie jar as a browser would, and make an access key in the console.
# Source it; it defines functions only.

# free_port: prints an unused TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_healthy BASE_URL: waits up to 10 s for /healthz.
wait_healthy() {
  for _ in $(seq 100); do
    curl -fs "$1/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "keyward did not come up at $1" >&2
  return 1
}

# console_sign_in BASE_URL JAR EMAIL PASSWORD: signs in; the session cookie lands in JAR.
console_sign_in() {
  local base=$1 jar=$2 token
  token=$(curl -fs -c "$jar" -b "$jar" "$base/login" | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' | head -n1)
  curl -fs -o /dev/null -c "$jar" -b "$jar" --data-urlencode "csrf_token=$token" \
    --data-urlencode "email=$3" --data-urlencode "password=$4" "$base/login"
}

# console_make_key BASE_URL JAR NAME [personal]: creates a tenant access key in the
# Administrators group through the Add key form (with "personal": one of the signed-in user's
# own keys, on My keys) and prints "<key ID> <secret>".
console_make_key() {
  local base=$1 jar=$2 name=$3 list=/user-access/keys token page
  local fields=(--data-urlencode "groups=grp_administrators")
  if [ "${4:-}" = personal ]; then
    list=/my/keys
    fields=(--data-urlencode "custom_date=")
  fi
  token=$(curl -fs -c "$jar" -b "$jar" "$base$list/new" | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' | head -n1)
  page=$(curl -fs -c "$jar" -b "$jar" --data-urlencode "csrf_token=$token" --data-urlencode "name=$name" \
    --data-urlencode "key_type=access" --data-urlencode "validity=30" "${fields[@]}" \
    "$base$list")
  printf '%s' "$page" | python3 -c '
import re, sys
page = sys.stdin.read()
key = re.search(r"id=\"access-key\"[^>]*value=\"([A-Z0-9]+)\"", page).group(1)
secret = re.search(r"id=\"secret-key\"[^>]*value=\"(kws_[0-9A-Za-z]+)\"", page).group(1)
print(key, secret)'
}
