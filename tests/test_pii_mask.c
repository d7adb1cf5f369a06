/* PII masking (datasets/pii_mask.c) and the bundled corpus in datasets/data/: every JSONL line
 * parses with a known label, the split sizes meet their minimums, and no hand-written test text
 * appears verbatim in the training or validation data. */
#include "core/error.h"
#include "datasets/pii_mask.h"
#include "tests/ct_test.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <string.h>

/* ------------------------------------------------------------------ masking */

static void expect_mask(ct_pii_masker *m, const char *in, const char *want, size_t want_n) {
    size_t n = 0;
    char *got = ct_pii_mask(m, in, &n);
    CHECK(got != NULL, "mask(%s) failed: %s", in, ct_last_error());
    if (!got) return;
    CHECK(strcmp(got, want) == 0, "mask(%s)\n  got  %s\n  want %s", in, got, want);
    CHECK(n == want_n, "mask(%s): %zu replacements, want %zu", in, n, want_n);
    free(got);
}

static long count(const ct_pii_masker *m, const char *name) { return ct_pii_masker_count_by_name(m, name); }

static void test_defaults(void) {
    size_t n_defaults = 0;
    const ct_pii_pattern *defs = ct_pii_default_patterns(&n_defaults);
    CHECK(n_defaults == 4 && strcmp(defs[0].name, "email") == 0 && strcmp(defs[3].name, "order") == 0,
          "default patterns: %zu", n_defaults);

    ct_pii_masker *m = ct_pii_masker_new_default();
    CHECK(m != NULL, "new_default: %s", ct_last_error());
    if (!m) return;
    CHECK(ct_pii_masker_size(m) == 4, "size %zu", ct_pii_masker_size(m));

    /* realistic mixed text */
    expect_mask(m, "我的手机号是13800131234，订单号2024112012345678，邮箱zhang.san@example.com，麻烦尽快处理",
                "我的手机号是<PHONE>，订单号<ORDER>，邮箱<EMAIL>，麻烦尽快处理", 3);
    CHECK(count(m, "phone") == 1 && count(m, "order") == 1 && count(m, "email") == 1 && count(m, "id_card") == 0,
          "counts after first text: phone %ld order %ld email %ld id %ld", count(m, "phone"), count(m, "order"),
          count(m, "email"), count(m, "id_card"));
    /* phones with prefixes, separators, full-width digits, glued to Chinese */
    expect_mask(m, "电话 +86 138-0013-1234 谢谢", "电话 <PHONE> 谢谢", 1);
    expect_mask(m, "联系我8613900132876或者0086 15800137702", "联系我<PHONE>或者<PHONE>", 2);
    expect_mask(m, "收件人换成我妈，电话13600138415😭", "收件人换成我妈，电话<PHONE>😭", 1);
    expect_mask(m, "手机１３８００１３１２３４", "手机<PHONE>", 1);
    expect_mask(m, "两个号码13800131234/13900132876", "两个号码<PHONE>/<PHONE>", 2);
    /* digit runs that must not become phones */
    expect_mask(m, "这件衣服¥1399.00，满300减50，一共13999元，尾号5531", "这件衣服¥1399.00，满300减50，一共13999元，尾号5531", 0);
    expect_mask(m, "编号12345678901不是手机号", "编号12345678901不是手机号", 0);        /* 12x is no mobile prefix */
    expect_mask(m, "流水号138001312345678", "流水号<ORDER>", 1);                        /* 11 digits inside 15 */
    expect_mask(m, "1380013123", "1380013123", 0);                                      /* 10 digits */
    expect_mask(m, "138001312345", "<ORDER>", 1);                                        /* 12 digits: order, not phone */
    expect_mask(m, "快递单号SF13800131234看一下", "快递单号SF13800131234看一下", 0);        /* glued to letters */
    expect_mask(m, "价格是2999，型号X1380", "价格是2999，型号X1380", 0);
    /* ID cards, before the generic long-digit order rule */
    expect_mask(m, "身份证11010519491231002X，姓名王芳", "身份证<ID>，姓名王芳", 1);
    expect_mask(m, "身份证号110105199003071234", "身份证号<ID>", 1);
    expect_mask(m, "110105199013071234", "<ORDER>", 1); /* month 13: not an ID, still a long digit run */
    /* overlapping patterns: the email wins over the phone inside it */
    expect_mask(m, "邮箱13800131234@example.com", "邮箱<EMAIL>", 1);
    /* order numbers behind a prefix, short and alphanumeric */
    expect_mask(m, "订单号：A2024-1120，还有订单编号 778899", "订单号：<ORDER>，还有订单编号 <ORDER>", 2);
    expect_mask(m, "Order No. 88812345 is late", "Order No. <ORDER> is late", 1);
    expect_mask(m, "订单里怎么只有两件？order status呢", "订单里怎么只有两件？order status呢", 0);
    expect_mask(m, "订单3件都没到", "订单3件都没到", 0);
    /* nothing to mask, empty text, traditional characters */
    expect_mask(m, "", "", 0);
    expect_mask(m, "退貨地址發我一下，謝謝", "退貨地址發我一下，謝謝", 0);

    CHECK(ct_pii_masker_total(m) == (size_t)(count(m, "phone") + count(m, "order") + count(m, "email") + count(m, "id_card")),
          "total %zu", ct_pii_masker_total(m));
    CHECK(count(m, "phone") == 8, "phone count %ld, want 8", count(m, "phone"));
    CHECK(count(m, "id_card") == 2, "id count %ld, want 2", count(m, "id_card"));
    CHECK(count(m, "order") == 7, "order count %ld, want 7", count(m, "order"));
    CHECK(count(m, "email") == 2, "email count %ld, want 2", count(m, "email"));
    char summary[128];
    int need = ct_pii_masker_summary(m, summary, sizeof summary);
    CHECK(need > 0 && strcmp(summary, "email=2 id_card=2 phone=8 order=7 total=19") == 0, "summary: %s", summary);
    char tiny[8];
    need = ct_pii_masker_summary(m, tiny, sizeof tiny);
    CHECK(need == (int)strlen(summary) && strlen(tiny) == sizeof tiny - 1, "truncated summary %d '%s'", need, tiny);
    CHECK(count(m, "nope") == -1 && strstr(ct_last_error(), "nope") != NULL, "unknown name: %s", ct_last_error());
    ct_pii_masker_reset_counts(m);
    CHECK(ct_pii_masker_total(m) == 0, "reset");

    /* invalid UTF-8 is an error, not a crash */
    ct_clear_error();
    char *bad = ct_pii_mask(m, "abc\xff\xfe 13800131234", NULL);
    CHECK(bad == NULL && strstr(ct_last_error(), "UTF-8") != NULL && strstr(ct_last_error(), "byte 3") != NULL,
          "invalid UTF-8: %s", ct_last_error());
    free(bad);
    CHECK(ct_pii_mask(m, NULL, NULL) == NULL, "NULL text");
    ct_pii_masker_free(m);
}

