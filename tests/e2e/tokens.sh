#!/usr/bin/env bash
# Tokens a config adds (tokens, special_tokens, added_tokens_overrides) and
# the embedding resize Axolotl does for them (shrink_embeddings,
# resize_token_embeddings_to_32x, mean_resizing_embeddings): the saved
# tokenizer is transformers' (tests/reference/tokenizers/added, made by
# make_added_token_fixtures.py), the saved weights keep the base rows bit for
# bit and draw the new ones as transformers does, config.json says the new
# vocab_size, ZeRO-3 on 2 ranks saves the same model, and adapters need
# embed_tokens and lm_head in lora_modules_to_save. peft_trainable_token_indices
# (PEFT's trainable tokens): its delta trains on 1 rank as on ZeRO-3 x 2,
# is saved under PEFT's key and in adapter_config.json, continues through
# lora_model_dir, and merge-lora writes exactly those rows.
# usage: tokens.sh AXOC AXORUN SOURCE_DIR
set -uo pipefail
AXOC=$1 AXORUN=$2 SRC=$3
. "$SRC/tests/e2e/lib/harness.sh"
cd "$T" || exit 1

cfg() { # $1 base model dir, $2 output dir, $3 extra lines
  sed -e "s#\.\./#$SRC/configs/#g" -e 's/^chat_template: .*/chat_template: chatml/' -e 's/^max_steps: .*/max_steps: 2/' \
    -e 's/^learning_rate: .*/learning_rate: 1.0e-30/' -e 's/^warmup_steps: .*/warmup_steps: 0/' \
    -e "s#^base_model: .*#base_model: $1#" -e "s#^output_dir: .*#output_dir: $2#" "$SRC/configs/examples/chat_template.yml"
  printf '%s\n' "$3"
}
# safetensors without numpy: NAME ROWS COLS of a tensor, or a python expression over the arrays
st_py() {
  python3 - "$@" <<'PYEOF'
import json, struct, sys, array
def load(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    out = {}
    for k, v in head.items():
        if k == "__metadata__": continue
        assert v["dtype"] == "F32", v["dtype"]
        a, b = v["data_offsets"]
        arr = array.array("f"); arr.frombytes(raw[8 + n + a:8 + n + b])
        out[k] = (v["shape"], arr)
    return out
mode = sys.argv[1]
if mode == "shape":
    print(*load(sys.argv[2])[sys.argv[3]][0])
elif mode == "resized":  # base new name rows_from kind: the base rows equal, the new rows drawn as said
    base, new, name, kind = load(sys.argv[2]), load(sys.argv[3]), sys.argv[4], sys.argv[5]
    (bs, b), (ns, w) = base[name], new[name]
    H, R = bs[1], bs[0]
    ok = ns[1] == H and ns[0] > R and list(w[:R * H]) == list(b)
    extra = w[R * H:]
    if kind == "normal":
        m = sum(extra) / len(extra); sd = (sum((x - m) ** 2 for x in extra) / len(extra)) ** 0.5
        ok = ok and 0.012 < sd < 0.03 and abs(m) < 0.01
    else:
        mean = [sum(b[r * H + j] for r in range(R)) / R for j in range(H)]
        ok = ok and all(abs(extra[i] - mean[i % H]) < 1e-6 for i in range(len(extra)))
    sys.exit(0 if ok else 1)
PYEOF
}
added() { python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["added_tokens"], sort_keys=True))' "$1"; }
vocab() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["vocab_size"])' "$1"; }

# 1. chatml on tiny-llama-chat (vocab 768, 705 tokens): eos <|im_end|>, tokens <|im_start|> <|im_end|>, and
#    shrink_embeddings: 768 -> len(tokenizer) = 707 rows
cfg "$SRC/configs/models/tiny-llama-chat" "$T/o1" 'tokens: ["<|im_start|>", "<|im_end|>"]
special_tokens:
  eos_token: "<|im_end|>"
shrink_embeddings: true' >c1.yml
check '"$AXOC" compile c1.yml -o c1.bin 2>c1.err && grep -q "shrink_embeddings: the embeddings shrink from 768 to len(tokenizer) = 707 rows" c1.err' \
  "shrink_embeddings: compiled, the resize announced"
check '"$AXORUN" c1.bin >c1.out 2>&1' "train with the added tokens"
check 'test "$(vocab o1/config.json)" = 707 && test "$(st_py shape o1/model.safetensors model.embed_tokens.weight)" = "707 64" && test "$(st_py shape o1/model.safetensors lm_head.weight)" = "707 64"' \
  "config.json and the weights have 707 rows"
