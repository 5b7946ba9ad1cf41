#!/usr/bin/env bash
# Refresh the Vega, Vega-Lite and vega-embed builds inlined into `python -m pipeline report` (SPEC section 15).
# They are kept in the repo (pipeline/serve/vendor/) so that building or opening a report never needs the
# network. Run by hand when upgrading; needs npm. Vega-Lite's major version must match altair's
# (python -c "import altair; print(altair.SCHEMA_VERSION)").
set -euo pipefail
VEGA=${VEGA:-6.2.0} VEGA_LITE=${VEGA_LITE:-6.4.1} VEGA_EMBED=${VEGA_EMBED:-7.1.0}
cd "$(dirname "$0")/.."
out=pipeline/serve/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "vega@$VEGA" "vega-lite@$VEGA_LITE" "vega-embed@$VEGA_EMBED" >/dev/null)
for spec in "vega:$VEGA:vega.min.js" "vega-lite:$VEGA_LITE:vega-lite.min.js" "vega-embed:$VEGA_EMBED:vega-embed.min.js"; do
  IFS=: read -r name version file <<<"$spec"
  mkdir -p "$work/$name"
  tar xzf "$work/$name-$version.tgz" -C "$work/$name"
  cp "$work/$name/package/build/$file" "$out/$file"
  cp "$work/$name/package/LICENSE" "$out/LICENSE.$name"
done
printf 'vega %s\nvega-lite %s\nvega-embed %s\n' "$VEGA" "$VEGA_LITE" "$VEGA_EMBED" > "$out/VERSIONS"
echo "vendored into $out: $(tr '\n' ' ' < "$out/VERSIONS")"
