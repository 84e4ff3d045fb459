/* test_sharded_ckpt.c — SHARDED_STATE_DICT checkpoints (runtime/sharded_ckpt.c):
 * on 2, 3 and 4 local ranks of an FSDP (ZeRO-3) plan, after a training
 * step, each rank writes its own rows; the index says which; the tensors
 * reassembled from the rank files equal a FULL_STATE_DICT save bit for bit
 * (f32 and bf16), and so does `merge`'s model.safetensors. A rank whose
 * range of a small tensor is empty holds no entry for it. An existing
 * checkpoint is kept unless overwrite. A missing or truncated rank file,
 * rows that do not tile a tensor, a tensor missing from its file or a
 * missing index are clear errors naming the file. */
#include "frontend/lower.h"
#include "passes/passes.h"
#include "runtime/launch.h"
#include "runtime/sharded_ckpt.h"
#include "tests/check.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { B = 2, S = 8 };

static char *plan_text(int world, int bf16) {
    fe_config c;
    fe_model m;
    memset(&m, 0, sizeof m);
    m.arch = FE_ARCH_QWEN3; /* q/k norms of head_dim 6: on 4 ranks rows 2,2,2,0 */
    m.arch_name = "Qwen3ForCausalLM";
    m.dir = "/nonexistent";
    m.hidden_size = 24;
    m.intermediate_size = 40;
    m.num_hidden_layers = 2;
    m.num_attention_heads = 4;
    m.num_key_value_heads = 2;
    m.head_dim = 6;
    m.vocab_size = 50; /* 50 rows: uneven blocks on 3 and 4 ranks */
    m.rope_theta = 10000;
    m.rms_norm_eps = 1e-6;
    m.qk_norm = 1;
    m.tie_word_embeddings = 1;
    memset(&c, 0, sizeof c);
    c.micro_batch_size = B;
    c.sequence_len = S;
    c.gradient_accumulation_steps = 1;
    c.num_epochs = 1;
    c.sequence_parallel_degree = 1;
    c.seed = 11;
    c.bf16 = bf16;
    c.output_dir = "/tmp";
    ax_diag d;
    ax_diag_init(&d);
    ir_module *mod = ir_module_create();
    int32_t loss;
    CHECK(fe_lower(&c, &m, world, mod, &loss, &d) == 0);
    pass_ctx pc = {.m = mod, .loss = loss,
                   .opt = {.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .max_grad_norm = 1.0, .master_f32 = bf16},
                   .shard = {3, 1, 0, 0}, .bucket = {PASS_BUCKET_UNIT, 0}};
    CHECK(pass_pipeline(&pc, &d) == 0);
    ax_diag_print(&d, stderr);
    ax_diag_free(&d);
    ax_buf t = {0};
    ir_print(mod, &t);
    ir_module_destroy(mod);
    return ax_buf_steal(&t);
}

typedef struct job {
    char *text;
    const char *sharded, *full; /* dirs */
    int overwrite;
    int save_only;              /* skip training (second save into an existing dir) */
    int rc[8];                  /* per rank: rt_session_save_sharded's status */
    ax_diag diags[8];
} job;

static int rank_fn(rt_comm *c, void *arg) {
    job *J = arg;
    int r = rt_comm_rank(c);
    ax_diag *d = &J->diags[r];
    ir_module *m = ir_parse(J->text, strlen(J->text), "plan", d);
    rt_session s;
    rt_rank_coll rc;
    int ok = m && rt_session_from_module(m, &s, d) == 0 && rt_attach_comm(&s, c, &rc, d) == 0 &&
             rt_session_init_weights(&s, NULL, d) == 0;
    int32_t ids[B * S], tgt[B * S], pos[B * S], seg[B * S];
    for (int i = 0; i < B * S; i++) {
        ids[i] = 1 + (i * 7 + r * 13) % 49;
        tgt[i] = (i + 1) % S ? 1 + ((i + 1) * 7 + r * 13) % 49 : -100;
        pos[i] = i % S;
        seg[i] = 0;
    }
    if (ok && !J->save_only)
        ok = rt_session_micro_step(&s, ids, tgt, pos, seg, 0.02f, d) == 0 && rt_session_opt_step(&s, 5e-2f, 1, d) == 0;
    J->rc[r] = ok ? rt_session_save_sharded(&s, J->sharded, J->overwrite, d) : -1;
    if (ok && J->full) ok = rt_session_save(&s, J->full, 1, d) == 0;
    if (m) {
        rt_detach_comm(&rc);
        rt_session_close(&s);
    }
    return ok && J->rc[r] == 0 ? 0 : 1;
}