check 'test "$(added o1/tokenizer.json)" = "$(added "$SRC/tests/reference/tokenizers/added/llama3-chatml.json")"' \
  "the saved tokenizer.json's added tokens are transformers' (ids 705, 706; flags)"
check 'python3 -c "import json,sys; c=json.load(open(sys.argv[1])); sys.exit(c[\"eos_token\"] != \"<|im_end|>\")" o1/tokenizer_config.json' \
  "tokenizer_config.json names the new eos_token"
# the training rows are tokenized with the new ids: the chatml turns begin with <|im_start|> = 706
check '"$AXOC" preprocess c1.yml -n 1 >c1.pre 2>/dev/null && grep -qF "<|im_start|>(-100, 706)" c1.pre' "preprocess shows <|im_start|> as id 706"

# 2. from that model (it has weights): two more tokens grow the vocab 707 -> 709 rows; the base rows stay bit for bit
#    (learning_rate 1e-30 leaves them), the new ones are normal(0, 0.02)
cfg "$T/o1" "$T/o2" 'tokens: ["<tool_call>", "</tool_call>"]' >c2.yml
check '"$AXOC" compile c2.yml -o c2.bin 2>c2.err && grep -q "the embeddings and lm_head grow from 707 to 709 rows" c2.err && "$AXORUN" c2.bin >/dev/null 2>&1' \
  "grow: compiled and trained"
check 'test "$(vocab o2/config.json)" = 709' "config.json's vocab_size is 709"
check 'st_py resized o1/model.safetensors o2/model.safetensors model.embed_tokens.weight normal && st_py resized o1/model.safetensors o2/model.safetensors lm_head.weight normal' \
  "embed_tokens and lm_head: the base rows kept, the new rows drawn from normal(0, initializer_range)"
cfg "$T/o1" "$T/o3" 'tokens: ["<tool_call>", "</tool_call>"]
deepspeed: '"$SRC"'/configs/deepspeed/zero3.json' >c3.yml
check '"$AXOC" compile c3.yml --world-size 2 -o c3.bin 2>/dev/null && "$AXORUN" c3.bin >/dev/null 2>&1 && cmp -s o2/model.safetensors o3/model.safetensors' \
  "ZeRO-3 on 2 ranks loads and saves the same resized model"
cfg "$T/o1" "$T/o4" 'tokens: ["<tool_call>", "</tool_call>"]
mean_resizing_embeddings: true
resize_token_embeddings_to_32x: true' >c4.yml
check '"$AXOC" compile c4.yml -o c4.bin 2>/dev/null && "$AXORUN" c4.bin >/dev/null 2>&1 && test "$(vocab o4/config.json)" = 736' \
  "resize_token_embeddings_to_32x: 709 -> 736 rows"
check 'st_py resized o1/model.safetensors o4/model.safetensors model.embed_tokens.weight mean && st_py resized o1/model.safetensors o4/model.safetensors lm_head.weight mean' \
  "mean_resizing_embeddings: the new rows are the mean of the base rows"

# 3. adapters: the new rows must be trained and saved, so embed_tokens and lm_head go in lora_modules_to_save
lora='adapter: lora
lora_r: 4
lora_alpha: 8
lora_target_linear: true'
cfg "$T/o1" "$T/o5" "tokens: [\"<tool_call>\"]
$lora" >c5.yml
check '! "$AXOC" compile c5.yml -o c5.bin 2>c5.err && grep -q "add embed_tokens and lm_head to lora_modules_to_save" c5.err' \
  "LoRA that grows the vocab without lora_modules_to_save: an error"
cfg "$T/o1" "$T/o6" "tokens: [\"<tool_call>\"]
$lora
lora_modules_to_save: [embed_tokens, lm_head]" >c6.yml
check '"$AXOC" compile c6.yml -o c6.bin 2>/dev/null && "$AXORUN" c6.bin >/dev/null 2>&1 && test "$(st_py shape o6/adapter_model.safetensors base_model.model.model.embed_tokens.weight)" = "708 64"' \
  "LoRA with lora_modules_to_save: the adapter holds the 708-row embedding"
# merge-lora into the 707-row base: the merged model takes the adapter's 708-row embedding and lm_head, and its
# config.json and tokenizer say 708
check '"$AXOC" merge-lora o6 --base o1 -o m6 2>/dev/null && test "$(vocab m6/config.json)" = 708 && test "$(st_py shape m6/model.safetensors lm_head.weight)" = "708 64" && test "$(added m6/tokenizer.json)" = "$(added o6/tokenizer.json)"' \
  "merge-lora: the merged model has the resized vocab and the adapter's tokenizer"