static void test_configuration(void) {
    ct_pii_masker *m = ct_pii_masker_new();
    CHECK(m != NULL, "new");
    if (!m) return;
    expect_mask(m, "13800131234", "13800131234", 0); /* empty masker masks nothing */

    CHECK(ct_pii_masker_add_defaults(m, "phone, email") == 0, "select defaults: %s", ct_last_error());
    CHECK(ct_pii_masker_size(m) == 2 && strcmp(ct_pii_masker_name(m, 0), "phone") == 0, "selected order");
    CHECK(ct_pii_masker_add(m, "tracking", "(?<![A-Za-z])(?:SF|JT|YT|ZT|YD)\\d{10,15}", "<TRACKING>") == 0,
          "custom pattern: %s", ct_last_error());
    /* \K keeps a prefix; a Chinese name after 收件人 */
    CHECK(ct_pii_masker_add(m, "name", "收件人[:：]?\\K\\p{Han}{2,3}(?=[，,。 电]|$)", "<NAME>") == 0,
          "name pattern: %s", ct_last_error());
    expect_mask(m, "快递单号JT5302174486021，收件人刘晓梅，电话13700139021，订单2025010411208873",
                "快递单号<TRACKING>，收件人<NAME>，电话<PHONE>，订单2025010411208873", 3);
    CHECK(ct_pii_masker_count(m, 2) == 1 && ct_pii_masker_count(m, 3) == 1, "custom counts");

    /* errors name the pattern and say what to fix */
    ct_clear_error();
    CHECK(ct_pii_masker_add(m, "broken", "(\\d+", "<X>") == -1, "bad regex accepted");
    CHECK(strstr(ct_last_error(), "\"broken\"") && strstr(ct_last_error(), "offset 4") &&
              strstr(ct_last_error(), "parenthesis"),
          "bad regex message: %s", ct_last_error());
    CHECK(ct_pii_masker_add(m, "phone", "\\d", "<X>") == -1 && strstr(ct_last_error(), "already"),
          "duplicate: %s", ct_last_error());
    CHECK(ct_pii_masker_add(m, "", "\\d", "<X>") == -1, "empty name");
    CHECK(ct_pii_masker_add(m, "x", "\\d", NULL) == -1, "NULL replacement");
    CHECK(ct_pii_masker_add_defaults(m, "phone,passport") == -1 && strstr(ct_last_error(), "passport") &&
              strstr(ct_last_error(), "id_card"),
          "unknown default: %s", ct_last_error());
    CHECK(ct_pii_masker_size(m) == 4, "failed adds left the masker unchanged: %zu", ct_pii_masker_size(m));
    CHECK(ct_pii_masker_add_defaults(m, "all") == -1 && strstr(ct_last_error(), "already"), "re-adding defaults");
    CHECK(ct_pii_masker_size(m) == 4, "a failed add_defaults adds nothing: %zu", ct_pii_masker_size(m));

    /* a pattern that can match the empty string must not loop */
    CHECK(ct_pii_masker_add(m, "stars", "x*", "<X>") == 0, "empty-matching pattern: %s", ct_last_error());
    expect_mask(m, "abc xx d", "abc <X> d", 1);
    ct_pii_masker_free(m);
    ct_pii_masker_free(NULL);
}