static int run_job(job *J, int world) {
    for (int r = 0; r < world; r++) ax_diag_init(&J->diags[r]);
    int rc = rt_local_run(world, rank_fn, J);
    return rc;
}

static void free_diags(job *J, int world, int print) {
    for (int r = 0; r < world; r++) {
        if (print) ax_diag_print(&J->diags[r], stderr);
        ax_diag_free(&J->diags[r]);
    }
}

static int count_entries(const char *dir, const char *prefix) {
    DIR *dh = opendir(dir);
    int n = 0;
    if (!dh) return -1;
    for (struct dirent *e; (e = readdir(dh));) n += !strncmp(e->d_name, prefix, strlen(prefix));
    closedir(dh);
    return n;
}

/* Whether the reassembled checkpoint equals the FULL save's
 * model.safetensors bit for bit (names, dtypes, shapes, bytes). */
static int same_as_full(const rt_sharded_ckpt *c, const char *full_path, const char *what, int report) {
    rt_st_file f;
    ax_diag d;
    ax_diag_init(&d);
    if (rt_st_open(full_path, &f, &d) != 0) {
        ax_diag_print(&d, stderr);
        ax_diag_free(&d);
        return 0;
    }
    ax_diag_free(&d);
    int same = c->ntensors == f.ntensors && c->ntensors > 0;
    for (int i = 0; same && i < c->ntensors; i++) {
        const rt_sharded_tensor *t = &c->tensors[i];
        const rt_st_tensor *u = rt_st_find(&f, t->name);
        same = u && u->dtype == t->dtype && u->rank == t->rank && (size_t)(u->end - u->begin) == t->nbytes &&
               !memcmp(u->shape, t->shape, sizeof(int64_t) * (size_t)t->rank) && !memcmp(rt_st_data(&f, u), t->data, t->nbytes);
        if (!same && report) fprintf(stderr, "%s: tensor %s differs from the FULL_STATE_DICT save\n", what, t->name);
    }
    rt_st_close(&f);
    return same;
}

static void expect_load_error(const char *dir, const char *where, const char *msg) {
    rt_sharded_ckpt c;
    ax_diag d;
    ax_diag_init(&d);
    CHECK_MSG(rt_sharded_load(dir, &c, &d) != 0, "loaded a damaged checkpoint (expected: %s)", msg);
    int found = 0;
    for (int i = 0; i < d.n; i++)
        found |= d.entries[i].sev == AX_SEV_ERROR && strstr(d.entries[i].where, where) && strstr(d.entries[i].msg, msg);
    CHECK_MSG(found, "no error at \"%s\" saying \"%s\"", where, msg);
    if (!found) ax_diag_print(&d, stderr);
    ax_diag_free(&d);
}

static void run_cmd(const char *fmt, const char *a, const char *b) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, fmt, a, b);
    CHECK_MSG(system(cmd) == 0, "%s", cmd);
}

static char root[64]; /* the test's temporary directory */