cfg "$SRC/configs/models/tiny-llama-chat" "$T/o7" "special_tokens:
  eos_token: \"<|my_eos|>\"
$lora" >c7.yml
check '! "$AXOC" compile c7.yml -o c7.bin 2>c7.err && grep -q "special_tokens.eos_token: \"<|my_eos|>\" is new" c7.err' \
  "Axolotl's rule: a new special token with an adapter needs lora_modules_to_save"

# 4. added_tokens_overrides renames an added token; an id that is not one is an error
cfg "$SRC/configs/models/tiny-llama-chat" "$T/o8" 'added_tokens_overrides:
  703: "<|tool|>"' >c8.yml
check '"$AXOC" compile c8.yml -o c8.bin 2>/dev/null && "$AXORUN" c8.bin >/dev/null 2>&1' "added_tokens_overrides: trained"
check 'python3 -c "import json,sys; t=json.load(open(sys.argv[1])); a=[x for x in t[\"added_tokens\"] if x[\"id\"] == 703]; sys.exit(a[0][\"content\"] != \"<|tool|>\" or \"<|end_header_id|>\" in json.dumps(t[\"added_tokens\"]))" o8/tokenizer.json' \
  "the saved tokenizer has <|tool|> at 703"
check 'test "$(vocab o8/config.json)" = 768' "no resize when the model has the rows"
cfg "$SRC/configs/models/tiny-llama-chat" "$T/o9" 'added_tokens_overrides:
  12: "<|tool|>"' >c9.yml
check '! "$AXOC" compile c9.yml -o c9.bin 2>c9.err && grep -q "added_tokens_overrides: token id 12 is not an added token" c9.err' \
  "an override of a token that is not an added one: an error"
cfg "$SRC/configs/models/tiny-llama-chat" "$T/o10" 'tokens: ["ok", ""]' >c10.yml
check '! "$AXOC" compile c10.yml -o c10.bin 2>c10.err && grep -q "tokens\[1\]: expected a token, found an empty string" c10.err' \
  "an empty token: an error"
# the plan cache key covers the tokenizer's bytes: a token added to tokenizer.json itself is a new plan
cp -r "$SRC/configs/models/tiny-llama-chat" m11
cfg "$T/m11" "$T/o11" 'shrink_embeddings: true' >c11.yml
check '"$AXOC" compile c11.yml -o c11a.bin 2>c11a.err && "$AXOC" compile c11.yml -o c11b.bin 2>c11b.err && grep -q "served from cache" c11b.err && grep -q "shrink from 768 to len(tokenizer) = 705 rows" c11a.err' \
  "compiled twice: the second from the cache"
python3 -c 'import json,sys; p=sys.argv[1]; t=json.load(open(p)); t["added_tokens"].append({"id": 705, "content": "<x>", "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}); json.dump(t, open(p, "w"))' m11/tokenizer.json
check '"$AXOC" compile c11.yml -o c11c.bin 2>c11c.err && ! grep -q "served from cache" c11c.err && grep -q "shrink from 768 to len(tokenizer) = 706 rows" c11c.err' \
  "a token added to tokenizer.json: compiled afresh with the new len(tokenizer)"