/* ------------------------------------------------------------------ corpus files */

static const char *LABELS[] = {"return_request", "exchange_request", "refund_status", "order_status",
                               "logistics_tracking", "urge_delivery", "cancel_order", "change_address",
                               "invoice_request", "payment_issue", "product_inquiry", "complaint",
                               "coupon_promotion", "human_agent", "other"};
#define N_LABELS 15

static int label_index(const char *s) {
    for (int i = 0; i < N_LABELS; i++)
        if (strcmp(LABELS[i], s) == 0) return i;
    return -1;
}

static char *read_file(const char *rel, size_t *len) {
    FILE *f = fopen(ct_test_path(rel), "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) buf[n] = '\0';
    if (len) *len = (size_t)n;
    return buf;
}

/* A string set: open addressing, FNV-1a. */
typedef struct {
    char **slots;
    size_t cap, n;
} strset;

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void set_add(strset *s, const char *str) {
    if (2 * (s->n + 1) > s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 1024;
        char **slots = calloc(cap, sizeof *slots);
        for (size_t i = 0; i < s->cap; i++)
            if (s->slots[i]) {
                size_t j = fnv1a(s->slots[i]) & (cap - 1);
                while (slots[j]) j = (j + 1) & (cap - 1);
                slots[j] = s->slots[i];
            }
        free(s->slots);
        s->slots = slots;
        s->cap = cap;
    }
    size_t j = fnv1a(str) & (s->cap - 1);
    while (s->slots[j]) {
        if (strcmp(s->slots[j], str) == 0) return;
        j = (j + 1) & (s->cap - 1);
    }
    s->slots[j] = strdup(str);
    s->n++;
}

static int set_has(const strset *s, const char *str) {
    if (!s->cap) return 0;
    size_t j = fnv1a(str) & (s->cap - 1);
    while (s->slots[j]) {
        if (strcmp(s->slots[j], str) == 0) return 1;
        j = (j + 1) & (s->cap - 1);
    }
    return 0;
}

static void set_free(strset *s) {
    for (size_t i = 0; i < s->cap; i++) free(s->slots[i]);
    free(s->slots);
}

typedef struct {
    size_t lines, per_label[N_LABELS];
} split_stats;

/* Parses one JSONL file. kind 0: {"text","label"}; kind 1: {"messages":[...],"label"}.
 * Adds user texts to `texts` (every user turn) and joined dialogues to `dialogs` when given. */
static split_stats read_split(const char *rel, int kind, strset *texts, strset *dialogs, ct_pii_masker *masker) {
    split_stats st = {0};
    size_t len = 0;
    char *data = read_file(rel, &len);
    CHECK(data != NULL, "cannot read %s", rel);
    if (!data) return st;
    char *save = NULL;
    for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        st.lines++;
        cJSON *obj = cJSON_Parse(line);
        CHECK(obj != NULL, "%s:%zu is not JSON", rel, st.lines);
        if (!obj) continue;
        cJSON *label = cJSON_GetObjectItemCaseSensitive(obj, "label");
        int li = cJSON_IsString(label) ? label_index(label->valuestring) : -1;
        CHECK(li >= 0, "%s:%zu has an unknown label", rel, st.lines);
        if (li >= 0) st.per_label[li]++;
        if (kind == 0) {
            cJSON *text = cJSON_GetObjectItemCaseSensitive(obj, "text");
            int ok = cJSON_IsString(text) && text->valuestring[0];
            CHECK(ok, "%s:%zu has no text", rel, st.lines);
            if (ok && texts) set_add(texts, text->valuestring);
            if (ok && masker) {
                char *masked = ct_pii_mask(masker, text->valuestring, NULL);
                CHECK(masked != NULL, "%s:%zu: masking failed: %s", rel, st.lines, ct_last_error());
                free(masked);
            }
        } else {
            cJSON *msgs = cJSON_GetObjectItemCaseSensitive(obj, "messages");
            int n = cJSON_IsArray(msgs) ? cJSON_GetArraySize(msgs) : 0;
            CHECK(n >= 1, "%s:%zu has no messages", rel, st.lines);
            char joined[8192] = "";
            const char *prev_role = NULL, *last_role = NULL;
            int ok = 1;
            for (int i = 0; i < n; i++) {
                cJSON *msg = cJSON_GetArrayItem(msgs, i);
                cJSON *role = cJSON_GetObjectItemCaseSensitive(msg, "role");
                cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
                if (!cJSON_IsString(role) || !cJSON_IsString(content) || !content->valuestring[0] ||
                    (strcmp(role->valuestring, "user") && strcmp(role->valuestring, "assistant")) ||
                    (prev_role && strcmp(prev_role, role->valuestring) == 0)) {
                    ok = 0;
                    break;
                }
                prev_role = last_role = role->valuestring;
                strncat(joined, content->valuestring, sizeof joined - strlen(joined) - 1);
                strncat(joined, "\x1e", sizeof joined - strlen(joined) - 1);
                if (strcmp(role->valuestring, "user") == 0 && texts) set_add(texts, content->valuestring);
            }
            CHECK(ok && last_role && strcmp(last_role, "user") == 0,
                  "%s:%zu: messages must alternate user/assistant with non-empty content and end with a user turn",
                  rel, st.lines);
            if (dialogs) set_add(dialogs, joined);
        }
        cJSON_Delete(obj);
    }
    free(data);
    return st;
}

