#!/usr/bin/env bash
# Hub repo ids (base_model: org/name), against a stand-in for the Hub's HTTP
# API (lib/mock_hub.py, HF_ENDPOINT): axoc downloads what it reads into
# huggingface_hub's cache layout (refs/, snapshots/ linking into blobs/ named
# by ETag), only those files, resumes nothing half-written, reads the cache
# offline, honours revision_of_model, sharded weights and HF_TOKEN, and says
# what is wrong when it cannot. Where huggingface_hub is installed (a dev
# machine) it also checks both ways that the two read each other's caches.
# usage: hub.sh AXOC AXORUN SOURCE_DIR
set -uo pipefail
AXOC=$1 AXORUN=$2 SRC=$3
. "$SRC/tests/e2e/lib/harness.sh"
cd "$T" || exit 1
FIX=$SRC/tests/reference/fixtures/tiny-llama

python3 "$SRC/tests/e2e/lib/mock_hub.py" "$FIX" port hub.log secret-token "$T/lo" "$SRC/configs/data/toy_count.jsonl" 2>mock.err &
mock=$!
trap 'kill $mock 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
for _ in $(seq 100); do [ -s port ] && break; sleep 0.1; done
export HF_ENDPOINT="http://127.0.0.1:$(cat port)" HF_HUB_CACHE="$T/hub" HF_HOME="$T/hfhome"
unset HF_TOKEN HUGGING_FACE_HUB_TOKEN HF_TOKEN_PATH HF_HUB_OFFLINE TRANSFORMERS_OFFLINE
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost # a proxy in the environment must not take these

cfg() { # $1 base_model, $2 output dir, $3 extra lines
  printf 'base_model: %s\ndatasets:\n  - path: %s\nsequence_len: 64\nmicro_batch_size: 2\nmax_steps: 3\n' \
    "$1" "$SRC/configs/data/toy_count.jsonl"
  printf 'learning_rate: 0.01\nseed: 3\noutput_dir: %s\n%s\n' "$2" "${3:-}"
}
losses() { grep -o '"loss": [^,]*' "$1/train_log.jsonl"; }
snap() { echo "$T/hub/models--test-org--$1/snapshots/$2"; }
A=$(python3 -c 'import hashlib; print(hashlib.sha1(b"tiny-A").hexdigest())')
B=$(python3 -c 'import hashlib; print(hashlib.sha1(b"tiny-B").hexdigest())')

cfg test-org/tiny "$T/o1" >a.yml
check '"$AXOC" compile a.yml -o a.bin 2>a.err' "base_model: test-org/tiny compiles, downloading it"
check 'grep -q "downloading test-org/tiny/model.safetensors" a.err' "axoc says what it downloads"
check 'grep -q "axoc: base_model test-org/tiny at revision main: commit $A " a.err' "and which commit the branch named"
check 'test "$(cat hub/models--test-org--tiny/refs/main)" = "$A"' "refs/main holds the commit"
st_sha=$(sha256sum "$FIX/model.safetensors" | cut -c1-64)
cfg_sha=$(python3 -c 'import hashlib,sys; d=open(sys.argv[1],"rb").read(); print(hashlib.sha1(b"blob %d\0" % len(d) + d).hexdigest())' "$FIX/config.json")
check 'test "$(readlink "$(snap tiny "$A")/model.safetensors")" = "../../blobs/$st_sha" && test "$(readlink "$(snap tiny "$A")/config.json")" = "../../blobs/$cfg_sha"' \
  "snapshot files link to blobs named by their ETag (LFS sha256, git blob sha1), as huggingface_hub names them"
check 'cmp -s "$(snap tiny "$A")/model.safetensors" "$FIX/model.safetensors"' "the weights arrive whole"
check '! grep -qE "pytorch_model.bin|consolidated|original/|README" hub.log && test "$(ls "$(snap tiny "$A")" | sort | tr "\n" " ")" = "config.json model.safetensors "' \
  "only the files axo reads are fetched (no .bin, no second copy of the weights, nothing in subfolders)"
