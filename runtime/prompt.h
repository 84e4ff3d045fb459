/* prompt.h — Axolotl's dataset types, turning rows of text into token ids
 * and labels the way Axolotl's prompt strategies do, so a config written for
 * Axolotl trains on the same tokens:
 *
 *  completion     row[field] (default "text") tokenized with the tokenizer's
 *                 special tokens, truncated to 64 x sequence_len, EOS
 *                 appended; cut into consecutive sequence_len chunks; every
 *                 token is a label.
 *  user_defined   (`type:` a mapping: field_instruction, field_input,
 *                 field_output, field_system, format, no_input_format,
 *                 system_format, system_prompt) alpaca's tokenization with
 *                 the prompt system_format.format(system) (when the row's
 *                 system, else system_prompt, is not empty) + format.format(
 *                 instruction, input), or no_input_format.format(instruction)
 *                 when the input is empty, as Axolotl's user_defined.
 *  alpaca         instruction / input / output with Alpaca's prompt
 *                 ("alpaca:chat": the USER:/ASSISTANT: style). The prompt and
 *                 the response are tokenized separately (prompt: the
 *                 tokenizer's specials, no EOS; response: EOS appended, BOS
 *                 stripped), each truncated to sequence_len. Prompt labels
 *                 are -100 unless train_on_inputs.
 *  chat_template  row[field_messages] rendered with a chat template and
 *                 tokenized without added specials. The template is one of
 *                 axo's built-in C renderers (chatml, llama3, qwen_25, qwen3,
 *                 gemma, gemma3, phi_3) or Jinja text (the tokenizer's own
 *                 `tokenizer_default`, or `chat_template: jinja` with
 *                 chat_template_jinja) run by runtime/jinja.c with the
 *                 variables transformers' apply_chat_template gives it:
 *                 messages (each message's role and content, its other
 *                 non-null fields, "training" from message_field_training,
 *                 reasoning also as reasoning_content and thinking; tool
 *                 calls' JSON-string arguments parsed), tools (row["tools"]),
 *                 documents (None), add_generation_prompt, the tokenizer's
 *                 named special tokens (bos_token, eos_token, unk_token,
 *                 pad_token, ...) and chat_template_kwargs. Tool messages
 *                 need a Jinja template.
 *                 A turn whose role is in roles_to_train (or every turn with
 *                 train_on_inputs, or the message's own training flag) has
 *                 its content tokens as labels: the span is found as Axolotl
 *                 0.19 does, by rendering the whole conversation again with
 *                 that turn's content replaced by each of two placeholders,
 *                 taking the union of the differing character spans and
 *                 mapping it to tokens through their offsets (where the
 *                 tokens do not spell the text back, e.g. SentencePiece's
 *                 added "▁", by its fallback: the ids of the conversation up
 *                 to the turn with the real content and with a placeholder).
 *                 The end-of-turn token (eot_tokens, default the EOS) within
 *                 3 tokens after the span is a label per train_on_eot /
 *                 train_on_eos: "turn" (after trained turns), "all", "last",
 *                 or "none". Role headers never are.
 *                 A message's content (and reasoning_content) may be a
 *                 list of parts ({"text"|"content"|"value": str}, others
 *                 add nothing): the texts are joined; parts that carry
 *                 "train" (or "weight") make a training detail. A training
 *                 detail (those, or the message's message_field_training_
 *                 detail field: [{begin_offset, end_offset, train}] in
 *                 characters, end inclusive) trains only the tokens a
 *                 detail with a true train holds entirely, counted as
 *                 Axolotl's get_offsets_for_train_detail counts them (the
 *                 text tokenized alone, with the tokenizer's offsets); a
 *                 message with one and no training flag trains when it is
 *                 not empty. A reasoning detail is placed on the span of the
 *                 reasoning alone, a content detail (when there is
 *                 reasoning) on that of the content alone.
 *                 The reasoning is what Axolotl's transform_message leaves
 *                 under template_thinking_key (reasoning_content): a field
 *                 mapped to it in message_property_mappings (any key may be
 *                 mapped), else the message's own field of that name when
 *                 the template reads it; split_thinking takes an
 *                 assistant's <think>/<reasoning>/<|begin_of_thought|>
 *                 block out of its content into it (and the content from
 *                 <|begin_of_solution|>...<|end_of_solution|> if there).
 *  dpo            (rl: dpo) one preference pair a row, as Axolotl 0.19's DPO
 *                 strategies and TRL 1.9's DPOTrainer make it. The strategy
 *                 gives the texts prompt, chosen and rejected: passthrough
 *                 (no type: the row's own), chatml.* and llama3.* (default,
 *                 argilla_chat, icr, intel, prompt_pairs, ultra: the
 *                 template's turns around the row's fields, the completion
 *                 closed by <|im_end|> / <|eot_id|>), user_defined (Python
 *                 format strings), or chat_template.default: the prompt is
 *                 row[field_messages] rendered with the chat template and its
 *                 generation prompt; a completion (row[field_chosen]: a
 *                 string, a message, or a list whose last message counts) is
 *                 rendered after a dummy user turn, and its text is what
 *                 follows the first occurrence of its content, trailing
 *                 whitespace stripped (Python's find and rstrip). A pair whose prompt + chosen or prompt +
 *                 rejected is longer than sequence_len (tokens without
 *                 specials, Axolotl's excess_length_strategy drop) gives no
 *                 sample; else two: prompt + chosen, then prompt + rejected,
 *                 tokenized as TRL does (eos_token appended to a completion
 *                 that does not end with it; prompt and prompt + completion
 *                 each with the tokenizer's specials, the completion being
 *                 the ids after the prompt's), labels -100 on the prompt.
 *                 Both samples keep a prompt of sequence_len tokens or more:
 *                 TRL drops those pairs after the merge shuffle
 *                 (runtime/dpo.c), which must see them.
 *  input_output   Axolotl's template-free format: row["segments"], a list of
 *                 {"label": bool, "text": str}, each tokenized without added
 *                 specials and concatenated; a segment's tokens are labels
 *                 when its label is true (or with train_on_inputs).
 *
 * The spec of a dataset and the tokenizer setup travel in the plan as JSON
 * (rt_ds_spec_json / rt_tok_setup_json) so axoc validates them once and
 * axorun reads them back unchanged.
 */
