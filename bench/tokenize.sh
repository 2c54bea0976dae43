#!/usr/bin/env bash
# Tokenizer speed on about $MB megabytes of text (the fixture corpora repeated; default 10):
# moeforge's tokenizers (Llama-2 from the GGUF fixture, GPT-2, Llama-3, Qwen2/3 from
# scripts/fetch-test-tokenizers.sh) next to a JavaScript reference from npm reading the same
# tokenizer.json files on the same text: @lenml/tokenizers, the tokenizers of transformers.js.
# The ids must be identical; the script prints MB/s for both and the speed ratio.
source "$(dirname "$0")/common.sh"
mb=${MB:-10}
assets=$root/build/test-assets
"$root/scripts/fetch-test-tokenizers.sh" "$assets" >/dev/null
cmake --build "$root/build" -j"$(nproc)" --target moeforge_bench_tokenize >/dev/null
ref=$work/tokenize-ref
out=$work/tokenize
mkdir -p "$ref" "$out"
if [ ! -d "$ref/node_modules/@lenml/tokenizers" ]; then
  echo "installing the JavaScript reference tokenizer (npm @lenml/tokenizers)" >&2
  (cd "$ref" && npm install --silent --no-audit --no-fund @lenml/tokenizers@3.7.2 >/dev/null)
fi
cat > "$ref/encode.js" <<'EOF'
// node encode.js DIR TOKENIZER_DIR NAME: encodes DIR/text.txt with TOKENIZER_DIR/tokenizer.json,
// writes DIR/NAME.ref.ids and prints {"seconds", "mb_per_s"}.
const fs = require('fs');
const { TokenizerLoader } = require('@lenml/tokenizers');
const [dir, tokdir, name] = process.argv.slice(2);
const read = (f) => JSON.parse(fs.readFileSync(tokdir + '/' + f, 'utf8'));
const tok = TokenizerLoader.fromPreTrained({ tokenizerJSON: read('tokenizer.json'), tokenizerConfig: read('tokenizer_config.json') });
const text = fs.readFileSync(dir + '/text.txt', 'utf8');
const t0 = process.hrtime.bigint();
const ids = tok.encode(text, { add_special_tokens: false });
const s = Number(process.hrtime.bigint() - t0) / 1e9;
fs.writeFileSync(dir + '/' + name + '.ref.ids', ids.join('\n'));
console.log(JSON.stringify({ seconds: s, mb_per_s: Buffer.byteLength(text) / 1e6 / s }));
EOF

names=(llama2-gguf gpt2 llama3 qwen)
echo "== moeforge, one core, $mb MB of text"
"$bin/moeforge_bench_tokenize" --corpora "$root/../shared/fixtures/corpora" --mb "$mb" --save "$out" \
  "$root/../shared/fixtures/models/tiny-random-llama-2.gguf" "$assets/gpt2" "$assets/llama3" "$assets/qwen" | tee "$out/moeforge.txt"

echo "== JavaScript reference (@lenml/tokenizers = transformers.js tokenizers) on the same text"
for i in 1 2 3; do
  name=${names[$i]}
  result=$(cd "$ref" && node encode.js "$out" "$assets/$name" "$name")
  ref_mbs=$(echo "$result" | sed 's/.*"mb_per_s":\([0-9.]*\).*/\1/')
  ours_mbs=$(awk -v n=$((i + 2)) 'NR == n { print $4 }' "$out/moeforge.txt")
  same=$(cmp -s "$out/$i.ids" "$out/$name.ref.ids" && echo "identical ids" || echo "IDS DIFFER")
  printf "%-8s reference %7.2f MB/s, moeforge %7.2f MB/s: %sx, %s\n" "$name" "$ref_mbs" "$ours_mbs" "$(ratio "$ours_mbs" "$ref_mbs")" "$same"
done
