#!/usr/bin/env bash
# Parquet datasets end to end (runtime/parquet.c): the bundled toy datasets as HF datasets' to_parquet wrote
# them (tests/reference/parquet/toy_*.parquet) train exactly as their JSON lines do, for chat_template,
# alpaca and pre-tokenized rows, with shards, a held-out split, a local folder and axoc preprocess; the
# file's format is Axolotl's choice (ds_type, else the name); damaged files and other formats fail clearly.
# usage: parquet.sh AXOC AXORUN SOURCE_DIR
set -uo pipefail
AXOC=$1 AXORUN=$2 SRC=$3
. "$SRC/tests/e2e/lib/harness.sh"
cd "$T" || exit 1
EX="$SRC/configs/examples"
D="$SRC/configs/data"
P="$SRC/tests/reference/parquet"
losses() { grep -o '"loss": *[0-9.e+-]*' "$1/train_log.jsonl"; }

# a config of example $1 reading dataset path $2 (extra lines from stdin)
cfg() {
  sed -e "s#\.\./#$SRC/configs/#g" -e "s#path: .*toy_[a-z]*\.jsonl#path: $2#" "$EX/$1.yml"
  cat
}

# 1. chat_template and alpaca: the parquet file trains as its JSON lines, bit for bit
for c in chat_template:toy_chat alpaca:toy_alpaca; do
  ex=${c%%:*} ds=${c##*:}
  cfg "$ex" "$D/$ds.jsonl" </dev/null >j-$ex.yml
  cfg "$ex" "$P/$ds.parquet" </dev/null >p-$ex.yml
  check '"$AXOC" compile j-$ex.yml -o j-$ex.bin 2>/dev/null && "$AXORUN" j-$ex.bin --max-steps 12 --output-dir oj-$ex >j-$ex.out 2>&1' \
    "$ex: train on the JSON lines"
  check '"$AXOC" compile p-$ex.yml -o p-$ex.bin 2>p-$ex.cerr && "$AXORUN" p-$ex.bin --max-steps 12 --output-dir op-$ex >p-$ex.out 2>&1' \
    "$ex: train on the parquet file"
  check 'grep -q "dataset .*$ds.parquet: 600 samples" p-$ex.out' "$ex: the parquet file's 600 rows are read"
  check 'test "$(sed -n "s/.*: \(600 samples.*\)/\1/p" p-$ex.out)" = "$(sed -n "s/.*: \(600 samples.*\)/\1/p" j-$ex.out)"' \
    "$ex: the same samples, tokens and labels"
  check 'test -s oj-$ex/train_log.jsonl && cmp -s <(losses oj-$ex) <(losses op-$ex)' "$ex: parquet = JSON lines, bit for bit"
done
check '"$AXOC" dump p-chat_template.bin >dump.txt && grep -q "attr io.dataset.0.parquet = 1" dump.txt' "the plan marks the file as parquet"

# 2. pre-tokenized rows (input_ids / labels lists); shards pick the same rows of either file
head -200 "$D/toy_count.jsonl" >count200.jsonl
for f in count200.jsonl:j "$P/toy_count.parquet":p; do
  sed -e "s#^base_model: .*#base_model: $SRC/configs/models/tiny-llama#" -e "s#path: data/toy_count.jsonl#path: ${f%:*}#" \
    "$SRC/configs/quickstart.yml" >pre-${f##*:}.yml
  sed 's#^\(  - path: .*\)#\1\n    shards: 3\n    shards_idx: 1#' pre-${f##*:}.yml >sh-${f##*:}.yml
  # one packed bin a micro-batch (Axolotl's layout for flash attention): its few held-out rows are one eval batch
  printf 'val_set_size: 0.1\neval_steps: 4\nflash_attention: true\n' >>sh-${f##*:}.yml
done
for k in pre sh; do
  check '"$AXOC" compile $k-j.yml -o $k-j.bin 2>/dev/null && "$AXORUN" $k-j.bin --max-steps 8 --output-dir o$k-j >/dev/null 2>&1' "$k: JSON lines"
  check '"$AXOC" compile $k-p.yml -o $k-p.bin 2>/dev/null && "$AXORUN" $k-p.bin --max-steps 8 --output-dir o$k-p >$k-p.out 2>&1' "$k: parquet"
  check 'test -s o$k-j/train_log.jsonl && cmp -s <(losses o$k-j) <(losses o$k-p)' "$k: pre-tokenized parquet = JSON lines, bit for bit"
done
check 'cmp -s <(grep -o "\"eval_loss\": *[0-9.e+-]*" osh-j/train_log.jsonl) <(grep -o "\"eval_loss\": *[0-9.e+-]*" osh-p/train_log.jsonl) && grep -q eval_loss osh-p/train_log.jsonl' \
  "shards + val_set_size: the same held-out rows"

# 3. a local folder of parquet shards, as HF datasets lays out a pushed dataset; axoc preprocess
mkdir -p folder/data && cp "$P/toy_chat.parquet" folder/data/train-00000-of-00001.parquet
cfg chat_template "$T/folder" </dev/null >dir.yml
check '"$AXOC" compile dir.yml -o dir.bin 2>dir.cerr && "$AXORUN" dir.bin --max-steps 12 --output-dir odir >/dev/null 2>&1' \
  "a folder of parquet files trains"
check 'cmp -s <(losses oj-chat_template) <(losses odir)' "the folder = the JSON lines, bit for bit"
check '"$AXOC" preprocess p-chat_template.yml -n 1 >pp.out 2>&1 && grep -q "^sample 0: <|begin_of_text|>" pp.out' \
  "axoc preprocess reads parquet"
cp "$D/toy_chat.jsonl" folder/data/train-00001-of-00002.jsonl
check '"$AXOC" compile dir.yml -o dir2.bin 2>/dev/null && "$AXOC" dump dir2.bin >dir2.dump && grep -q "io.dataset.0 = .*train-00000-of-00001.parquet" dir2.dump && ! grep -q "io.dataset.1 " dir2.dump' \
  "a split of a parquet and a JSON file: HF datasets' builder is the parquet one (a tie goes to parquet), the other file is left out"

# a folder laid out as a Hub dataset of several configurations (smoltalk's shape): its card chooses the files
mkdir -p subsets/data/all subsets/data/magpie
cp "$P/toy_chat.parquet" subsets/data/all/train-00000-of-00001.parquet
cp "$P/toy_alpaca.parquet" subsets/data/magpie/train-00000-of-00001.parquet
printf -- '---\nconfigs:\n- config_name: all\n  data_files:\n  - split: train\n    path: data/all/train-*\n- config_name: magpie\n  data_files:\n  - split: train\n    path: data/magpie/train-*\n---\n' >subsets/README.md
cfg chat_template "$T/subsets" </dev/null >sub0.yml
check '! "$AXOC" compile sub0.yml -o sub0.bin 2>sub0.err && grep -q "pick one with the entry.s .name:. (all, magpie)" sub0.err' \
  "a folder whose card has several configurations and no default: refused, not both subsets mixed"
sed 's#^\(  - path: .*\)#\1\n    name: all#' sub0.yml >sub1.yml
check '"$AXOC" compile sub1.yml -o sub1.bin 2>/dev/null && "$AXORUN" sub1.bin --max-steps 12 --output-dir osub1 >/dev/null 2>&1 && cmp -s <(losses oj-chat_template) <(losses osub1)' \
  "name: all trains on that configuration's parquet file, bit for bit as the JSON lines"

# a local folder with data_files: Axolotl hands them to load_dataset(<ds_type, else json>, data_files=...), which
# resolves them from its working directory, not in the folder; no card, no name
mkdir -p wd/data && cp "$D/toy_chat.jsonl" wd/data/chat.jsonl && cp "$P/toy_chat.parquet" wd/data/chat.parquet
cfg chat_template "$T/subsets" </dev/null | sed 's#^\(  - path: .*\)#\1\n    name: magpie\n    data_files: data/chat.jsonl#' >wdj.yml
check '(cd wd && "$AXOC" compile ../wdj.yml -o ../wdj.bin 2>../wdj.err) && "$AXOC" dump wdj.bin >wdj.dump && grep -q "io.dataset.0 = \"$(cd wd && pwd -P)/data/chat.jsonl\"" wdj.dump' \
  "a folder's data_files are found from the working directory (not in the folder; its card and name play no part)"
sed 's#data_files: data/chat.jsonl#data_files: data/chat.parquet#' wdj.yml >wdp.yml
check '! (cd wd && "$AXOC" compile ../wdp.yml -o ../wdp.bin 2>../wdp.err) && grep -q "Axolotl reads a local folder.s data_files with HF.s json loader unless ds_type says otherwise: set ds_type: parquet" wdp.err' \
  "parquet data_files of a folder without ds_type: Axolotl's json loader would fail; the error says what to set"
sed 's#^\(    data_files: .*\)#\1\n    ds_type: parquet#' wdp.yml >wdp2.yml
check '(cd wd && "$AXOC" compile ../wdp2.yml -o ../wdp2.bin 2>/dev/null) && "$AXOC" dump wdp2.bin >wdp2.dump && grep -q "io.dataset.0.parquet = 1" wdp2.dump' \
  "with ds_type: parquet they are read as Parquet"

# 4. the format as Axolotl's get_ds_type chooses it: ds_type, else the name
cp "$P/toy_chat.parquet" rows.data
cfg chat_template "$T/rows.data" <<<"" | sed 's#^\(  - path: .*\)#\1\n    ds_type: parquet#' >dst.yml
check '"$AXOC" compile dst.yml -o dst.bin 2>/dev/null && "$AXORUN" dst.bin --max-steps 12 --output-dir odst >/dev/null 2>&1 && cmp -s <(losses oj-chat_template) <(losses odst)' \
  "ds_type: parquet reads a file of any name"
sed 's#ds_type: parquet#ds_type: json#' dst.yml >dsj.yml
check '"$AXOC" compile dsj.yml -o dsj.bin 2>/dev/null && "$AXOC" dump dsj.bin >dsj.dump && ! grep -q "parquet = 1" dsj.dump' \
  "the same path read as json is another plan (the format is in the plan cache's key)"
sed 's#ds_type: parquet#ds_type: arrow#' dst.yml >arw.yml
check '! "$AXOC" compile arw.yml -o arw.bin 2>arw.err && grep -q "datasets\[0\].ds_type: expected json, parquet, text or csv" arw.err' \
  "ds_type: arrow is refused by key"
printf 'ARROW1' >table.arrow
cfg chat_template "$T/table.arrow" </dev/null >arw2.yml
check '! "$AXOC" compile arw2.yml -o arw2.bin 2>arw2.err && grep -q "is read by HF datasets. arrow loader" arw2.err' \
  "a .arrow path is refused at compile time, not read as JSON"

# $1.yml trained 6 steps (into o$1) has the losses of run $2, bit for bit
same6() { "$AXOC" compile $1.yml -o $1.bin 2>/dev/null && "$AXORUN" $1.bin --max-steps 6 --output-dir o$1 >/dev/null 2>&1 && cmp -s <(losses $2) <(losses o$1); }
# 4b. text files: HF datasets' text loader (ds_type: text, or .txt in the name), a row {"text": line} per line
python3 - "$D/toy_alpaca.jsonl" <<'PYEOF'
import json, sys
rows = [json.loads(l)["output"].replace("\n", " ") for l in open(sys.argv[1])][:300]
rows.insert(7, "")  # an empty line is a row too (too short to train: dropped as Axolotl drops it)
with open("lines.txt", "w", newline="") as f:  # CRLF and CR breaks: universal newlines
    f.write("".join(r + ("\r\n" if i % 3 == 0 else "\r" if i % 3 == 1 else "\n") for i, r in enumerate(rows)))
with open("lines.jsonl", "w") as f:
    f.write("".join(json.dumps({"text": r}) + "\n" for r in rows))
PYEOF
for f in lines.txt lines.jsonl; do
  cfg alpaca "$T/$f" </dev/null | sed 's#^    type: alpaca#    type: completion#' >c-${f#*.}.yml
done
check '"$AXOC" compile c-jsonl.yml -o c-jsonl.bin 2>/dev/null && "$AXORUN" c-jsonl.bin --max-steps 6 --output-dir oc-jsonl >c-jsonl.out 2>&1 && "$AXOC" compile c-txt.yml -o c-txt.bin 2>/dev/null && "$AXORUN" c-txt.bin --max-steps 6 --output-dir oc-txt >c-txt.out 2>&1' \
  "type: completion on a .txt file and on its rows as JSON lines"
check 'grep -q "dataset .*lines.txt: 300 samples" c-txt.out && test -s oc-jsonl/train_log.jsonl && cmp -s <(losses oc-jsonl) <(losses oc-txt)' \
  "a .txt file (CRLF, CR and LF breaks, an empty line) = its lines as {\"text\": ...} rows, bit for bit"
check '"$AXOC" dump c-txt.bin >ctxt.dump && grep -q "attr io.dataset.0.loader = \"text\"" ctxt.dump' "the plan names the text loader"
cp lines.txt lines.data
sed 's#lines.txt#lines.data#' c-txt.yml | sed 's#^\(  - path: .*\)#\1\n    ds_type: text#' >c-dst.yml
check 'same6 c-dst oc-jsonl' \
  "ds_type: text reads a file of any name"
mkdir -p txtdir && cp lines.txt txtdir/train.txt
cfg alpaca "$T/txtdir" </dev/null | sed 's#^    type: alpaca#    type: completion#' >c-dir.yml
check 'same6 c-dir oc-jsonl' \
  "a folder of .txt files: HF datasets' module inference picks the text loader"
: >empty.txt
cfg alpaca "$T/empty.txt" </dev/null | sed 's#^    type: alpaca#    type: completion#' >c-empty.yml
check '"$AXOC" compile c-empty.yml -o c-empty.bin 2>/dev/null && ! "$AXORUN" c-empty.bin --max-steps 2 --output-dir oc-empty >c-empty.out 2>&1 && grep -q "empty.txt: error: no row: an empty file" c-empty.out' \
  "an empty .txt file: an error, as HF datasets' text loader refuses it"
printf 'good line\nbad \377 byte\n' >bad.txt
cfg alpaca "$T/bad.txt" </dev/null | sed 's#^    type: alpaca#    type: completion#' >c-bad.yml
check '"$AXOC" compile c-bad.yml -o c-bad.bin 2>/dev/null && ! "$AXORUN" c-bad.bin --max-steps 2 --output-dir oc-bad >c-bad.out 2>&1 && grep -q "bad.txt:2: error: not UTF-8 at byte offset 14" c-bad.out' \
  "a byte that is not UTF-8: an error naming the file and line"

# 4c. CSV files: HF datasets' csv loader (pandas.read_csv in chunks, runtime/csv.h): ds_type: csv or .csv in the name
python3 - "$D/toy_alpaca.jsonl" <<'PYEOF'
import csv, json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
with open("alpaca.csv", "w", newline="") as f:  # Python's csv module quotes fields with commas, quotes, line breaks
    w = csv.DictWriter(f, fieldnames=["instruction", "input", "output"], lineterminator="\r\n")
    w.writeheader()
    w.writerows({k: r[k] for k in ("instruction", "input", "output")} for r in rows)
with open("alpaca.tsv", "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=["instruction", "input", "output"], delimiter="\t")
    w.writeheader()
    w.writerows({k: r[k] for k in ("instruction", "input", "output")} for r in rows)
# pandas reads an empty input as NaN, which HF datasets stores as null: the JSON lines say so too
with open("alpaca_na.jsonl", "w") as f:
    f.write("".join(json.dumps({k: (r[k] if r[k] != "" else None) for k in ("instruction", "input", "output")}) + "\n" for r in rows))
PYEOF
cfg alpaca "$T/alpaca_na.jsonl" </dev/null >a-na.yml
cfg alpaca "$T/alpaca.csv" </dev/null >a-csv.yml
check '"$AXOC" compile a-na.yml -o a-na.bin 2>/dev/null && "$AXORUN" a-na.bin --max-steps 6 --output-dir oa-na >/dev/null 2>&1 && "$AXOC" compile a-csv.yml -o a-csv.bin 2>/dev/null && "$AXORUN" a-csv.bin --max-steps 6 --output-dir oa-csv >a-csv.out 2>&1' \
  "type: alpaca on a .csv file and on its rows as JSON lines"
check 'grep -q "dataset .*alpaca.csv: 600 samples" a-csv.out && test -s oa-na/train_log.jsonl && cmp -s <(losses oa-na) <(losses oa-csv)' \
  "a .csv file (quoted commas and line breaks, CRLF) = its rows, bit for bit"
check '"$AXORUN" j-alpaca.bin --max-steps 6 --output-dir oj6 >/dev/null 2>&1 && cmp -s <(losses oj6) <(losses oa-csv)' \
  "an empty input read as null trains as the original empty string (alpaca's prompt without input either way)"
check '"$AXOC" dump a-csv.bin >acsv.dump && grep -q "attr io.dataset.0.loader = \"csv\"" acsv.dump' "the plan names the csv loader"
mkdir -p tsvdir && cp alpaca.tsv tsvdir/train.tsv
cfg alpaca "$T/tsvdir" </dev/null >a-tsv.yml
check 'same6 a-tsv oa-na' \
  "a folder of .tsv files: HF datasets' csv loader with sep \"\\t\" (its module inference), bit for bit"
cp alpaca.csv alpaca.data
sed 's#alpaca.csv#alpaca.data#' a-csv.yml | sed 's#^\(  - path: .*\)#\1\n    ds_type: csv#' >a-dst.yml
check 'same6 a-dst oa-na' \
  "ds_type: csv reads a file of any name"
printf 'instruction,input,output\n' >hdr.csv
cfg alpaca "$T/hdr.csv" </dev/null >a-hdr.yml
check '"$AXOC" compile a-hdr.yml -o a-hdr.bin 2>/dev/null && ! "$AXORUN" a-hdr.bin --max-steps 2 --output-dir oa-hdr >a-hdr.out 2>&1 && grep -q "hdr.csv: error: no row under the header" a-hdr.out' \
  "a .csv file of a header alone: an error, as HF datasets refuses it"
printf 'instruction,input,output\n1,2,3\n' >nums.csv
cfg alpaca "$T/nums.csv" </dev/null >a-num.yml
check '"$AXOC" compile a-num.yml -o a-num.bin 2>/dev/null && ! "$AXORUN" a-num.bin --max-steps 2 --output-dir oa-num >a-num.out 2>&1 && grep -q "nums.csv:1.*expected a string" a-num.out' \
  "a column pandas reads as numbers is no text: the error names the file and row"

# 5. split slices (HF's "train[:500]", which Axolotl keeps): the rows of the slice, taken before shards
with_split() { sed "s#^\(  - path: .*\)#\1\n    split: \"$1\"#" "$2"; }
sed -n '1,100p' "$D/toy_chat.jsonl" >first100.jsonl
cfg chat_template "$T/first100.jsonl" </dev/null >f100.yml
with_split 'train[:100]' j-chat_template.yml >s100.yml
check '"$AXOC" compile f100.yml -o f100.bin 2>/dev/null && "$AXORUN" f100.bin --max-steps 6 --output-dir of100 >/dev/null 2>&1 && "$AXOC" compile s100.yml -o s100.bin 2>/dev/null && "$AXORUN" s100.bin --max-steps 6 --output-dir os100 >s100.out 2>&1 && grep -q ": 100 samples" s100.out && cmp -s <(losses of100) <(losses os100)' \
  "split: train[:100] of a JSON lines file trains as its first 100 rows"
sed -n '61,120p' "$D/toy_chat.jsonl" >mid60.jsonl
cfg chat_template "$T/mid60.jsonl" </dev/null >m60.yml
with_split 'train[10%:20%]' p-chat_template.yml >sp.yml
check '"$AXOC" compile m60.yml -o m60.bin 2>/dev/null && "$AXORUN" m60.bin --max-steps 6 --output-dir om60 >/dev/null 2>&1 && "$AXOC" compile sp.yml -o sp.bin 2>/dev/null && "$AXORUN" sp.bin --max-steps 6 --output-dir osp >sp.out 2>&1 && grep -q ": 60 samples" sp.out && cmp -s <(losses om60) <(losses osp)' \
  "split: train[10%:20%] of the parquet file: its rows 60 to 120"
mkdir -p halves && sed -n '1,300p' "$D/toy_chat.jsonl" >halves/train-0.jsonl && sed -n '301,600p' "$D/toy_chat.jsonl" >halves/train-1.jsonl
sed -n '151,450p' "$D/toy_chat.jsonl" >mid300.jsonl
cfg chat_template "$T/mid300.jsonl" </dev/null >m300.yml
cfg chat_template "$T/halves" </dev/null | with_split 'train[25%:-25%]' /dev/stdin >sh.yml
check '"$AXOC" compile m300.yml -o m300.bin 2>/dev/null && "$AXORUN" m300.bin --max-steps 6 --output-dir om300 >/dev/null 2>&1 && "$AXOC" compile sh.yml -o sh.bin 2>/dev/null && "$AXORUN" sh.bin --max-steps 6 --output-dir osh >sh.out 2>&1 && cmp -s <(losses om300) <(losses osh)' \
  "a slice of a split of two files counts their rows together (rows 150 to 450 across both)"
with_split 'train[700:]' j-chat_template.yml >sempty.yml
with_split '' j-chat_template.yml >snone.yml
check '"$AXOC" compile sempty.yml -o sempty.bin 2>/dev/null && ! "$AXORUN" sempty.bin --max-steps 2 --output-dir osempty >sempty.out 2>&1 && grep -q "selects none of them" sempty.out && "$AXOC" compile snone.yml -o snone.bin 2>/dev/null' \
  "a slice of no row is an error (as in HF datasets); split: \"\" is no split (as in Axolotl)"
with_split 'test' j-chat_template.yml >stest.yml
with_split 'train[:5%' j-chat_template.yml >sbad.yml
check '! "$AXOC" compile stest.yml -o stest.bin 2>stest.err && grep -q "a single file is the one split .train." stest.err && ! "$AXOC" compile sbad.yml -o sbad.bin 2>sbad.err && grep -q "expected a split name, then an optional \[from:to\] slice" sbad.err' \
  "split: test of one file, and a malformed slice, are errors"

# 6. damaged files: an error naming the file, no training
head -c 9000 "$P/toy_chat.parquet" >cut.parquet
cfg chat_template "$T/cut.parquet" </dev/null >cut.yml
check '"$AXOC" compile cut.yml -o cut.bin 2>/dev/null && ! "$AXORUN" cut.bin --max-steps 2 --output-dir ocut >cut.out 2>&1' \
  "a cut parquet file stops the run"
check 'grep -q "cut.parquet: error: not a Parquet file" cut.out && ! test -e ocut/train_log.jsonl' "the error names the file"
cp "$D/toy_chat.jsonl" notpq.parquet
cfg chat_template "$T/notpq.parquet" </dev/null >notpq.yml
check '"$AXOC" compile notpq.yml -o notpq.bin 2>/dev/null && ! "$AXORUN" notpq.bin --max-steps 2 --output-dir onotpq >notpq.out 2>&1 && grep -q "notpq.parquet: error: not a Parquet file" notpq.out' \
  "JSON lines named .parquet: read as parquet, as Axolotl does, and refused"
python3 - "$P/toy_chat.parquet" flip.parquet <<'EOF'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
b[200] ^= 0x55  # inside the first column chunk's pages
open(sys.argv[2], "wb").write(b)
EOF
cfg chat_template "$T/flip.parquet" </dev/null >flip.yml
"$AXOC" compile flip.yml -o flip.bin 2>/dev/null
"$AXORUN" flip.bin --max-steps 2 --output-dir oflip >flip.out 2>&1
rc=$?
check 'test $rc -ne 0 && grep -q "flip.parquet.*error" flip.out || { test $rc -eq 0 && test -s oflip/train_log.jsonl; }' \
  "a damaged byte: an error naming the file, or (a byte no check covers) a normal run"

finish
