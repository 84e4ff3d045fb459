/* fuzz.h — what the fuzz targets (tests/fuzz/fuzz_*.c) share.
 *
 * Each target is a libFuzzer entry point, LLVMFuzzerTestOneInput, that feeds
 * one input a user could hand axo (a YAML config, a config.json, a
 * tokenizer.json, a chat template, a dataset, a safetensors file, a plan) to
 * the code that reads it. Two builds:
 *   - every build: the target linked with replay.c, whose main() runs each
 *     file of tests/fuzz/corpus/<target>/ through it (ctest fuzz_<target>;
 *     under the ASan+UBSan build too). The corpus holds seeds and every
 *     input a fuzzing run found a fault with, so each fault stays fixed.
 *   - AXO_FUZZ=ON with clang: the same target linked with libFuzzer for a
 *     coverage-guided run (tests/fuzz/README.md).
 * A target aborts (a finding) on a crash, a sanitizer report, a hang past
 * the fuzzer's -timeout, or when a reader refuses the input without saying
 * why: fz_check makes "bad input gets a clear error" a property. */
#ifndef AXO_FUZZ_H
#define AXO_FUZZ_H

#include "ir/base.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A directory of this process's own (removed at exit). */
const char *fz_tmpdir(void);
/* Writes data[0..n) to DIR/name (replaced) and returns the path (static
 * storage, one per name slot: at most 4 names in use at once). */
const char *fz_file(const char *name, const uint8_t *data, size_t n);
/* rc != 0 must come with at least one error whose message is not empty,
 * and rc == 0 with none: aborts otherwise, printing what came back. With
 * AXO_FUZZ_SAY set it prints what each input came to. */
void fz_check(int rc, const ax_diag *d, const char *what);
/* The source tree (AXO_SOURCE_DIR). */
const char *fz_src(void);
/* A copy of exactly n bytes (malloc'd), so that ASan sees a read past the end. */
uint8_t *fz_copy(const uint8_t *data, size_t n);
/* Aborts unless out[0..len) is JSON lines of objects, every line ended by a newline (with text_rows: each
 * object {"text": string}): what a dataset reader promises to write. */
void fz_check_rows(const char *out, size_t len, int text_rows);
/* Where a config goes so that the bundled configs' paths resolve: the
 * returned DIR/c/config.yml, with models/, deepspeed/ and data/ in DIR/c
 * and in DIR (for both models/... and ../models/...), all configs/' own;
 * data_rows > 0: data/ holds only the first rows of each bundled dataset.
 * Made on the first call. */
const char *fz_bundled_config(int data_rows);
/* Writes data[0..n) to DIR/name (replaced). */
void fz_put(const char *dir, const char *name, const void *data, size_t n);
/* Trains a 1-layer Llama (hidden 8, vocab 32; `base`, or NULL: a fresh one
 * initialised from the seed) for 1 step on 4 pre-tokenized rows, on the CPU
 * executor, with `extra` YAML lines; returns its output dir DIR/name (static
 * storage). Aborts on any failure. */
const char *fz_train_tiny(const char *name, const char *base, const char *extra);
/* A set of files (names relative to dir) of which an input replaces one.
 * fz_read_files reads their bytes at start-up (aborts on failure); with
 * AXO_FUZZ_WRITE_SEEDS=DIR it also writes DIR/seed-<basename> holding the
 * byte i then file i, the seeds. fz_put_files writes the set into dir with
 * file data[0] % n replaced by data[1..size) (size >= 1). */
void fz_read_files(const char *dir, const char *const *names, int n, uint8_t **bytes, size_t *len);
void fz_put_files(const char *dir, const char *const *names, int n, uint8_t *const *bytes, const size_t *len,
                  const uint8_t *data, size_t size);
/* `axoc compile` of config (deepspeed: an override or NULL) for world_size
 * ranks, no cache, checked with fz_check under `what`; its return code. */
int fz_compile(const char *config, const char *deepspeed, int world_size, const char *what);
/* `axoc preprocess config` showing one sample, checked with fz_check; its rc. */
int fz_preprocess(const char *config);

#endif
