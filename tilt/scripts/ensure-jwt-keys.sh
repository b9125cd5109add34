#!/bin/sh
# Creates the Secret holding auth's JWT signing key in the development cluster, unless it exists.
#
#   ensure-jwt-keys.sh KUBE_CONTEXT NAMESPACE [SECRET]
#
# The Secret has one file, `<kid>.pem`: a PKCS#8 private key, Ed25519 like the keys
# `python -m auth keys ensure` writes, with the kid naming scheme of services/auth (k<UTC time>Z).
# The chart mounts it at JWT_KEYS_DIR (`secretMounts` in the auth chart). An existing Secret is
# kept, so tokens stay valid across `tilt up`s; delete it to get a fresh key:
#   kubectl --namespace fleet delete secret auth-jwt-keys
# OpenSSL builds without Ed25519 (LibreSSL before 3.7, as macOS ships) get an RSA-3072 key, which
# auth signs with RS256.
set -eu

if [ "$#" -lt 2 ]; then
    echo "usage: $0 KUBE_CONTEXT NAMESPACE [SECRET]" >&2
    exit 2
fi
context=$1
namespace=$2
secret=${3:-auth-jwt-keys}

kube() {
    kubectl --context "$context" --namespace "$namespace" "$@"
}

if kube get secret "$secret" >/dev/null 2>&1; then
    echo "secret/$secret exists: keeping its signing key"
    exit 0
fi

workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
kid=$(date -u +k%Y%m%dT%H%M%SZ)
key="$workdir/$kid.pem"
if ! openssl genpkey -algorithm ed25519 -out "$key" 2>/dev/null; then
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out "$key"
fi

kube create secret generic "$secret" --from-file="$kid.pem=$key"
kube label secret "$secret" app.kubernetes.io/part-of=fleet app.kubernetes.io/component=dev-infra
echo "secret/$secret created with signing key $kid"