#ifndef RT_PROMPT_H
#define RT_PROMPT_H

#include "ir/base.h"
#include "runtime/tokenizer.h"

#include <jansson.h>

typedef enum { RT_FMT_TOKENIZED, RT_FMT_COMPLETION, RT_FMT_ALPACA, RT_FMT_CHAT, RT_FMT_INPUT_OUTPUT, RT_FMT_DPO } rt_fmt;
#define RT_FMT_COUNT 6
/* rl: dpo's dataset types (Axolotl's prompt_strategies/dpo): the family, and the variant of chatml and llama3
 * (and chat_template's argilla_chat, zephyr's nectar) */
typedef enum { RT_DPO_PASSTHROUGH, RT_DPO_CHATML, RT_DPO_LLAMA3, RT_DPO_USER, RT_DPO_CHAT, RT_DPO_ZEPHYR } rt_dpo_family;
typedef enum {
    RT_DPOV_DEFAULT, RT_DPOV_ARGILLA_CHAT, RT_DPOV_ICR, RT_DPOV_INTEL, RT_DPOV_PROMPT_PAIRS, RT_DPOV_ULTRA, RT_DPOV_NECTAR,
    RT_DPOV_ORPO_ARGILLA /* rl: orpo's chat_template.argilla (Axolotl's prompt_strategies/orpo), RT_DPO_CHAT's */
} rt_dpo_variant;
#define RT_DPOV_COUNT 8
extern const char *const rt_dpo_variant_names[RT_DPOV_COUNT]; /* "default", "argilla_chat", ... */
extern const char *const rt_fmt_names[RT_FMT_COUNT]; /* "", "completion", ... as Axolotl names them */
typedef enum { RT_TPL_CHATML, RT_TPL_LLAMA3, RT_TPL_QWEN25, RT_TPL_GEMMA, RT_TPL_PHI3, RT_TPL_QWEN3, RT_TPL_GEMMA3 } rt_tpl;
#define RT_TPL_COUNT 7
typedef enum { RT_EOT_NONE, RT_EOT_TURN, RT_EOT_ALL, RT_EOT_LAST } rt_eot_mode;

