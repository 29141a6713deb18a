#!/usr/bin/env bash
# Rebuilds cnc/app/vendor/plotly-cnc.min.js: plotly.js (the version plotly.py ships) with only the
# trace types in cnc.app.plotly_bundle.TRACES, built with esbuild the way plotly.js builds its own
# dists (esbuild-config.js of the plotly.js package). Needs node and npm; run from the repository root
# after changing TRACES or upgrading plotly.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=cnc/app/vendor/plotly-cnc.min.js
VERSION=$(python -c "import plotly, pathlib, re; js = pathlib.Path(plotly.__file__).parent / 'package_data/plotly.min.js'; print(re.search(r'plotly\.js v([0-9.]+)', js.read_text()[:200]).group(1))")
TRACES=$(python -c "from cnc.app.plotly_bundle import TRACES; print(' '.join(TRACES))")
WORK="${TMPDIR:-/tmp}/cnc-plotly-bundle"  # a fixed path: the inlined CSS's id hashes it, so rebuilds are byte-identical
rm -rf "$WORK" && mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
npm init -y >/dev/null
npm install --no-audit --no-fund --ignore-scripts --silent "plotly.js@$VERSION" esbuild@0.28.1 esbuild-plugin-glsl@1.4.2 \
    esbuild-plugin-inline-css@0.0.1 esbuild-plugin-environment@0.5.0 stream-browserify@3.0.0 buffer@6.0.3
{
    echo "var Plotly = require('plotly.js/lib/core');"
    echo "Plotly.register(["
    for t in $TRACES; do [ "$t" = scatter ] || echo "    require('plotly.js/lib/$t'),"; done  # core holds scatter
    echo "]);"
    echo "module.exports = Plotly;"
} > entry.js
cat > build.js <<'JS'
const esbuild = require('esbuild');
const { environmentPlugin } = require('esbuild-plugin-environment');
const { glsl } = require('esbuild-plugin-glsl');
const InlineCSSPlugin = require('esbuild-plugin-inline-css');
esbuild.build({
    entryPoints: ['entry.js'], outfile: 'bundle.min.js', format: 'iife', globalName: 'Plotly', bundle: true,
    minify: true, sourcemap: false, legalComments: 'eof', logLevel: 'warning',
    plugins: [InlineCSSPlugin(), glsl({ minify: true }), environmentPlugin({ NODE_DEBUG: false })],
    alias: { regl: '@plotly/regl', stream: 'stream-browserify' },
    define: { global: 'window', 'define.amd': 'false' },
    target: 'es2016',
}).catch(() => process.exit(1));
JS
node build.js
{
    printf '/**\n* plotly.js v%s, partial bundle: %s\n' "$VERSION" "$TRACES"
    printf '* Copyright 2012-2026, Plotly, Inc.\n* All rights reserved.\n* Licensed under the MIT license\n'
    printf '* Built by scripts/build_plotly_bundle.sh of Compress and Compare; bundled licences at the end\n*/\n'
    cat bundle.min.js
} > "$ROOT/$OUT"
echo "$OUT: $(wc -c < "$ROOT/$OUT") bytes, traces: $TRACES"
