#!/usr/bin/env bash
# Vendors the GraphiQL playground's browser builds into api/assets/graphiql/vendor/.
#
# Installs pinned npm packages into a temporary directory, checks that every package in
# the installed tree has a licence that allows redistribution, and copies the browser
# bundles unmodified together with their licence texts. The api embeds the copied files
# in its binary, so the playground works without internet access.
#
# Usage: scripts/vendor-graphiql.sh        (needs node and npm, and the npm registry)
# Change a version below, run the script, then run the api's browser test.
set -euo pipefail

GRAPHIQL_VERSION=3.9.0
REACT_VERSION=18.3.1
# graphiql 3.9.0 declares graphql as a peer dependency but bundles its own copy, together
# with the graphql-ws client, into graphiql.min.js. This pin only makes the install
# reproducible.
GRAPHQL_VERSION=16.15.0

# SPDX identifiers whose terms allow shipping the files with the api. Python-2.0 covers
# argparse, a command-line dependency of markdown-it that the browser bundle leaves out.
ALLOWED_LICENSES='^(MIT|ISC|0BSD|BSD-2-Clause|BSD-3-Clause|Apache-2.0|Python-2.0)$'

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="$repo_root/api/assets/graphiql/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "installing graphiql@$GRAPHIQL_VERSION and react@$REACT_VERSION into $work"
cd "$work"
npm init -y >/dev/null
npm install --save-exact --ignore-scripts --no-audit --no-fund \
  "graphiql@$GRAPHIQL_VERSION" \
  "react@$REACT_VERSION" \
  "react-dom@$REACT_VERSION" \
  "graphql@$GRAPHQL_VERSION" >/dev/null

# Lists "name<TAB>version<TAB>license<TAB>directory" for every installed package.
list_packages() {
  npm ls --all --parseable --omit=dev | tail -n +2 | sort -u | while read -r dir; do
    node -e '
      const dir = process.argv[1];
      const pkg = require(dir + "/package.json");
      const license = typeof pkg.license === "string" ? pkg.license : "UNKNOWN";
      console.log([pkg.name, pkg.version, license, dir].join("\t"));
    ' "$dir"
  done | sort -u
}
list_packages >packages.tsv

rejected="$(awk -F '\t' -v allowed="$ALLOWED_LICENSES" '$3 !~ allowed' packages.tsv)"
if [[ -n "$rejected" ]]; then
  echo "error: these packages have a licence that is not on the allow-list:" >&2
  echo "$rejected" >&2
  exit 1
fi

rm -rf "$target"
mkdir -p "$target/graphiql" "$target/react" "$target/react-dom"

modules="$work/node_modules"
cp "$modules/graphiql/graphiql.min.js" "$modules/graphiql/graphiql.min.css" \
  "$modules/graphiql/LICENSE" "$target/graphiql/"
cp "$modules/react/umd/react.production.min.js" "$modules/react/LICENSE" "$target/react/"
cp "$modules/react-dom/umd/react-dom.production.min.js" "$modules/react-dom/LICENSE" \
  "$target/react-dom/"

# The graphiql bundle contains code from its dependencies, so their licence texts ship
# too. The list covers graphiql's whole installed tree, a superset of what is bundled.
{
  echo "Licences of the npm packages installed with graphiql@$GRAPHIQL_VERSION."
  echo "graphiql.min.js bundles code from a subset of them; react and react-dom are"
  echo "loaded from their own files."
  while IFS=$'\t' read -r name version license dir; do
    echo
    echo "================================================================================"
    echo "$name@$version ($license)"
    echo "================================================================================"
    license_file="$(find "$dir" -maxdepth 1 -type f -iregex '.*/\(licen[cs]e\|copying\)[^/]*' |
      sort | head -n 1)"
    if [[ -n "$license_file" ]]; then
      cat "$license_file"
    else
      echo "The package ships no licence file; its package.json declares $license."
    fi
  done <packages.tsv
} >"$target/THIRD-PARTY-LICENSES"

{
  echo "# Written by scripts/vendor-graphiql.sh. Do not edit: change the pins there."
  echo "# package@version  file (SHA-256 of the unmodified copy)"
  for file in graphiql/graphiql.min.js graphiql/graphiql.min.css \
    react/react.production.min.js react-dom/react-dom.production.min.js; do
    package="${file%%/*}"
    version="$(node -p "require('$modules/$package/package.json').version")"
    checksum="$(sha256sum "$target/$file" | cut -d ' ' -f 1)"
    echo "$package@$version  $file  $checksum"
  done
} >"$target/VERSIONS"

echo "vendored into $target:"
cat "$target/VERSIONS"
