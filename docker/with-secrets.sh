#!/bin/sh
# Entry of the hub's image: each secret file /run/secrets/NAME (or $SECRETS_DIR/NAME) becomes the variable NAME
# in upper case (so the config's ${ITSM_DB_PASSWORD} resolves), then the command runs. Secrets never sit in the
# compose file's environment.
set -eu
dir=${SECRETS_DIR:-/run/secrets}
if [ -d "$dir" ]; then
  for file in "$dir"/*; do
    [ -f "$file" ] || continue
    name=$(basename "$file" | tr 'a-z-' 'A-Z_')
    export "$name=$(cat "$file")"
  done
fi
exec "$@"