#define RT_MAX_ROLES 16

typedef struct rt_ds_spec {
    rt_fmt fmt;
    const char *field;          /* completion: the text column ("text") */
    const char *field_messages; /* "messages" */
    const char *role_key, *content_key; /* message_property_mappings: "role", "content" */
    const char *field_system;   /* "system": a row-level system prompt */
    const char *training_key;   /* message_field_training, or NULL */
    const char *training_detail_key; /* message_field_training_detail, or NULL */
    const char *thinking_key;   /* template_thinking_key: the message key of reasoning ("reasoning_content") */
    int split_thinking;         /* split_thinking: an assistant's <think>..</think> taken out of its content */
    /* message_property_mappings beyond role and content: the template's key <- the message's field */
    const char *prop_to[RT_MAX_ROLES], *prop_from[RT_MAX_ROLES];
    int nprop;
    int drop_system_message;
    rt_tpl tpl;
    const char *jinja;          /* a Jinja template's text, used instead of tpl; or NULL */
    const char *tpl_kwargs;     /* chat_template_kwargs: a JSON object, or NULL */
    const char *train_roles[RT_MAX_ROLES]; /* roles_to_train ("assistant") */
    int ntrain_roles;
    const char *role_from[RT_MAX_ROLES * 2], *role_to[RT_MAX_ROLES * 2]; /* roles: source -> role */
    int nrole_map;
    rt_eot_mode train_on_eos, train_on_eot;
    /* alpaca with `type:` a mapping (Axolotl's user_defined): the row's
     * fields and Python format strings in place of Alpaca's prompt */
    int user_defined;
    const char *ud_format, *ud_no_input_format, *ud_system_format, *ud_system_prompt;
    const char *ud_field_instruction, *ud_field_input, *ud_field_output, *ud_field_system;
    /* rl: dpo (RT_FMT_DPO): the strategy; user_defined's fields (field_prompt, field_system, field_chosen,
     * field_rejected) and formats (prompt_format in ud_format, chosen_format, rejected_format); chat_template.default
     * (RT_DPO_CHAT) reads field_messages, role_key / content_key, the roles map, the template (tpl, jinja,
     * tpl_kwargs) and field_chosen / field_rejected in ud_field_chosen / ud_field_rejected */
    rt_dpo_family dpo_family;
    rt_dpo_variant dpo_variant;
    const char *ud_field_prompt, *ud_field_chosen, *ud_field_rejected, *ud_chosen_format, *ud_rejected_format;
    int dpo_cpo; /* rl: simpo: TRL's CPOTrainer.tokenize_row instead of DPOTrainer's tokenization (runtime/prompt.c) */
} rt_ds_spec;

/* A user_defined format string's check: only {name} of the names allowed
 * (a NULL-terminated list), {{ and }}; as Python's str.format would fail at
 * the first row otherwise. 0, or -1 with what is wrong in err. */
int rt_ud_format_check(const char *fmt, const char *const *names, char *err, size_t cap);

/* A change the config makes to the tokenizer, in Axolotl's order
 * (load_tokenizer): added_tokens_overrides, special_tokens (bos, eos, pad,
 * unk), tokens, special_tokens.additional_special_tokens. */
typedef struct rt_tok_edit {
    int32_t override_id;     /* >= 0: the added token with this id gets `content` (added_tokens_overrides);
                              * -1: `content` is added (rt_tok_add) */
    const char *content;
    int special;             /* an addition from special_tokens (1) or tokens (0) */
} rt_tok_edit;