static size_t total(const split_stats *s) {
    size_t t = 0;
    for (int i = 0; i < N_LABELS; i++) t += s->per_label[i];
    return t;
}

/* Adds every "用户：" line of a pretraining text file to `texts`; checks the paragraph format. */
static void read_pretrain(const char *rel, strset *texts, size_t *bytes, size_t *paragraphs) {
    char *data = read_file(rel, bytes);
    CHECK(data != NULL, "cannot read %s", rel);
    if (!data) return;
    const char *user = "用户：", *agent = "客服：";
    size_t bad = 0, agent_lines = 0;
    *paragraphs = 1;
    char *save = NULL;
    for (char *p = data; *p; p++)
        if (p[0] == '\n' && p[1] == '\n') ++*paragraphs;
    for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, user, strlen(user)) == 0) set_add(texts, line + strlen(user));
        else if (strncmp(line, agent, strlen(agent)) == 0) agent_lines++;
        else bad++;
    }
    CHECK(bad == 0, "%s: %zu lines start with neither 用户： nor 客服：", rel, bad);
    CHECK(agent_lines > 0, "%s: no agent replies", rel);
    free(data);
}

static void test_corpus(void) {
    /* labels.json: the 15 ids in order, each with a display text */
    char *labels = read_file("datasets/data/labels.json", NULL);
    CHECK(labels != NULL, "cannot read labels.json");
    if (labels) {
        cJSON *obj = cJSON_Parse(labels);
        CHECK(obj && cJSON_GetArraySize(obj) == N_LABELS, "labels.json must map the 15 ids");
        int i = 0;
        for (cJSON *it = obj ? obj->child : NULL; it; it = it->next, i++)
            CHECK(i < N_LABELS && strcmp(it->string, LABELS[i]) == 0 && cJSON_IsString(it) && it->valuestring[0],
                  "labels.json entry %d", i);
        CHECK(obj && strcmp(cJSON_GetObjectItemCaseSensitive(obj, "return_request")->valuestring, "退货申请") == 0,
              "return_request display text");
        cJSON_Delete(obj);
        free(labels);
    }

    strset train_texts = {0}, train_dialogs = {0}, test_texts = {0}, test_dialogs = {0};
    ct_pii_masker *masker = ct_pii_masker_new_default();
    split_stats itrain = read_split("datasets/data/intent_train.jsonl", 0, &train_texts, NULL, masker);
    split_stats ival = read_split("datasets/data/intent_val.jsonl", 0, &train_texts, NULL, NULL);
    split_stats dtrain = read_split("datasets/data/dialog_train.jsonl", 1, &train_texts, &train_dialogs, NULL);
    split_stats dval = read_split("datasets/data/dialog_val.jsonl", 1, &train_texts, &train_dialogs, NULL);
    char summary[128];
    ct_pii_masker_summary(masker, summary, sizeof summary);
    printf("masking intent_train.jsonl: %s\n", summary);
    ct_pii_masker_reset_counts(masker);

    /* the hand-written test split is masked line by line without errors */
    split_stats itest = read_split("datasets/data/intent_test.jsonl", 0, NULL, NULL, masker);
    ct_pii_masker_summary(masker, summary, sizeof summary);
    printf("masking intent_test.jsonl: %s\n", summary);
    CHECK(ct_pii_masker_count_by_name(masker, "phone") >= 5, "test split phones masked: %s", summary);
    split_stats dtest = read_split("datasets/data/dialog_test.jsonl", 1, NULL, &test_dialogs, NULL);

    CHECK(total(&itrain) == itrain.lines && itrain.lines >= 3000, "intent_train: %zu lines (>= 3000)", itrain.lines);
    CHECK(ival.lines >= 150, "intent_val: %zu lines", ival.lines);
    CHECK(dtrain.lines >= 300, "dialog_train: %zu dialogues (>= 300)", dtrain.lines);
    CHECK(dval.lines >= 30, "dialog_val: %zu dialogues", dval.lines);
    CHECK(itest.lines >= 300, "intent_test: %zu utterances (>= 300)", itest.lines);
    CHECK(dtest.lines >= 45, "dialog_test: %zu dialogues (>= 45)", dtest.lines);
    for (int i = 0; i < N_LABELS; i++) {
        CHECK(itest.per_label[i] >= 20, "intent_test: %s has %zu items (>= 20)", LABELS[i], itest.per_label[i]);
        CHECK(itrain.per_label[i] >= 100, "intent_train: %s has %zu items", LABELS[i], itrain.per_label[i]);
        CHECK(dtrain.per_label[i] >= 10, "dialog_train: %s has %zu dialogues", LABELS[i], dtrain.per_label[i]);
    }

    size_t bytes_train = 0, bytes_val = 0, para_train = 0, para_val = 0;
    read_pretrain("datasets/data/pretrain_train.txt", &train_texts, &bytes_train, &para_train);
    read_pretrain("datasets/data/pretrain_val.txt", &train_texts, &bytes_val, &para_val);
    CHECK(bytes_train + bytes_val >= 1000000 && bytes_train + bytes_val <= 3500000,
          "pretraining text is %zu bytes (want ~1-3 MB)", bytes_train + bytes_val);
    CHECK(para_train >= 1000 && para_val >= 50, "pretraining paragraphs: %zu train, %zu val", para_train, para_val);

    /* no hand-written test text verbatim in any training or validation text */
    size_t leaks = 0;
    char *data = read_file("datasets/data/intent_test.jsonl", NULL);
    char *save = NULL;
    for (char *line = data ? strtok_r(data, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *obj = cJSON_Parse(line);
        cJSON *text = obj ? cJSON_GetObjectItemCaseSensitive(obj, "text") : NULL;
        if (cJSON_IsString(text) && set_has(&train_texts, text->valuestring)) {
            leaks++;
            fprintf(stderr, "test utterance found in training data: %s\n", text->valuestring);
        }
        if (cJSON_IsString(text)) set_add(&test_texts, text->valuestring);
        cJSON_Delete(obj);
    }
    free(data);
    for (size_t i = 0; i < test_dialogs.cap; i++)
        if (test_dialogs.slots[i] && set_has(&train_dialogs, test_dialogs.slots[i])) leaks++;
    /* last user turns of test dialogues */
    data = read_file("datasets/data/dialog_test.jsonl", NULL);
    save = NULL;
    for (char *line = data ? strtok_r(data, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *obj = cJSON_Parse(line);
        cJSON *msgs = obj ? cJSON_GetObjectItemCaseSensitive(obj, "messages") : NULL;
        int n = cJSON_IsArray(msgs) ? cJSON_GetArraySize(msgs) : 0;
        cJSON *content = n ? cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(msgs, n - 1), "content") : NULL;
        if (cJSON_IsString(content) && set_has(&train_texts, content->valuestring)) {
            leaks++;
            fprintf(stderr, "test dialogue's last turn found in training data: %s\n", content->valuestring);
        }
        cJSON_Delete(obj);
    }
    free(data);
    CHECK(leaks == 0, "%zu hand-written test texts appear verbatim in training/validation data", leaks);
    CHECK(test_texts.n >= 300, "distinct test utterances: %zu", test_texts.n);

    set_free(&train_texts);
    set_free(&train_dialogs);
    set_free(&test_texts);
    set_free(&test_dialogs);
    ct_pii_masker_free(masker);
}

int main(void) {
    test_defaults();
    test_configuration();
    test_corpus();
    return ct_test_finish("test_pii_mask");
}
