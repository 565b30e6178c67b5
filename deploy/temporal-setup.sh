#!/bin/sh
# One-shot setup of the Temporal cluster for orderflow: waits until the frontend serves and the
# namespace exists, then registers the custom search attributes that the order workflows set.
#
# Idempotent: an attribute that is already registered is left as it is ("already exists" is not
# an error), so this runs on every `docker compose up`. It ends by checking that each attribute
# is listed with the right type, and exits non-zero otherwise, so nothing that depends on it
# starts against a cluster that would reject orders.
#
# Environment:
#   TEMPORAL_ADDRESS                frontend host:port (default temporal:7233)
#   TEMPORAL_NAMESPACE              namespace to register the attributes in (default: default)
#   TEMPORAL_SETUP_TIMEOUT_SECONDS  how long to wait for the cluster (default 300)
# A cluster behind mTLS is reached through the temporal CLI's own variables
# (TEMPORAL_TLS_CERT, TEMPORAL_TLS_KEY, TEMPORAL_TLS_CA, TEMPORAL_TLS_SERVER_NAME).
set -eu

address="${TEMPORAL_ADDRESS:-temporal:7233}"
namespace="${TEMPORAL_NAMESPACE:-default}"
timeout="${TEMPORAL_SETUP_TIMEOUT_SECONDS:-300}"

# name:type of every custom search attribute orderflow sets on its workflows.
SEARCH_ATTRIBUTES="
OrderStatus:Keyword
CustomerId:Keyword
Channel:Keyword
Skus:KeywordList
OrderTotal:Double
ParentOrder:Keyword
CustomerName:Keyword
CustomerEmail:Keyword
CustomerPhone:Keyword
"

log() {
    echo "temporal-setup: $*"
}

deadline=$(($(date +%s) + timeout))

# wait_for WHAT COMMAND...: runs COMMAND until it succeeds, or fails once the deadline passes.
wait_for() {
    what="$1"
    shift
    until "$@" >/dev/null 2>&1; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            log "gave up waiting for $what after ${timeout}s" >&2
            exit 1
        fi
        log "waiting for $what"
        sleep 2
    done
}

cluster_serving() {
    temporal operator cluster health --address "$address" | grep -q SERVING
}

namespace_exists() {
    temporal operator namespace describe --address "$address" --namespace "$namespace"
}

# The search-attribute API needs the namespace in the frontend's cache, not only in the database.
search_attributes_listable() {
    temporal operator search-attribute list --address "$address" --namespace "$namespace"
}

register() {
    name="$1"
    type="$2"
    if output=$(temporal operator search-attribute create --address "$address" \
        --namespace "$namespace" --name "$name" --type "$type" 2>&1); then
        log "registered $name ($type)"
    elif printf '%s\n' "$output" | grep -qi "already exists"; then
        log "$name is already registered"
    else
        printf '%s\n' "$output" >&2
        log "could not register $name ($type)" >&2
        exit 1
    fi
}

wait_for "the Temporal frontend at $address" cluster_serving
wait_for "namespace $namespace" namespace_exists
wait_for "search attributes of namespace $namespace" search_attributes_listable

for entry in $SEARCH_ATTRIBUTES; do
    register "${entry%%:*}" "${entry#*:}"
done

listing=$(temporal operator search-attribute list --address "$address" --namespace "$namespace")
missing=0
for entry in $SEARCH_ATTRIBUTES; do
    name="${entry%%:*}"
    type="${entry#*:}"
    if ! printf '%s\n' "$listing" | grep -Eq "^[[:space:]]*$name[[:space:]]+$type[[:space:]]*\$"; then
        log "$name is not listed with type $type in namespace $namespace" >&2
        missing=1
    fi
done
if [ "$missing" -ne 0 ]; then
    printf '%s\n' "$listing" >&2
    exit 1
fi
log "namespace $namespace has all orderflow search attributes"
