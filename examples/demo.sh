#!/usr/bin/env bash
# examples/demo.sh WITPIPE_BIN: the main job on the bundled example site.
#
# Serves examples/site (a small photo journal: real photos with alt texts and
# figure captions, plus the noise of a real site: a logo and "Next" icons on
# every page, the same photo twice and near-duplicates of others, a broken
# and a missing image, a tracking pixel, a camera file name as alt text, and
# a robots.txt that keeps the members' page out) from a fixture server on
# 127.0.0.1, writes a pipeline config for it and runs it with `witpipe run`:
# crawl -> fetch -> [dedup] -> [encode] -> [filter] -> [balance] -> shard ->
# export -> [audit]; the stages in brackets run when this build has them
# (and encode and the model-based steps when a CLIP model is at hand). Then
# it prints where the shards, the export and the audit report are, and the
# funnel. Everything goes to ./demo-corpus (removed first). Network traffic
# stays on 127.0.0.1: crawl and fetch are told --allow-net 127.0.0.1/32.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(cd "$(dirname "${1:-build/witpipe}")" && pwd)/$(basename "${1:-build/witpipe}")
server="$(dirname "$bin")/fixture_server"
out="$root/demo-corpus"
[ -x "$server" ] || make -C "$root" "$(realpath --relative-to="$root" "$server")"

rm -rf "$out"
mkdir -p "$out"
coproc SERVER { exec "$server" "$root/examples/site"; }
trap 'kill $SERVER_PID 2>/dev/null || true' EXIT
read -r port <&"${SERVER[0]}"
echo "demo: example site on http://127.0.0.1:$port/"
echo "http://127.0.0.1:$port/" > "$out/seeds.txt"

has() { "$bin" "$1" --help >/dev/null 2>&1; }
# A CLIP model: $WITPIPE_MODEL, else the tiny reference checkpoint in
# ../shared (random weights: its scores only show the plumbing).
model="${WITPIPE_MODEL:-}"
if [ -z "$model" ] && [ -d "$root/../shared/golden/clip/hf_vit_quickgelu_f32/model" ]; then
    model="$root/../shared/golden/clip/hf_vit_quickgelu_f32/model"
fi

stages=()
stages+=("{\"stage\": \"crawl\", \"seeds\": \"$out/seeds.txt\", \"allow-net\": \"127.0.0.1/32\"}")
stages+=("{\"stage\": \"fetch\", \"allow-net\": \"127.0.0.1/32\", \"retries\": 0, \"image-size\": 256, \"resize-mode\": \"border\"}")
if has dedup; then stages+=('{"stage": "dedup", "exact": true, "near": true}'); fi
if [ -n "$model" ]; then
    stages+=("{\"stage\": \"encode\", \"model\": \"$model\", \"batch\": 8}")
else
    echo "demo: no CLIP model: encode and the model-based steps are skipped."
    echo "      Get one with: $bin model pull openai/clip-vit-base-patch32"
    echo "      and run again with WITPIPE_MODEL=<the folder it prints>."
fi
if has filter; then stages+=('{"stage": "filter", "min-words": 2}'); fi
if has balance && has queries; then
    printf 'cat\nrocket\ncoffee\nastronaut\nflag\nphoto\nMoon\n' > "$out/queries.txt"
    "$bin" init "$out/corpus" >/dev/null
    "$bin" -q -C "$out/corpus" queries import "$out/queries.txt"
    stages+=('{"stage": "balance", "t": 2, "keep-unmatched": true}')
fi
stages+=("{\"stage\": \"shard\", \"output\": \"$out/shards\", \"per-shard\": 5}")
stages+=("{\"stage\": \"export\", \"output\": \"$out/export.jsonl\", \"all\": true}")
if has audit; then stages+=("{\"stage\": \"audit\", \"output\": \"$out/audit\"}"); fi

{
    echo "{\"corpus\": \"$out/corpus\", \"stages\": ["
    for i in "${!stages[@]}"; do
        sep=","; [ "$i" -eq $((${#stages[@]} - 1)) ] && sep=""
        echo "  ${stages[$i]}$sep"
    done
    echo "]}"
} > "$out/pipeline.json"
echo "demo: the pipeline ($out/pipeline.json):"
cat "$out/pipeline.json"
echo
"$bin" run --dry-run "$out/pipeline.json"
echo
"$bin" run "$out/pipeline.json"
echo
"$bin" -C "$out/corpus" status
echo
echo "demo: shards in $out/shards:"
ls -l "$out/shards"
first=$(ls "$out/shards"/*.tar | head -1)
echo "demo: members of $(basename "$first"):"
tar -tvf "$first"
echo "demo: the per-sample list: $out/export.jsonl ($(wc -l < "$out/export.jsonl") pairs, kept and dropped)"
if [ -f "$out/audit/report.html" ]; then
    echo "demo: the audit report: $out/audit/report.html (datasheet: $out/audit/datasheet.md)"
fi
echo "demo: the funnel (pairs, and why the rest were left out):"
/usr/bin/python3 - "$out/export.jsonl" <<'EOF'
import collections, json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
# near:ID / semantic:ID name the group's keeper: count them by kind
why = collections.Counter((r["dropped_by"] or ("image " + (r["error_class"] or r["state"] or "?"))).split(":")[0]
                          for r in rows if not r["kept"])
print("  %4d candidate pairs" % len(rows))
for k, n in why.most_common():
    print("  %4d left out: %s" % (n, k))
print("  %4d in the shards" % sum(r["kept"] for r in rows))
EOF
