#!/usr/bin/env bash
# examples/demo.sh WITPIPE_BIN: the main job on the bundled demo.
#
# Serves examples/demo/images (real photos plus a few hostile cases) from a
# local fixture server on 127.0.0.1, then runs the pipeline a user runs on
# the web: init -> add (a URL+caption list) -> fetch -> encode (when the
# tiny reference CLIP checkpoints in ../shared are present) -> shard -> status.
# Everything goes to ./demo-corpus (removed first). Network traffic stays on
# 127.0.0.1: fetch is told --allow-net 127.0.0.1/32 and nothing else.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(cd "$(dirname "${1:-build/witpipe}")" && pwd)/$(basename "${1:-build/witpipe}")
server="$(dirname "$bin")/fixture_server"
out="$root/demo-corpus"
[ -x "$server" ] || make -C "$root" "$(realpath --relative-to="$root" "$server")"

rm -rf "$out"
mkdir -p "$out"
coproc SERVER { exec "$server" "$root/examples/demo/images"; }
trap 'kill $SERVER_PID 2>/dev/null || true' EXIT
read -r port <&"${SERVER[0]}"
echo "demo: fixture server on 127.0.0.1:$port"

# The URL list: the bundled captions with the server's address in front.
awk -F'\t' -v base="http://127.0.0.1:$port" 'NR == 1 { print "url\tcaption"; next }
    { print base $1 "\t" $2 }' "$root/examples/demo/captions.tsv" > "$out/list.tsv"

set -x
"$bin" init "$out/corpus"
"$bin" -C "$out/corpus" add "$out/list.tsv"
"$bin" -C "$out/corpus" fetch --allow-net 127.0.0.1/32 --image-size 256 --resize-mode border \
    --retries 0 --min-image-size 64
set +x
model="$root/../shared/golden/clip/hf_vit_quickgelu_f32/model"
if [ -d "$model" ]; then
    echo "demo: embedding with the tiny reference CLIP in ../shared (random weights)"
    "$bin" -C "$out/corpus" encode --model "$model" --batch 8
fi
set -x
"$bin" -C "$out/corpus" shard -o "$out/shards" --per-shard 5
"$bin" -C "$out/corpus" status
set +x
echo
echo "demo: shards in $out/shards:"
ls -l "$out/shards"
first=$(ls "$out/shards"/*.tar | head -1)
echo "demo: members of $(basename "$first"):"
tar -tvf "$first"