typedef struct rt_tok_setup {
    const char *path;        /* tokenizer.json */
    const char *bos, *eos;   /* token strings (tokenizer_config.json, special_tokens:) or NULL */
    const char *unk, *sep, *pad, *cls, *mask; /* the other named special tokens (Jinja templates see them) */
    const char *eot[8];      /* eot_tokens (default: eos) */
    int neot;
    int train_on_inputs;
    int mistral_name;        /* "mistral" in the tokenizer's name_or_path: a leading system turn is never trained
                              * (Axolotl's find_turn returns no span for it) */
    const rt_tok_edit *edits; /* applied in order after loading */
    int nedits;
    const char **set_special; /* the special_tokens keys the config set ("bos_token", ...), and */
    const char **set_value;   /* their values, written into the saved tokenizer_config.json */
    int nset;
    const char **extra_special; /* special_tokens.additional_special_tokens, or NULL (the saved list) */
    int nextra_special;
} rt_tok_setup;

/* Applies s->edits to t. 0, or -1 with an error naming s->path (an
 * added_tokens_overrides id that is not an added token). */
int rt_tok_setup_apply(rt_tokenizer *t, const rt_tok_setup *s, ax_diag *d);

/* Defaults for a type: Axolotl's. */
void rt_ds_spec_defaults(rt_ds_spec *s, rt_fmt fmt);
/* Spec <-> canonical JSON (sorted keys). from_json returns -1 with an error
 * naming `where` on a bad value; strings are copied into ar. */
char *rt_ds_spec_json(const rt_ds_spec *s);
int rt_ds_spec_from_json(const char *js, rt_ds_spec *s, ax_arena *ar, const char *where, ax_diag *d);
char *rt_tok_setup_json(const rt_tok_setup *s);
int rt_tok_setup_from_json(const char *js, rt_tok_setup *s, ax_arena *ar, const char *where, ax_diag *d);
const char *rt_tpl_name(rt_tpl t);
int rt_tpl_from_name(const char *name); /* -1 if unknown */

/* Resolved ids for one tokenizer + setup. */
typedef struct rt_prompter {
    rt_tokenizer *tok;
    const rt_tok_setup *setup;
    int32_t bos_id, eos_id;
    int32_t eot_ids[8];
    int neot;
    int64_t seq_len;
    int dpo_keys;             /* rl: dpo's chatml/llama3 default: the first row's choice of keys (0: none yet); a
                               * loader resets it for each file */
    struct jinja_tpl *jinja;  /* the last Jinja template parsed, and its text */
    const char *jinja_src;
} rt_prompter;

/* Loads the tokenizer and resolves the special tokens; errors name the
 * tokenizer file and the token. */
int rt_prompter_init(rt_prompter *p, const rt_tok_setup *s, int64_t seq_len, ax_diag *d);
void rt_prompter_free(rt_prompter *p);

/* One row -> samples appended to ids/labels (int32 each); the length of each
 * sample to lens (int64 each; completion can give several). 0, or -1 with an
 * error at `where` (file:line) naming the field. */
int rt_prompt_row(rt_prompter *p, const rt_ds_spec *s, const json_t *row, const char *where, ax_buf *ids,
                  ax_buf *labels, ax_buf *lens, ax_diag *d);

/* The text a chat template renders for messages[0..n) (role, content
 * pairs; reasoning: each message's reasoning_content or NULL, may itself be
 * NULL); bos is the template's bos_token; real_last is the index of the
 * conversation's real last message when a prefix is rendered (qwen3's
 * thinking block goes on it), -1 for n - 1. 0, or -1 with *err set where the
 * template itself refuses the conversation (gemma: a system message, roles
 * that do not alternate user/assistant). */
int rt_chat_render(rt_tpl tpl, const char *const *roles, const char *const *contents, const char *const *reasoning,
                   int n, int real_last, const char *bos, ax_buf *out, const char **err);
/* A C renderer's template as Jinja text (axo's own, rendering the same
 * text: test_prompt), to save beside a trained model as chat_template.jinja.
 * The \n in it are Jinja escapes. */
const char *rt_tpl_jinja(rt_tpl t);
/* Whether a template starts with the bos_token (the tokenizer must have one). */
int rt_tpl_needs_bos(rt_tpl t);

#endif