check '! ls hub/models--test-org--tiny/blobs | grep -q incomplete' "no partial file is left"
check '"$AXOC" dump a.bin >a.dump && grep -q "model.dir = \"$(snap tiny "$A")\"" a.dump' "the plan names the snapshot (its commit), not the moving branch"
cfg "$FIX" "$T/o0" >local.yml
check '"$AXOC" compile local.yml -o local.bin 2>/dev/null && "$AXORUN" local.bin >local.out 2>&1 && "$AXORUN" a.bin >a.out 2>&1' \
  "the hub model trains, as does the same model from a local directory"
check 'test -n "$(losses o1)" && test "$(losses o1)" = "$(losses o0)"' "same losses as the local directory"

cfg test-org/notcached "$T/on" >n0.yml
# offline: from the cache alone, and the same plan
n0=$(wc -l <hub.log)
check 'HF_HUB_OFFLINE=1 "$AXOC" compile a.yml -o a2.bin --no-cache 2>/dev/null && cmp -s a.bin a2.bin' \
  "HF_HUB_OFFLINE=1: the cached snapshot compiles to the same plan"
check '"$AXOC" compile a.yml -o a3.bin --no-cache 2>/dev/null && cmp -s a.bin a3.bin && test "$(tail -n +$((n0 + 1)) hub.log)" = "GET /api/models/test-org/tiny/revision/main"' \
  "online, a complete snapshot costs one API call (the revision, as huggingface_hub asks it) and no file"

# the Hub out of reach: the cache, with a warning (transformers falls back the same way)
check 'HF_ENDPOINT=http://127.0.0.1:9 "$AXOC" compile a.yml -o u.bin --no-cache 2>u.err && cmp -s u.bin a.bin && grep -q "warning: base_model: the Hub is out of reach" u.err' \
  "Hub unreachable: the cached snapshot, with a warning"
check '! HF_ENDPOINT=http://127.0.0.1:9 "$AXOC" compile n0.yml -o u2.bin 2>u2.err && grep -q "has no snapshot of it at revision \"main\"; the Hub is out of reach" u2.err' \
  "Hub unreachable and nothing cached: an error saying both"

# revision_of_model (and its alias model_revision): a tag, a commit
cfg test-org/tiny "$T/o2" 'revision_of_model: v1' >v1.yml
check '"$AXOC" compile v1.yml -o v1.bin 2>/dev/null && test "$(cat hub/models--test-org--tiny/refs/v1)" = "$B" && "$AXOC" dump v1.bin >v1.dump && grep -q "model.dir = \"$(snap tiny "$B")\"" v1.dump' \
  "revision_of_model: v1 resolves the tag to its own snapshot"
check '"$AXORUN" v1.bin >v1.out 2>&1 && test "$(losses o2)" != "$(losses o1)"' "another revision's weights train differently"
cfg test-org/tiny "$T/o3" "model_revision: $A" >c.yml
check 'HF_HUB_OFFLINE=1 "$AXOC" compile c.yml -o c.bin 2>/dev/null && "$AXOC" dump c.bin >c.dump && grep -q "model.dir = \"$(snap tiny "$A")\"" c.dump' \
  "model_revision: a commit hash finds the cached snapshot offline"

# a branch that moved: online, the Hub's commit wins (as from_pretrained); offline, the cached ref is used
printf %s "$B" >hub/models--test-org--tiny/refs/main
check 'HF_HUB_OFFLINE=1 "$AXOC" compile a.yml -o m0.bin --no-cache 2>/dev/null && "$AXOC" dump m0.bin >m0.dump && grep -q "model.dir = \"$(snap tiny "$B")\"" m0.dump' \
  "offline: refs/main as cached (here moved to another commit)"
check '"$AXOC" compile a.yml -o m1.bin --no-cache 2>/dev/null && cmp -s m1.bin a.bin && test "$(cat hub/models--test-org--tiny/refs/main)" = "$A"' \
  "online: main is what the Hub says now, and refs/main follows it"
