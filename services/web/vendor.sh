#!/usr/bin/env bash
# Refreshes static/vendor from the npm registry at the versions package.json pins, licences
# included. The files are committed: `make run` builds nothing and a closed network needs no CDN.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd -P)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
version() { python3 -c "import json,sys; print(json.load(open('$here/package.json'))['dependencies'][sys.argv[1]])" "$1"; }
unpack() { mkdir -p "$2" && tar xzf "$(npm pack --silent "$1@$(version "$1")")" -C "$2"; }
unpack htmx.org htmx
unpack @digital-go-jp/design-tokens tokens
unpack swagger-ui-dist swagger
cp htmx/package/dist/htmx.min.js htmx/package/LICENSE "$here/static/vendor/htmx/"
cp tokens/package/dist/tokens.css tokens/package/LICENSE "$here/static/vendor/design-tokens/"
cp swagger/package/{swagger-ui-bundle.js,swagger-ui.css,LICENSE,NOTICE,swagger-ui-bundle.js.LICENSE.txt} \
  "$here/../platform/swagger_ui/"
echo "vendored: htmx $(version htmx.org), design tokens $(version @digital-go-jp/design-tokens), swagger-ui $(version swagger-ui-dist)"