static void test_world(int world, int bf16) {
    char sharded[256], full[256], merged[256], fullst[512], path[512], what[64];
    snprintf(what, sizeof what, "%d ranks, %s", world, bf16 ? "bf16" : "f32");
    snprintf(sharded, sizeof sharded, "%s/w%d/checkpoint-1", root, world);
    snprintf(full, sizeof full, "%s/w%d/full", root, world);
    snprintf(merged, sizeof merged, "%s/w%d/merged", root, world);
    snprintf(fullst, sizeof fullst, "%s/model.safetensors", full);
    job J = {.text = plan_text(world, bf16), .sharded = sharded, .full = full};
    CHECK_MSG(run_job(&J, world) == 0, "%s: training and saving failed", what);
    free_diags(&J, world, 1);
    /* the layout: an index and one file per rank, nothing else, no temp dirs */
    CHECK_EQ(count_entries(sharded, "model-rank"), world);
    snprintf(path, sizeof path, "%s/" RT_SHARDED_INDEX, sharded);
    CHECK(ax_file_exists(path));
    snprintf(path, sizeof path, "%s/w%d", root, world);
    CHECK_EQ(count_entries(path, "checkpoint-1."), 0);
    /* each rank file holds only its rows */
    char fname[512];
    snprintf(fname, sizeof fname, "%s/model-rank%05d-of-%05d.safetensors", sharded, world - 1, world);
    rt_st_file f;
    ax_diag d;
    ax_diag_init(&d);
    CHECK(rt_st_open(fname, &f, &d) == 0);
    const rt_st_tensor *e = rt_st_find(&f, "model.embed_tokens.weight");
    int64_t c50 = (50 + world - 1) / world;
    CHECK_MSG(e && e->shape[0] == 50 - (world - 1) * c50, "%s: last rank holds %lld embedding rows", what,
              e ? (long long)e->shape[0] : -1LL);
    const rt_st_tensor *qn = rt_st_find(&f, "model.layers.0.self_attn.q_norm.weight");
    if (world == 4)
        CHECK_MSG(!qn, "%s: the last rank holds q_norm rows it does not have", what);
    else
        CHECK(qn && qn->shape[0] == 6 - (world - 1) * ((6 + world - 1) / world));
    rt_st_close(&f);
    ax_diag_free(&d);
    /* reassembled == FULL_STATE_DICT, bit for bit; merge writes the same file */
    rt_sharded_ckpt c;
    ax_diag_init(&d);
    CHECK(rt_sharded_load(sharded, &c, &d) == 0);
    ax_diag_print(&d, stderr);
    CHECK_EQ(c.world, world);
    CHECK_MSG(same_as_full(&c, fullst, what, 1), "%s: reassembled tensors differ from FULL_STATE_DICT", what);
    rt_sharded_free(&c);
    CHECK(rt_sharded_merge(sharded, merged, 0, &d) == 0);
    snprintf(path, sizeof path, "%s/model.safetensors", merged);
    run_cmd("cmp -s %s %s", path, fullst);
    CHECK(rt_sharded_merge(sharded, merged, 0, &d) != 0 && ax_diag_contains(&d, "refusing to replace it"));
    CHECK(rt_sharded_merge(sharded, sharded, 1, &d) != 0 && ax_diag_contains(&d, "is the checkpoint being merged"));
    ax_diag_free(&d);
    /* an existing checkpoint: kept without overwrite (every rank fails, nothing changes) */
    job J2 = {.text = J.text, .sharded = sharded, .save_only = 1};
    CHECK(run_job(&J2, world) != 0);
    CHECK(ax_diag_contains(&J2.diags[0], "already exists; refusing to replace it"));
    for (int r = 0; r < world; r++) CHECK_MSG(J2.rc[r] != 0, "%s: rank %d went on after rank 0 refused", what, r);
    free_diags(&J2, world, 0);
    ax_diag_init(&d);
    CHECK(rt_sharded_load(sharded, &c, &d) == 0);
    CHECK_MSG(same_as_full(&c, fullst, what, 1), "%s: a refused save changed the checkpoint", what);
    rt_sharded_free(&c);
    ax_diag_free(&d);
    /* ... and replaced with overwrite (untrained weights now: differs from full) */
    job J3 = {.text = J.text, .sharded = sharded, .save_only = 1, .overwrite = 1};
    CHECK(run_job(&J3, world) == 0);
    free_diags(&J3, world, 1);
    ax_diag_init(&d);
    CHECK(rt_sharded_load(sharded, &c, &d) == 0);
    snprintf(path, sizeof path, "%s/w%d", root, world);
    CHECK_EQ(count_entries(path, "checkpoint-1."), 0); /* the old one is gone, no temp left */
    CHECK_MSG(!same_as_full(&c, fullst, what, 0), "%s: --overwrite did not replace the checkpoint", what);
    rt_sharded_free(&c);
    ax_diag_free(&d);
    free(J.text);
}