# peft_trainable_token_indices on the pre-tokenized toy data (token 72 occurs, 5 does not)
tt() { # $1 output dir, $2 extra lines
  printf 'base_model: %s\ndatasets:\n  - path: %s\nsequence_len: 64\nmicro_batch_size: 2\nmax_steps: 4\n' \
    "$SRC/tests/reference/fixtures/tiny-llama" "$SRC/configs/data/toy_count.jsonl"
  printf 'learning_rate: %s\nseed: 3\noutput_dir: %s\nadapter: lora\nlora_r: 4\nlora_alpha: 8\nlora_target_linear: true\n' \
    "${LR:-0.01}" "$T/$1"
  printf 'peft_trainable_token_indices: %s\n%s\n' "${TOKS:-[72, 5]}" "${2:-}"
}
st() { python3 -c 'import json,struct,sys
b=open(sys.argv[1],"rb").read(); n=struct.unpack("<Q",b[:8])[0]; h=json.loads(b[8:8+n])
v=h[sys.argv[2]]; s,e=v["data_offsets"]; d=b[8+n+s:8+n+e]
print(v["shape"], list(struct.unpack("<%df" % (len(d)//4), d)) if v["dtype"]=="F32" else v["dtype"])' "$@"; }
KD=base_model.model.model.embed_tokens.token_adapter.trainable_tokens_delta
tt t1 "gradient_accumulation_steps: 2" >t1.yml # the global batch of 2 ranks x 2 rows
tt t2 "deepspeed: $SRC/configs/deepspeed/zero3.json" >t2.yml
tt t5 "deepspeed: $SRC/configs/deepspeed/zero1.json" >t5.yml # an f32 master copy of delta, sharded
check '"$AXOC" compile t1.yml -o t1.bin 2>/dev/null && "$AXORUN" t1.bin >t1.out 2>&1 && "$AXOC" compile t2.yml --world-size 2 -o t2.bin 2>/dev/null && "$AXORUN" t2.bin >t2.out 2>&1 && "$AXOC" compile t5.yml --world-size 2 -o t5.bin 2>/dev/null && "$AXORUN" t5.bin >t5.out 2>&1' \
  "trainable tokens train on 1 rank, on ZeRO-3 x 2 and on ZeRO-1 x 2"
check 'test "$(st t1/adapter_model.safetensors $KD | cut -c1-8)" = "[2, 64] " && python3 -c "import sys; a=eval(sys.argv[1].split(\" \",2)[2]); b=eval(sys.argv[2].split(\" \",2)[2]); sys.exit(max(abs(x-y) for x,y in zip(a,b)) > 1e-6)" "$(st t1/adapter_model.safetensors $KD)" "$(st t2/adapter_model.safetensors $KD)"' \
  "the saved delta is [2, 64] under PEFT's key, the same on ZeRO-3 x 2 (1e-6)"
check 'python3 -c "import sys; a=eval(sys.argv[1].split(\" \",2)[2]); b=eval(sys.argv[2].split(\" \",2)[2]); sys.exit(max(abs(x-y) for x,y in zip(a,b)) > 1e-6)" "$(st t1/adapter_model.safetensors $KD)" "$(st t5/adapter_model.safetensors $KD)"' \
  "and on ZeRO-1 x 2, whose f32 master copy of delta starts as the rows too"
check 'python3 -c "import json,sys; sys.exit(json.load(open(sys.argv[1]))[\"trainable_token_indices\"] != [72, 5])" t1/adapter_config.json' \
  "adapter_config.json lists the indices as PEFT reads them"
check '"$AXOC" merge-lora t1 --base "$SRC/tests/reference/fixtures/tiny-llama" -o tm 2>/dev/null && python3 -c "
import json,struct,sys
def rd(p, k):
    b=open(p,\"rb\").read(); n=struct.unpack(\"<Q\",b[:8])[0]; v=json.loads(b[8:8+n])[k]; s,e=v[\"data_offsets\"]; d=b[8+n+s:8+n+e]
    return struct.unpack(\"<%df\" % (len(d)//4), d)
W=rd(sys.argv[1], \"model.embed_tokens.weight\"); M=rd(sys.argv[2], \"model.embed_tokens.weight\"); D=rd(sys.argv[3], sys.argv[4])
H=64; rows=[r for r in range(len(W)//H) if W[r*H:(r+1)*H] != M[r*H:(r+1)*H]]
sys.exit(not (rows == [72] and M[72*H:73*H] == D[:H] and M[5*H:6*H] == D[H:]))" "$SRC/tests/reference/fixtures/tiny-llama/model.safetensors" tm/model.safetensors t1/adapter_model.safetensors $KD' \
  "merge-lora writes delta into rows 72 and 5 (5 never occurs: unchanged) and no other row"
LR=1e-30 tt t3 "lora_model_dir: $T/t1" >t3.yml
check '"$AXOC" compile t3.yml -o t3.bin 2>/dev/null && "$AXORUN" t3.bin >t3.out 2>&1 && test "$(st t3/adapter_model.safetensors $KD)" = "$(st t1/adapter_model.safetensors $KD)"' \
  "lora_model_dir continues from the saved delta (at lr 1e-30 it stays the saved one, not the base rows)"
TOKS="[72, 9]" tt t6 "lora_model_dir: $T/t1" >t6.yml
check '"$AXOC" compile t6.yml -o t6.bin 2>/dev/null && ! "$AXORUN" t6.bin >t6.out 2>&1 && grep -q "trainable_token_indices differ from the config" t6.out' \
  "continuing with other token ids: an error, not the saved rows on the wrong tokens"
tt t4 "lora_modules_to_save: [embed_tokens]" >t4.yml
check '! "$AXOC" compile t4.yml -o t4.bin 2>t4.err && grep -q "embed_tokens is in lora_modules_to_save too; PEFT refuses both" t4.err' \
  "with embed_tokens in lora_modules_to_save: PEFT's refusal"
finish
