#!/usr/bin/env bash
# Datasets with an Axolotl `type` (alpaca, chat_template) end to end: axoc
# resolves the tokenizer and template, axorun tokenizes and trains, `axoc
# preprocess` shows and writes the same samples (training on its output is
# the same run bit for bit), and bad configs or rows fail with clear errors.
# usage: datasets.sh AXOC AXORUN SOURCE_DIR
set -uo pipefail
AXOC=$1 AXORUN=$2 SRC=$3
. "$SRC/tests/e2e/lib/harness.sh"
cd "$T" || exit 1
EX="$SRC/configs/examples"
M="$SRC/configs/models/tiny-llama-chat"
D="$SRC/configs/data"

# 1. the two examples compile and train; the loss falls
for c in alpaca chat_template; do
  check '"$AXOC" compile "$EX/$c.yml" -o $c.bin 2>$c.cerr' "compile $c.yml"
  check '"$AXORUN" $c.bin --max-steps 20 --output-dir out-$c >$c.out 2>$c.err' "train $c.yml"
  check 'grep -q "dataset .*: 600 samples, .* of them labels" $c.out' "$c: a line per dataset"
  first=$(grep -m1 '"loss"' out-$c/train_log.jsonl | sed 's/.*"loss": *\([0-9.e+-]*\).*/\1/')
  last=$(grep '"loss"' out-$c/train_log.jsonl | tail -1 | sed 's/.*"loss": *\([0-9.e+-]*\).*/\1/')
  check 'awk -v a="$first" -v b="$last" "BEGIN{exit !(b < a - 0.2)}"' "$c: loss falls ($first -> $last)"
done
check 'grep -q "(chat_template llama3)" chat_template.out' "the template is named"
check '"$AXOC" dump chat_template.bin >dump.txt && grep -q "attr io.tokenizer = " dump.txt' "dump shows the tokenizer record"

# 2. preprocess: shows samples, writes them; training on them is the same run
check '"$AXOC" preprocess "$EX/chat_template.yml" -n 2 -o pre.jsonl >pre.out 2>pre.err' "preprocess"
check 'grep -q "^sample 1: <|begin_of_text|>(-100, 700)" pre.out' "preprocess shows tokens with labels"
check 'grep -q "<|eot_id|>(704, 704)" pre.out' "the assistant's end of turn is a label"
check 'test "$(wc -l <pre.jsonl)" = 600' "preprocess writes every sample"
check '! "$AXOC" preprocess "$EX/chat_template.yml" -o pre.jsonl >/dev/null 2>pre2.err && grep -q "pass --overwrite" pre2.err' \
  "preprocess keeps an existing file"
sed -e "s#^base_model: .*#base_model: $M#" -e "s#path: ../data/toy_chat.jsonl#path: $T/pre.jsonl#" \
    -e '/type: chat_template/,/train_on_eos: turn/d' -e '/^chat_template:/d' "$EX/chat_template.yml" >pre.yml
check '"$AXOC" compile pre.yml -o pre.bin 2>pre.cerr && "$AXORUN" pre.bin --max-steps 20 --output-dir out-pre >/dev/null 2>&1' \
  "train on the preprocessed file"
check 'cmp -s <(grep -o "\"loss\": *[0-9.e+-]*" out-pre/train_log.jsonl) <(grep -o "\"loss\": *[0-9.e+-]*" out-chat_template/train_log.jsonl)' \
  "preprocessed = tokenized at run time, bit for bit"

# 3. settings reach the plan: train_on_inputs makes another plan
sed 's/^train_on_inputs: false/train_on_inputs: true/' "$EX/alpaca.yml" | sed "s#\.\./#$SRC/configs/#g" >inputs.yml
check '"$AXOC" compile inputs.yml -o inputs.bin 2>/dev/null && ! cmp -s inputs.bin alpaca.bin' "train_on_inputs changes the plan"
check '"$AXORUN" inputs.bin --max-steps 1 --output-dir out-inputs >inputs.out 2>&1' "train_on_inputs trains"
n1=$(sed -n 's/.*, \([0-9]*\) of them labels.*/\1/p' alpaca.out) n2=$(sed -n 's/.*, \([0-9]*\) of them labels.*/\1/p' inputs.out)
check 'test "$n2" -gt "$n1"' "train_on_inputs labels the prompt too ($n1 -> $n2)"