static void test_damage(void) {
    char base[256], dmg[256], p1[512], p2[1024];
    snprintf(base, sizeof base, "%s/w2/checkpoint-1", root);
    snprintf(dmg, sizeof dmg, "%s/damaged", root);
    /* a missing rank file */
    run_cmd("rm -rf %s && mkdir -p %s", dmg, dmg);
    run_cmd("cp -r %s %s/", base, dmg);
    snprintf(p1, sizeof p1, "%s/checkpoint-1", dmg);
    snprintf(p2, sizeof p2, "%s/model-rank00001-of-00002.safetensors", p1);
    unlink(p2);
    expect_load_error(p1, "model-rank00001-of-00002.safetensors", "cannot open");
    expect_load_error(p1, "model-rank00001-of-00002.safetensors", "rank file 1 of the sharded checkpoint");
    /* a truncated one */
    run_cmd("rm -rf %s && mkdir -p %s", dmg, dmg);
    run_cmd("cp -r %s %s/", base, dmg);
    snprintf(p2, sizeof p2, "%s/model-rank00000-of-00002.safetensors", p1);
    struct stat st;
    CHECK(stat(p2, &st) == 0);
    CHECK(truncate(p2, st.st_size / 2) == 0);
    expect_load_error(p1, "model-rank00000-of-00002.safetensors", "data_offsets");
    CHECK(truncate(p2, 4) == 0);
    expect_load_error(p1, "model-rank00000-of-00002.safetensors", "too short");
    /* rows that do not tile a tensor */
    run_cmd("rm -rf %s && mkdir -p %s", dmg, dmg);
    run_cmd("cp -r %s %s/", base, dmg);
    snprintf(p2, sizeof p2, "%s/" RT_SHARDED_INDEX, p1);
    run_cmd("sed -i 's/\\[\\[0,25\\],\\[25,50\\]\\]/[[0,25],[26,50]]/' %s%s", p2, "");
    expect_load_error(p1, RT_SHARDED_INDEX, "must tile dim 0");
    /* a tensor the index places in a file that lacks it */
    run_cmd("rm -rf %s && mkdir -p %s", dmg, dmg);
    run_cmd("cp -r %s %s/", base, dmg);
    run_cmd("sed -i 's/\"model.norm.weight\"/\"model.norm2.weight\"/' %s%s", p2, "");
    expect_load_error(p1, "model-rank00000-of-00002.safetensors", "tensor \"model.norm2.weight\" is missing");
    /* a file name that leaves the directory */
    run_cmd("rm -rf %s && mkdir -p %s", dmg, dmg);
    run_cmd("cp -r %s %s/", base, dmg);
    run_cmd("sed -i 's#\"model-rank00001-of-00002.safetensors\"#\"../x.safetensors\"#' %s%s", p2, "");
    expect_load_error(p1, RT_SHARDED_INDEX, "plain file names");
    /* no index: not a sharded checkpoint (e.g. an interrupted one) */
    unlink(p2);
    expect_load_error(p1, "checkpoint-1", "not a SHARDED_STATE_DICT checkpoint");
    run_cmd("rm -rf %s%s", dmg, "");
}

int main(void) {
    snprintf(root, sizeof root, "/tmp/axo-sharded-XXXXXX");
    CHECK(mkdtemp(root) != NULL);
    test_world(2, 0);
    test_world(3, 0);
    test_world(4, 1);
    test_damage();
    run_cmd("rm -rf %s%s", root, "");
    return check_done();
}