# a LoRA adapter on a Hub base: adapter_config.json names the repo and revision, as PEFT writes them, and
# axoc merge-lora finds that base again in the cache (offline), merging as with --base given the snapshot
cfg test-org/tiny "$T/lo" 'revision_of_model: v1
adapter: lora
lora_r: 4
lora_alpha: 8
lora_target_linear: true' >lo.yml
check '"$AXOC" compile lo.yml -o lo.bin 2>/dev/null && "$AXORUN" lo.bin >lo.out 2>&1' "LoRA on a Hub base trains"
check 'python3 -c "import json,sys; c=json.load(open(sys.argv[1])); sys.exit(not (c[\"base_model_name_or_path\"] == \"test-org/tiny\" and c[\"revision\"] == sys.argv[2]))" lo/adapter_config.json "$B"' \
  "adapter_config.json: base_model_name_or_path is the repo id, revision the commit trained on (v1 is $B)"
check 'HF_HUB_OFFLINE=1 "$AXOC" merge-lora lo -o m1 2>/dev/null && "$AXOC" merge-lora lo --base "$(snap tiny "$B")" -o m2 2>/dev/null && cmp -s m1/model.safetensors m2/model.safetensors' \
  "merge-lora resolves the repo id at that revision from the cache"

# lora_model_dir: a Hub adapter repo (PeftModel.from_pretrained takes one), here the adapter just trained: it
# continues as the same adapter from its local directory does
cont() { cfg test-org/tiny "$T/$1" "revision_of_model: v1
adapter: lora
lora_r: 4
lora_alpha: 8
lora_target_linear: true
lora_model_dir: $2"; }
cont lh test-org/adapter >lh.yml
cont ll "$T/lo" >ll.yml
check '"$AXOC" compile lh.yml -o lh.bin 2>/dev/null && "$AXORUN" lh.bin >lh.out 2>&1 && "$AXOC" compile ll.yml -o ll.bin 2>/dev/null && "$AXORUN" ll.bin >ll.out 2>&1' \
  "lora_model_dir: test-org/adapter downloads the adapter and trains on"
check 'test -n "$(losses lh)" && test "$(losses lh)" = "$(losses ll)" && test "$(losses lh)" != "$(losses lo)"' \
  "it continues from the adapter's weights, as from its local directory"

cont lx test-org/sharded >lx.yml
check '! "$AXOC" compile lx.yml -o lx.bin 2>lx.err && grep -q "lora_model_dir: the Hub repo \"test-org/sharded\" (revision \"main\") has no adapter_config.json" lx.err' \
  "lora_model_dir naming a model repo, not an adapter: the error says what it lacks"

# sharded weights: the index and each shard it names
cfg test-org/sharded "$T/o4" >s.yml
check '"$AXOC" compile s.yml -o s.bin 2>/dev/null && ls "$(snap sharded "$(cat hub/models--test-org--sharded/refs/main)")" | grep -c "of-00002" | grep -q 2' \
  "a sharded repo: the index and both shards are fetched"
check '"$AXORUN" s.bin >s.out 2>&1 && test "$(losses o4)" = "$(losses o0)"' "the sharded weights train as the single file"

# gated: HF_TOKEN, or the token file
cfg test-org/gated "$T/o5" >g.yml
check '! "$AXOC" compile g.yml -o g.bin 2>g.err && grep -q "base_model: cannot download \"test-org/gated\"" g.err && grep -q "HTTP 401" g.err && grep -q "HF_TOKEN" g.err' \
  "a gated repo without a token: the error says HTTP 401 and how to give a token"
check 'HF_TOKEN=secret-token "$AXOC" compile g.yml -o g.bin 2>/dev/null' "HF_TOKEN opens it"
rm -rf hub/models--test-org--gated
mkdir -p hfhome && printf 'secret-token\n' >hfhome/token
check '"$AXOC" compile g.yml -o g2.bin 2>/dev/null && cmp -s g.bin g2.bin' "so does \$HF_HOME/token"
rm hfhome/token

# tokens: cleaned as huggingface_hub cleans them; never sent to the storage host a download is redirected to
check 'grep "GET /cdn/" hub.log | grep -q . && ! grep "GET /cdn/" hub.log | grep -q auth && grep -q "GET /api/models/test-org/gated/revision/main auth" hub.log' \
  "the token goes to the Hub, not to the storage host its redirects point to"
rm -rf hub/models--test-org--gated
check 'HF_TOKEN=$(printf "  secret-token\n") "$AXOC" compile g.yml -o g3.bin 2>/dev/null' "a token's outer white space (a file's newline) is dropped"
rm -rf hub/models--test-org--gated
check 'HF_TOKEN=$(printf "secret-\r\ntoken") "$AXOC" compile g.yml -o g5.bin 2>/dev/null' "line breaks inside a token are dropped, as huggingface_hub drops them"
check '! HF_TOKEN=$(printf "secret\tX-Injected: 1") "$AXOC" compile g.yml -o g4.bin 2>g4.err && grep -q "the token in HF_TOKEN holds a control character" g4.err && ! grep -q "X-Injected" hub.log' \
  "a token with another control character inside is refused, never sent"

# tokenizer_config from the Hub fetches tokenizer files, not weights (a fresh cache)
cfg "$FIX" "$T/ot" 'tokenizer_config: test-org/sharded' >t.yml
n1=$(wc -l <hub.log)
check '! HF_HUB_CACHE=$T/hub2 "$AXOC" compile t.yml -o t.bin 2>t.err && grep -q "tokenizer_config: the Hub repo \"test-org/sharded\" (revision \"main\") has no tokenizer.json" t.err && ! tail -n +$((n1 + 1)) hub.log | grep -q safetensors' \
  "tokenizer_config: a repo id; no weights are fetched for it"

# errors, each naming the key, the repo and why
cfg test-org/nope "$T/o6" >n.yml
check '! "$AXOC" compile n.yml -o n.bin 2>n.err && grep -q "n.yml:1:.*base_model: cannot download \"test-org/nope\"" n.err && grep -q "HTTP 404: no such repo" n.err' \
  "an unknown repo: HTTP 404, at the key's line"
cfg test-org/binonly "$T/o7" >b.yml
check '! "$AXOC" compile b.yml -o b.bin 2>b.err && grep -q "has no model.safetensors" b.err && grep -q "not pytorch_model.bin" b.err' \
  "a repo with only pytorch_model.bin: says axo reads safetensors"
check '! HF_HUB_OFFLINE=1 "$AXOC" compile n.yml -o n.bin 2>off.err && grep -q "n.yml:1:.*base_model: \"test-org/nope\" is not a local directory, and the Hugging Face cache $T/hub has no snapshot of it at revision \"main\"" off.err && grep -q "HF_HUB_OFFLINE" off.err' \
  "offline and not cached: the error names the cache and why nothing was downloaded"
cfg test-org/tiny "$T/o9" 'revision_of_model: ../../etc' >r.yml
check '! "$AXOC" compile r.yml -o r.bin 2>r.err && grep -q "revision_of_model: expected a Hub revision" r.err' \
  "a revision that climbs out of the cache is refused"
cfg models/tiny-lama "$T/o12" >typo.yml
check '! "$AXOC" compile typo.yml -o typo.bin 2>typo.err && grep -q "HTTP 404" typo.err && grep -q "note: base_model: nor is \"models/tiny-lama\" a directory here or beside the config" typo.err' \
  "a mistyped relative path reads as a repo id; the error also says it is no directory"
cfg ./no/such/dir "$T/o10" >d.yml
check '! "$AXOC" compile d.yml -o d.bin 2>d.err && grep -q "expected an existing directory" d.err && ! grep -q "no/such" hub.log' \
  "a path that is not a repo id is still an error about the directory, with no Hub request"

# an interrupted download leaves nothing that looks whole; the next try resumes it where it stopped
cfg test-org/flaky "$T/o11" >f.yml
check '! "$AXOC" compile f.yml -o f.bin 2>f.err && grep -q "cannot download \"test-org/flaky\"" f.err' "a cut-off transfer is an error"
half=$(( $(stat -c %s "$FIX/model.safetensors") / 2 ))
check 'test ! -e hub/models--test-org--flaky/refs/main && test ! -e hub/models--test-org--flaky/blobs/$st_sha && test "$(stat -c %s hub/models--test-org--flaky/blobs/$st_sha.incomplete)" = $half && ! test -e "$(snap flaky "$(python3 -c "import hashlib; print(hashlib.sha1(b\"flaky\").hexdigest())")")/model.safetensors"' \
  "it leaves no weights blob, no link to the weights and no ref; what arrived waits in blobs/<etag>.incomplete"
check '"$AXOC" compile f.yml -o f.bin 2>f2.err && grep -q "resuming test-org/flaky/model.safetensors at byte $half" f2.err && grep -q "GET /cdn/$st_sha range=bytes=$half-" hub.log' \
  "the next compile resumes from that byte (an HTTP Range request)"
check 'cmp -s hub/models--test-org--flaky/blobs/$st_sha "$FIX/model.safetensors" && "$AXORUN" f.bin >f.out 2>&1 && test "$(losses o11)" = "$(losses o0)"' \
  "the resumed file is whole and trains"
mv hub/models--test-org--flaky/blobs/$st_sha hub/models--test-org--flaky/blobs/$st_sha.incomplete
rm "$(snap flaky "$(cat hub/models--test-org--flaky/refs/main)")/model.safetensors"
n2=$(grep -c "GET /cdn/" hub.log)
check '"$AXOC" compile f.yml -o f3.bin 2>/dev/null && test "$(grep -c "GET /cdn/" hub.log)" = "$n2" && cmp -s hub/models--test-org--flaky/blobs/$st_sha "$FIX/model.safetensors"' \
  "a partial file that is already whole (stopped before its rename) is completed without asking for bytes"
check 'test -e hub/.locks/models--test-org--flaky/$st_sha.lock' "downloads lock each blob where huggingface_hub does (.locks/<repo>/<etag>.lock)"
check '! grep -q "GET /test-org/tiny/resolve/$B/config.json" hub.log && grep -q "HEAD /test-org/tiny/resolve/$B/config.json" hub.log' \
  "a file another revision already brought (same blob) is linked, not downloaded again"

# datasets: a Hub dataset repo's one .json/.jsonl file of the split, as HF datasets infers splits
dcfg() { # $1 output dir, $2 the dataset entry's lines after path
  printf 'base_model: %s\ndatasets:\n  - path: %s\nsequence_len: 64\nmicro_batch_size: 2\nmax_steps: 3\n' "$FIX" "$2"
  printf 'learning_rate: 0.01\nseed: 3\noutput_dir: %s\n' "$T/$1"
}
dsnap() { echo "$T/hub/datasets--test-org--$1/snapshots/$(python3 -c 'import hashlib,sys; print(hashlib.sha1(("ds:test-org/"+sys.argv[1]).encode()).hexdigest())' "$1")"; }
dcfg d1 test-org/ds-split >d1.yml
check '"$AXOC" compile d1.yml -o d1.bin 2>/dev/null && "$AXORUN" d1.bin >d1.out 2>&1 && test "$(losses d1)" = "$(losses o0)"' \
  "path: a Hub dataset repo: its train split (data/train.jsonl) trains as the local file"
check '"$AXOC" dump d1.bin >d1.dump && grep -q "$(dsnap ds-split)/data/train.jsonl" d1.dump && test -L "$(dsnap ds-split)/data/train.jsonl" && test "$(readlink "$(dsnap ds-split)/data/train.jsonl" | cut -c1-15)" = "../../../blobs/" && ! grep -q "resolve/.*test.jsonl" hub.log' \
  "only that file is fetched, into datasets--test-org--ds-split, its link one level deeper"
dcfg d2 'test-org/ds-split
    split: test' >d2.yml
check '"$AXOC" compile d2.yml -o d2.bin 2>/dev/null && "$AXOC" dump d2.bin >d2.dump && grep -q "$(dsnap ds-split)/data/test.jsonl" d2.dump' \
  "split: test takes data/test.jsonl"
dcfg d3 test-org/ds-one >d3.yml
check '"$AXOC" compile d3.yml -o d3.bin 2>/dev/null && "$AXORUN" d3.bin >d3.out 2>&1 && test "$(losses d3)" = "$(losses o0)"' \
  "a repo whose one file names no split: that file is the train split (a JSON array here)"
dcfg d4 test-org/ds-parquet >d4.yml
head -200 "$SRC/configs/data/toy_count.jsonl" >count200.jsonl
dcfg d4j "$T/count200.jsonl" >d4j.yml
check '"$AXOC" compile d4.yml -o d4.bin 2>/dev/null && "$AXORUN" d4.bin >d4.out 2>&1 && "$AXOC" compile d4j.yml -o d4j.bin 2>/dev/null && "$AXORUN" d4j.bin >d4j.out 2>&1 && test -n "$(losses d4)" && test "$(losses d4)" = "$(losses d4j)"' \
  "a parquet repo (as push_to_hub writes one: data/train-00000-of-00001.parquet) trains as its rows in JSON lines"
check 'test -L "$(dsnap ds-parquet)/data/train-00000-of-00001.parquet" && "$AXOC" dump d4.bin >d4.dump && grep -q "attr io.dataset.0.parquet = 1" d4.dump' \
  "the parquet file is cached as huggingface_hub caches it, and the plan reads it as parquet"
dcfg d4c test-org/ds-arrow >d4c.yml
check '! "$AXOC" compile d4c.yml -o d4c.bin 2>d4c.err && grep -q "datasets\[0\].path: cannot download the dataset \"test-org/ds-arrow\".*its \"train\" split holds train.arrow, and axo reads .json/.jsonl, .parquet, .txt and .csv/.tsv files only" d4c.err' \
  "an arrow-only repo: the error names its file and what axo reads"
dcfg d5 test-org/ds-many >d5.yml
check '"$AXOC" compile d5.yml -o d5.bin 2>/dev/null && "$AXORUN" d5.bin >d5.out 2>&1 && test "$(losses d5)" = "$(losses o0)"' \
  "a split of several files (the two halves of the rows): their concatenation, as HF datasets makes it, trains as the whole file"
# curriculum_sampling keeps a lone dataset's order (Axolotl shuffles only merged ones): the two files are one dataset
dcfg d5c 'test-org/ds-many
curriculum_sampling: true' >d5c.yml
dcfg d5d "$SRC/configs/data/toy_count.jsonl
curriculum_sampling: true" >d5d.yml
check '"$AXOC" compile d5c.yml -o d5c.bin 2>/dev/null && "$AXORUN" d5c.bin >d5c.out 2>&1 && "$AXOC" compile d5d.yml -o d5d.bin 2>/dev/null && "$AXORUN" d5d.bin >d5d.out 2>&1 && test "$(losses d5c)" = "$(losses d5d)"' \
  "with curriculum_sampling the split of two files keeps the order of the one file (one dataset, not two merged)"
dcfg d5b 'test-org/ds-many
    shards: 2' >d5b.yml
check '! "$AXOC" compile d5b.yml -o d5b.bin 2>d5b.err && grep -q "its split is 2 files, and shards acts on the one dataset" d5b.err' \
  "shards over a split of several files: refused (it would act per file here)"
dcfg d6 'test-org/ds-many
    data_files: train-1.jsonl' >d6.yml
check '"$AXOC" compile d6.yml -o d6.bin 2>/dev/null && "$AXOC" dump d6.bin >d6.dump && grep -q "$(dsnap ds-many)/train-1.jsonl" d6.dump' \
  "data_files chooses the file"
check 'HF_HUB_OFFLINE=1 "$AXOC" compile d1.yml -o d1b.bin --no-cache 2>/dev/null && cmp -s d1.bin d1b.bin && HF_HUB_OFFLINE=1 "$AXOC" compile d6.yml -o d6b.bin --no-cache 2>/dev/null && cmp -s d6.bin d6b.bin' \
  "offline, the cached snapshot gives the same plans (the split and data_files chosen from its files)"
# offline, the split is chosen from the repo's listing (trees/<commit>.json, huggingface_hub's), not from the files
# that happen to be cached: here only extra.jsonl was fetched, and without data_files the train split is train.jsonl
dcfg d8 'test-org/ds-two
    data_files: extra.jsonl' >d8.yml
dcfg d9 test-org/ds-two >d9.yml
check '"$AXOC" compile d8.yml -o d8.bin 2>/dev/null && test -s hub/datasets--test-org--ds-two/trees/$(cat hub/datasets--test-org--ds-two/refs/main).json' \
  "online: the repo's file listing is kept in huggingface_hub's trees/<commit>.json"
check '! HF_HUB_OFFLINE=1 "$AXOC" compile d9.yml -o d9.bin 2>d9.err && grep -q "lacks train.jsonl" d9.err && "$AXOC" compile d9.yml -o d9.bin 2>/dev/null && "$AXOC" dump d9.bin >d9.dump && grep -q "/train.jsonl\"" d9.dump' \
  "offline the split is train.jsonl as online (not cached yet: said), and online fetches it"
# a local folder, as HF datasets loads one: the same inference over its files
mkdir -p dsdir/data && cp "$SRC/configs/data/toy_count.jsonl" dsdir/data/train.jsonl && head -3 "$SRC/configs/data/toy_count.jsonl" >dsdir/data/test.jsonl
dcfg d10 "$T/dsdir" >d10.yml
check '"$AXOC" compile d10.yml -o d10.bin 2>/dev/null && "$AXORUN" d10.bin >d10.out 2>&1 && test "$(losses d10)" = "$(losses o0)" && ! grep -q dsdir hub.log' \
  "path: a local folder: its train split (data/train.jsonl) trains as the file; no Hub request"
dcfg d11 "$T/dsdir
    split: validation" >d11.yml
check '! "$AXOC" compile d11.yml -o d11.bin 2>d11.err && grep -q "the folder .*dsdir: it has no split \"validation\" as HF datasets infers splits (it has: train, test)" d11.err' \
  "a split the folder does not have: the splits it has"
dcfg d7 'test-org/ds-split
    name: default' >d7.yml
check '"$AXOC" compile d7.yml -o d7.bin 2>/dev/null && "$AXOC" dump d7.bin >d7.dump && test "$(grep "attr io.dataset" d7.dump)" = "$(grep "attr io.dataset" d1.dump)"' \
  "name: default of a repo without configurations is its one configuration (as HF datasets)"
dcfg d7b 'test-org/ds-split
    name: other' >d7b.yml
check '! "$AXOC" compile d7b.yml -o d7b.bin 2>d7b.err && grep -q "name \"other\": it has no configuration of that name (it has: default)" d7b.err' \
  "another name is an error naming the one it has"
# a dataset card's configurations (README.md's YAML `configs`, as datasets reads them)
dcfg c0 test-org/ds-configs >c0.yml
check '! "$AXOC" compile c0.yml -o c0.bin 2>c0.err && grep -q "several configurations and none is the default: pick one with the entry.s .name:. (all, half)" c0.err' \
  "a card of several configurations without a default: the error names them (HF datasets refuses it too), nothing mixed"
dcfg c1 'test-org/ds-configs
    name: all' >c1.yml
check '"$AXOC" compile c1.yml -o c1.bin 2>/dev/null && "$AXORUN" c1.bin >c1.out 2>&1 && test "$(losses c1)" = "$(losses o0)"' \
  "name: all trains on that configuration's file (the rows)"
check 'test -f "$(dsnap ds-configs)/README.md" && ! grep -q "resolve/.*data/half" hub.log' \
  "the card is cached beside the data; the other configuration's file is not fetched"
dcfg c2 'test-org/ds-configs
    name: half' >c2.yml
check '"$AXOC" compile c2.yml -o c2.bin 2>/dev/null && "$AXOC" dump c2.bin >c2.dump && grep -q "$(dsnap ds-configs)/data/half/part.jsonl" c2.dump && ! grep -q "io.dataset.1 " c2.dump' \
  "name: half takes data/half/part.jsonl (data_files as one pattern: the train split)"
dcfg c3 'test-org/ds-configs
    name: [all, half]' >c3.yml
check '! "$AXOC" compile c3.yml -o c3.bin 2>c3.err && grep -q "name: expected one configuration name" c3.err' \
  "a list of names is refused (Axolotl 0.19's schema reads it as a DPO dataset and drops it)"
dcfg c5 'test-org/ds-split
test_datasets:
  - path: test-org/ds-split' >c5.yml
check '"$AXOC" compile c5.yml -o c5.bin 2>/dev/null && "$AXOC" dump c5.bin >c5.dump && grep -q "io.test_dataset.0 = .*data/test.jsonl" c5.dump' \
  "a test_datasets entry without split: the test split, as Axolotl loads it"
dcfg c4 'test-org/ds-configs
    name: nope' >c4.yml
check '! "$AXOC" compile c4.yml -o c4.bin 2>c4.err && grep -q "name \"nope\": its dataset card has no configuration of that name (it has: all, half)" c4.err' \
  "an unknown name: the configurations it has"
check 'HF_HUB_OFFLINE=1 "$AXOC" compile c1.yml -o c1b.bin --no-cache 2>/dev/null && cmp -s c1.bin c1b.bin && ! HF_HUB_OFFLINE=1 "$AXOC" compile c0.yml -o c0b.bin 2>/dev/null' \
  "offline, the cached card chooses as online"

# axoc fetch: the same resolution ahead of time (one machine downloads, a job's nodes read the cache offline)
check 'HF_HUB_CACHE=$T/hub3 "$AXOC" fetch model test-org/tiny --revision v1 >fm.out 2>/dev/null && test "$(cat fm.out)" = "$T/hub3/models--test-org--tiny/snapshots/$B" && test -f "$T/hub3/models--test-org--tiny/snapshots/$B/model.safetensors"' \
  "axoc fetch model: the snapshot of the revision, printed"
check 'HF_HUB_CACHE=$T/hub3 "$AXOC" fetch dataset test-org/ds-split --split test >fd.out 2>/dev/null && grep -q "datasets--test-org--ds-split/snapshots/.*/data/test.jsonl$" fd.out && HF_HUB_CACHE=$T/hub3 HF_HUB_OFFLINE=1 "$AXOC" fetch dataset test-org/ds-split --split test >fd2.out 2>/dev/null && cmp -s fd.out fd2.out' \
  "axoc fetch dataset: the split's file, then found offline"
check '! "$AXOC" fetch model ../x 2>fx.err && grep -q "expected a Hub repo id" fx.err && ! "$AXOC" fetch model 2>/dev/null' \
  "axoc fetch model with no repo id or a path: a usage error"

# huggingface_hub (where installed): it reads axo's cache offline, and axo reads one it filled
if python3 -c 'import huggingface_hub' 2>/dev/null; then
  check 'HF_HUB_OFFLINE=1 python3 -c "import sys; from huggingface_hub import snapshot_download as s; sys.exit(s(\"test-org/tiny\", local_files_only=True) != sys.argv[1])" "$(snap tiny "$A")"' \
    "huggingface_hub finds axo's snapshot offline"
  check 'HF_HUB_CACHE=$T/hfc python3 -c "from huggingface_hub import snapshot_download as s; s(\"test-org/sharded\")" >/dev/null 2>&1 && HF_HUB_CACHE=$T/hfc HF_HUB_OFFLINE=1 "$AXOC" compile s.yml -o s2.bin --no-cache 2>/dev/null && "$AXOC" dump s2.bin >s2.dump && grep -q "model.dir = \"$T/hfc/models--test-org--sharded/snapshots/" s2.dump' \
    "axo compiles offline from a cache huggingface_hub filled"
  check 'HF_HUB_CACHE=$T/hfc python3 -c "from huggingface_hub import snapshot_download as s; s(\"test-org/ds-split\", repo_type=\"dataset\")" >/dev/null 2>&1 && HF_HUB_CACHE=$T/hfc HF_HUB_OFFLINE=1 "$AXOC" compile d1.yml -o d1c.bin --no-cache 2>/dev/null && "$AXOC" dump d1c.bin >d1c.dump && grep -q "$T/hfc/datasets--test-org--ds-split/snapshots/.*/data/train.jsonl" d1c.dump' \
    "and a dataset huggingface_hub downloaded"
  check 'HF_HUB_OFFLINE=1 python3 -c "import sys; from huggingface_hub import hf_hub_download as h; sys.exit(h(\"test-org/ds-split\", \"data/train.jsonl\", repo_type=\"dataset\", local_files_only=True) != sys.argv[1])" "$(dsnap ds-split)/data/train.jsonl"' \
    "huggingface_hub finds axo's dataset file offline"
else
  echo "note: huggingface_hub is not installed; its cross-checks were not run"
fi
finish