# 4. dataset_prepared_path: tokenized once, then read back; a damaged entry is rebuilt
sed "s#\.\./#$SRC/configs/#g" "$EX/chat_template.yml" >prep.yml
echo "dataset_prepared_path: $T/prepared" >>prep.yml
check '"$AXOC" compile prep.yml -o prep.bin 2>/dev/null' "compile with dataset_prepared_path"
check '"$AXORUN" prep.bin --max-steps 20 --output-dir out-p1 >p1.out 2>&1 && grep -q "; kept in $T/prepared/.*\.axods)" p1.out' \
  "the first run keeps the tokenized samples"
check '"$AXORUN" prep.bin --max-steps 20 --output-dir out-p2 >p2.out 2>&1 && grep -q "; from $T/prepared/.*\.axods)" p2.out' \
  "the second run reads them"
check 'cmp -s <(grep -o "\"loss\": *[0-9.e+-]*" out-p2/train_log.jsonl) <(grep -o "\"loss\": *[0-9.e+-]*" out-chat_template/train_log.jsonl)' \
  "read back = tokenized, bit for bit"
entry=$(ls prepared/*.axods | head -1)
printf 'x' | dd of="$entry" bs=1 seek=100 conv=notrunc 2>/dev/null
check '"$AXORUN" prep.bin --max-steps 20 --output-dir out-p3 >p3.out 2>&1 && grep -q "; kept in" p3.out' "a damaged entry is rebuilt"
check 'cmp -s <(grep -o "\"loss\": *[0-9.e+-]*" out-p3/train_log.jsonl) <(grep -o "\"loss\": *[0-9.e+-]*" out-chat_template/train_log.jsonl)' \
  "and trains the same"
sed 's/^train_on_eos: turn/train_on_eos: all/; s/    train_on_eos: turn/    train_on_eos: all/' prep.yml >prep2.yml
check '"$AXOC" preprocess prep2.yml -n 0 >pp.out 2>&1 && test "$(ls prepared/*.axods | wc -l)" = 2' \
  "another format is another entry (axoc preprocess fills the cache too)"

# 5. errors name the file and key
cfg() { printf 'base_model: %s\nsequence_len: 64\nmicro_batch_size: 1\nmax_steps: 1\ndatasets:\n%s\n%s' "$M" "$1" "${2:-}" >"$3"; }
cfg "  - path: $D/toy_chat.jsonl
    type: chat_template" "" e1.yml
check '! "$AXOC" compile e1.yml -o e1.bin 2>e1.err && grep -q "chat_template: tokenizer_default, but .*tokenizer_config.json has no chat_template" e1.err' \
  "no template to use"
# Axolotl's check of the turn terminator: gemma's template never writes the eos (<|eot_id|> here), chatml's
# <|im_end|> is no eos here either: the terminator would never be trained; llama3's writes it
cfg "  - path: $D/toy_chat.jsonl
    type: chat_template
    chat_template: gemma" "" w1.yml
check '"$AXOC" compile w1.yml -o w1.bin 2>w1.err && grep -q "EOS token .<|eot_id|>. not found in the chat template; the turn terminator won.t be trained" w1.err' \
  "a template without the eos is warned about, as Axolotl warns"
cfg "  - path: $D/toy_chat.jsonl
    type: chat_template
    chat_template: llama3" "eot_tokens: [\"<|eot_id|>\", \"<|end_of_text|>\"]" w2.yml
check '"$AXOC" compile w2.yml -o w2.bin 2>w2.err && grep -q "EOT token .<|end_of_text|>. not found in the chat template" w2.err && ! grep -q "<|eot_id|>. not found" w2.err' \
  "an eot_tokens entry the template never writes is warned about, one it writes is not"
cfg "  - path: $D/toy_chat.jsonl
    type: chat_template
    chat_template: llama3" "" w3.yml
check '"$AXOC" compile w3.yml -o w3.bin 2>w3.err && ! grep -q "not found in the chat template" w3.err' "llama3 writes its eos: no warning"
cfg "  - path: $D/toy_chat.jsonl
    type: chat_template
    chat_template: mistral_v1" "" e2.yml
check '! "$AXOC" compile e2.yml -o e2.bin 2>e2.err && grep -q "datasets\[0\].chat_template: chat template \"mistral_v1\" is not implemented" e2.err' \
  "an unknown template"
cfg "  - path: $D/toy_alpaca.jsonl
    type: alpaca" "special_tokens:
  eos_token: <|im_end|>
" e3.yml
check '"$AXOC" compile e3.yml -o e3.bin 2>e3.err && "$AXOC" preprocess e3.yml -n 1 >e3.pre 2>/dev/null && grep -qF "<|im_end|>(705, 705)" e3.pre' \
  "an eos_token the tokenizer lacks is added (id 705, as Axolotl adds it) and ends the samples"
cfg "  - path: $D/toy_alpaca.jsonl
    type: alpaca" "tokenizer_config: $SRC/configs/models/tiny-llama
" e4.yml
check '! "$AXOC" compile e4.yml -o e4.bin 2>e4.err && grep -q "tiny-llama has no tokenizer.json" e4.err' "no tokenizer.json"
cfg "  - path: $D/toy_alpaca.jsonl
    type: alpaca" "" e5.yml
sed -i "s#^base_model: .*#base_model: $SRC/configs/models/tiny-llama\ntokenizer_config: $M#" e5.yml
check '"$AXOC" compile e5.yml -o e5.bin 2>e5.err && grep -q "the embeddings and lm_head grow from 256 to 705 rows" e5.err' \
  "a tokenizer larger than the model's vocab: the embeddings grow to len(tokenizer), as Axolotl resizes them"
head -3 "$D/toy_alpaca.jsonl" >rows.jsonl
echo '{"instruction": "no output here"}' >>rows.jsonl
cfg "  - path: $T/rows.jsonl
    type: alpaca" "" e6.yml
check '"$AXOC" compile e6.yml -o e6.bin 2>/dev/null' "compile a config with a bad row"
check '! "$AXORUN" e6.bin --output-dir out-e6 >/dev/null 2>e6.err && grep -q "rows.jsonl:4: error: \"output\": missing" e6.err' \
  "a bad row is named by file:line"
check 'test ! -e out-e6' "nothing written after a data error"

# 6. Jinja chat templates: the tokenizer's own (tokenizer_default), a
# chat_template_jinja file, and their errors. The template spells the llama3
# format, so the samples equal those of the built-in llama3 renderer.
cat >llama.jinja <<'EOF'
{{- bos_token }}
{%- for message in messages %}
    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}
{%- endfor %}
{%- if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}
EOF
mkdir -p tok-jinja && cp "$M/config.json" "$M/tokenizer.json" tok-jinja/
python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); c["chat_template"]=open("llama.jinja").read(); json.dump(c, open("tok-jinja/tokenizer_config.json","w"))' \
  "$M/tokenizer_config.json"
sed -e "s#^base_model: .*#base_model: $T/tok-jinja#" -e '/^chat_template:/d' prep.yml | grep -v dataset_prepared_path >j1.yml
check '"$AXOC" preprocess j1.yml -n 0 -o j1.jsonl >j1.out 2>j1.err && grep -q "(chat_template jinja template)" j1.out' \
  "tokenizer_default runs the tokenizer's Jinja template"
check 'cmp -s j1.jsonl pre.jsonl' "= the built-in llama3, sample for sample"
sed -e 's#^chat_template: llama3#chat_template: jinja\nchat_template_jinja: llama.jinja#' prep.yml | grep -v dataset_prepared_path >j2.yml
check '"$AXOC" preprocess j2.yml -n 0 -o j2.jsonl >/dev/null 2>j2.err && cmp -s j2.jsonl pre.jsonl' \
  "chat_template: jinja with a chat_template_jinja file: the same samples"
printf '{%% for m in messages %%}\n{{ m.content }\n{%% endfor %%}\n' >bad.jinja
sed 's#llama.jinja#bad.jinja#' j2.yml >j3.yml
check '! "$AXOC" compile j3.yml -o j3.bin 2>j3.err && grep -q "bad.jinja: error: chat template line 2: " j3.err' \
  "a template's syntax error is a compile error naming the file and line"
printf '{%% for m in messages %%}{%% if m.role == "system" %%}{{ raise_exception("no system turns") }}{%% endif %%}{{ m.content }}{%% endfor %%}' >raise.jinja
head -2 "$D/toy_chat.jsonl" >rows2.jsonl
echo '{"messages": [{"role": "system", "content": "x"}, {"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}' >>rows2.jsonl
sed -e 's#llama.jinja#raise.jinja#' -e "s#path: .*toy_chat.jsonl#path: $T/rows2.jsonl#" j2.yml >j4.yml
check '! "$AXOC" preprocess j4.yml -n 0 -o j4.jsonl >/dev/null 2>j4.err && grep -q "rows2.jsonl:3: error: the chat template refused the conversation: no system turns" j4.err' \
  "raise_exception is a data error naming file:line"
# Axolotl writes a top-level chat_template into the tokenizer first, so a
# dataset's tokenizer_default means it (here chatml, not the tokenizer's llama3)
sed -e 's#^    type: chat_template#    type: chat_template\n    chat_template: tokenizer_default#' j1.yml >j5.yml
echo "chat_template: chatml" >>j5.yml
sed -e 's#^    type: chat_template#    type: chat_template\n    chat_template: chatml#' j1.yml >j6.yml
check '"$AXOC" preprocess j5.yml -n 0 -o j5.jsonl >/dev/null 2>&1 && "$AXOC" preprocess j6.yml -n 0 -o j6.jsonl >/dev/null 2>&1 && cmp -s j5.jsonl j6.jsonl && ! cmp -s j5.jsonl j1.jsonl' \
  "a dataset's tokenizer_default is the top-level chat_template when there is one (Axolotl's order)"
# a top-level chat_template: tokenizer_default is the tokenizer's own (its resolution once cleared the template it read)
{ cat j1.yml; echo "chat_template: tokenizer_default"; } >j8.yml
check '"$AXOC" preprocess j8.yml -n 0 -o j8.jsonl >/dev/null 2>j8.err && cmp -s j8.jsonl j1.jsonl' \
  "a top-level chat_template: tokenizer_default renders with the tokenizer's template"

# 7. the trained model carries its tokenizer and the config's chat template
# (chat_template.jinja, axo's Jinja text of llama3): the output dir used as
# the tokenizer with tokenizer_default (chat_template.jinja is read before
# tokenizer_config.json's, as transformers reads it) gives the built-in
# llama3's samples
check 'test -f out-chat_template/tokenizer.json && test -f out-chat_template/tokenizer_config.json && test -s out-chat_template/chat_template.jinja' \
  "the output dir has the tokenizer and chat_template.jinja"
mkdir -p tok-out && cp out-chat_template/tokenizer.json out-chat_template/tokenizer_config.json out-chat_template/chat_template.jinja \
  out-chat_template/config.json tok-out/
sed -e "s#^base_model: .*#base_model: $T/tok-out#" -e '/^chat_template:/d' prep.yml | grep -v dataset_prepared_path >j7.yml
check '"$AXOC" preprocess j7.yml -n 0 -o j7.jsonl >/dev/null 2>&1 && cmp -s j7.jsonl pre.jsonl' \
  "the saved template renders the samples the built-in llama3 does"

# content as a list of parts and message_field_training_detail, from the config: the texts are joined, and only the
# tokens a training detail holds are labels (the parts' own default is to train; " there" is what offsets 6-10 of
# "hello there friend" widen to)
cat >parts.jsonl <<'EOF2'
{"messages": [{"role": "user", "content": [{"type": "text", "text": "What is "}, {"type": "text", "text": "2+2?"}]}, {"role": "assistant", "content": [{"text": "Let me think.", "train": false}, {"text": " It is 4.", "train": true}]}]}
{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello there friend", "detail": [{"begin_offset": 6, "end_offset": 10, "train": true}]}]}
EOF2
printf 'base_model: %s\ndatasets:\n  - path: %s\n    type: chat_template\n    chat_template: llama3\n    message_field_training_detail: detail\nsequence_len: 128\nmicro_batch_size: 1\n' \
  "$SRC/configs/models/tiny-llama-chat" "$T/parts.jsonl" >parts.yml
check '"$AXOC" preprocess parts.yml -n 2 >parts.out 2>parts.err && ! grep -q "ignored" parts.err' "parts and training details: preprocess, no key ignored"
check 'grep -q " is(-100, 588)  (-100, 220) 2(-100, 17) +(-100, 10) 2(-100, 17) ?(-100, 30) <|eot_id|>" parts.out' "the parts' texts joined"
check 'grep -q "k(-100, 74) .(-100, 13)  I(613, 613) t(83, 83)  is(588, 588)  (220, 220) 4(19, 19) .(13, 13) <|eot_id|>(704, 704)" parts.out' \
  "a part with train: false is not trained, the next one is"
check 'grep -q "o(-100, 78)  there(608, 608)  f(-100, 276)" parts.out' "message_field_training_detail trains only its span"

# split_thinking takes an assistant's thinking block out of its content; reasoning from a field mapped in
# message_property_mappings; field_thinking and field_tools change nothing in Axolotl 0.19, and say so
cat >think.jsonl <<'EOF2'
{"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "<think>add</think>\n\nfour"}]}
EOF2
printf 'base_model: %s\ndatasets:\n  - path: %s\n    type: chat_template\n    chat_template: llama3\n    split_thinking: true\n    field_thinking: thoughts\n    field_tools: functions\n    message_property_mappings:\n      reasoning_content: thoughts\nsequence_len: 128\nmicro_batch_size: 1\n' \
  "$SRC/configs/models/tiny-llama-chat" "$T/think.jsonl" >think.yml
check '"$AXOC" preprocess think.yml -n 1 >think.out 2>think.err && ! grep -q "ignored" think.err' "split_thinking, mappings: preprocess"
check 'grep -qF "\\n(-100, 198) f(69, 69) ou(266, 266) r(81, 81) <|eot_id|>" think.out && ! grep -qF "add(" think.out' \
  "split_thinking: the content without its thinking block"
check 'grep -q "field_thinking: changes nothing in Axolotl 0.19" think.err && grep -q "field_tools: changes nothing in Axolotl 0.19" think.err' \
  "field_thinking and field_tools: a warning that they change nothing"

# shards / shards_idx (a dataset's): Axolotl's dataset.shuffle(seed).shard(3, 1) before it tokenizes: HF datasets
# orders the ten rows as numpy's default_rng(42).permutation(10) = 5 6 0 7 3 2 4 9 1 8 and shard 1 of 3 is
# 3 2 4 (delta, charlie, echo); the same from a JSON array file
python3 - <<'PYEOF'
import json
w = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]
with open("words.jsonl", "w") as f:
    for x in w:
        f.write(json.dumps({"text": x}) + "\n\n")
json.dump([{"text": x} for x in w], open("words.json", "w"), indent=1)
PYEOF
for f in words.jsonl words.json; do
  printf 'base_model: %s\ndatasets:\n  - path: %s\n    type: completion\n    shards: 3\n    shards_idx: 1\nsequence_len: 32\nmicro_batch_size: 1\nseed: 42\n' \
    "$SRC/configs/models/tiny-llama-chat" "$T/$f" >sh-$f.yml
  check '"$AXOC" preprocess sh-$f.yml -n 3 >sh-$f.out 2>&1 && grep -q "^3 samples" sh-$f.out && grep -q "^sample 0: .* d(67, 67) e(68, 68) l(75, 75) t(83, 83) a(64, 64) <|eot_id|>" sh-$f.out && grep -q "^sample 1: .* ch(290, 290) ar(297, 297) l(75, 75) i(72, 72) e(68, 68) <|eot_id|>" sh-$f.out && grep -q "^sample 2: .* e(68, 68) ch(290, 290) o(78, 78) <|eot_id|>" sh-$f.out' \
    "shards 3, shards_idx 1 of $f: Axolotl's rows (delta, charlie, echo), in its order"
done
sed 's/shards_idx: 1/shards_idx: 3/' sh-words.json.yml >sh-bad.yml
check '! "$AXOC" preprocess sh-bad.yml >/dev/null 2>sh-bad.err && grep -q "datasets\[0\].shards_idx: expected an index below shards 3, found 3" sh-bad.err' \
  "a shards_idx past the shards: an error"

# Axolotl's find_turn never locates a leading system turn when the tokenizer's name (tokenizer_config, else
# base_model, as written) holds "mistral": the same tokenizer under such a name leaves the system prompt untrained
mkdir -p My-Mistral-Tok && cp "$SRC"/configs/models/tiny-llama-chat/tokenizer*.json My-Mistral-Tok/
printf '{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n' >sys.jsonl
for tc in "" "tokenizer_config: $T/My-Mistral-Tok"; do
  n=ms$([ -n "$tc" ] && echo 1 || echo 0)
  printf 'base_model: %s\n%s\ndatasets:\n  - path: %s\n    type: chat_template\n    chat_template: chatml\n    roles_to_train: [system, assistant]\nsequence_len: 128\nmicro_batch_size: 1\n' \
    "$SRC/configs/models/tiny-llama-chat" "$tc" "$T/sys.jsonl" >$n.yml
  "$AXOC" preprocess $n.yml -n 1 >$n.out 2>&1
done
check 'grep -qF "ystem(-100, 350) \\n(-100, 198) B(33, 33) e(68, 68)" ms0.out && grep -qF "ystem(-100, 350) \\n(-100, 198) B(-100, 33) e(-100, 68)" ms1.out && grep -qF "y(88, 88) o(78, 78)" ms1.out' \
  "a tokenizer named *mistral*: the leading system turn is not trained (Axolotl's rule), the assistant's is"

finish
