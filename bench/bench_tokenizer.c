/* Tokenizer throughput on one core: encodes Chinese text line by line with the Qwen3 tokenizer
 * and prints a JSON line with MB/s, then trains a 4000-token byte-level BPE on the same text
 * and prints its time. The text is datasets/data/pretrain_train.txt when it exists, else a few
 * Chinese customer-service paragraphs repeated to 4 MB (order numbers vary per line).
 *
 *   bench_tokenizer [--tokenizer DIR] [--dump FILE]
 *
 * --dump writes the text it used and exits (bench/bench_tokenizer_hf.py times the Hugging Face
 * library on the same bytes). The Qwen3 tokenizer comes from $CT_SHARED_DIR/data/qwen3-tokenizer
 * or ../shared next to the source tree. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/error.h"
#include "bench/bench_blas.h"
#include "datasets/tokenizer.h"

static const char *const paragraphs[] = {
    "您好，欢迎光临本店！请问有什么可以帮您？如果您想查询订单，请提供订单号或者下单时使用的手机号码。",
    "我上周买的蓝牙耳机右边没有声音，订单号是ORDER，想申请退货退款，请问需要我自己承担运费吗？",
    "非常抱歉给您带来不便。商品签收后七天内支持无理由退货，质量问题产生的运费由我们承担，退款会在收到退货后一到三个工作日内原路返回。",
    "快递显示已经签收了，可是我家里没有人收到包裹，门卫也说没有看到，麻烦帮我查一下物流到底送到哪里了。",
    "已经帮您联系了快递公司，配送员表示包裹放在了小区的快递柜，取件码已经重新发送到您的手机，请注意查收短信。",
    "我想修改收货地址，原来填的是公司地址，现在想改成家里的地址：浙江省杭州市西湖区文三路一百号三单元五零二室。",
    "优惠券为什么用不了？页面上写着满两百减三十，我的购物车里一共有二百三十八元的商品，结算的时候却提示不满足使用条件。",
    "这张优惠券仅限自营商品使用，您购物车中有两件是第三方店铺的商品，所以金额没有达到使用门槛，建议您分开下单。",
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* 4 MB of lines: each a paragraph, with a different order number so lines are not all alike. */
static char *generated_text(size_t *len) {
    size_t cap = 4u << 20, n = 0;
    char *text = malloc(cap + 512);
    for (unsigned line = 0; text && n < cap; line++) {
        const char *p = paragraphs[line % (sizeof paragraphs / sizeof paragraphs[0])];
        const char *order = strstr(p, "ORDER");
        if (order)
            n += (size_t)sprintf(text + n, "%.*s2024%08u%s\n", (int)(order - p), p,
                                 (line * 2654435761u) % 100000000u, order + 5);
        else
            n += (size_t)sprintf(text + n, "%s\n", p);
    }
    *len = n;
    return text;
}

static char *source_path(const char *relative) {
    const char *root = getenv("CT_SOURCE_DIR");
    size_t n = strlen(root ? root : ".") + strlen(relative) + 2;
    char *path = malloc(n);
    snprintf(path, n, "%s/%s", root ? root : ".", relative);
    return path;
}

static char *qwen_tokenizer_path(void) {
    const char *shared = getenv("CT_SHARED_DIR");
    char *root = shared ? strdup(shared) : source_path("../shared");
    size_t n = strlen(root) + 64;
    char *path = malloc(n);
    snprintf(path, n, "%s/data/qwen3-tokenizer", root);
    free(root);
    return path;
}

static char *load_text(size_t *len, const char **source) {
    char *corpus = source_path("datasets/data/pretrain_train.txt");
    struct stat st;
    char *text = NULL;
    if (stat(corpus, &st) == 0) {
        text = ct_tok_read_file(corpus, len);
        *source = "datasets/data/pretrain_train.txt";
    } else {
        text = generated_text(len);
        *source = "generated";
    }
    free(corpus);
    return text;
}

/* Best of three passes, each encoding every line separately, as dataset loading does. */
static int bench_encode(const ct_tokenizer *tok, const char *text, size_t len, const char *source) {
    double best = 1e30;
    size_t tokens = 0, lines = 0;
    ct_token_list ids = {0};
    for (int pass = 0; pass < 3; pass++) {
        tokens = lines = 0;
        double start = now();
        for (const char *p = text, *end; p < text + len; p = end + 1) {
            end = memchr(p, '\n', (size_t)(text + len - p));
            if (!end) end = text + len;
            ids.len = 0;
            if (ct_tokenizer_encode(tok, p, (size_t)(end - p), 0, &ids) < 0) return -1;
            tokens += ids.len;
            lines++;
        }
        double seconds = now() - start;
        if (seconds < best) best = seconds;
    }
    ct_token_list_free(&ids);
    printf("{\"bench\": \"tokenizer_encode\", \"tokenizer\": \"qwen3\", \"text\": \"%s\", \"bytes\": %zu, "
           "\"lines\": %zu, \"tokens\": %zu, \"seconds\": %.4f, \"mb_per_s\": %.2f, \"threads\": 1, %s}\n",
           source, len, lines, tokens, best, (double)len / 1e6 / best, bench_blas_json());
    return 0;
}

static int bench_train(const char *text, size_t len, const char *source) {
    size_t bytes = len < (2u << 20) ? len : (2u << 20);
    while (bytes < len && text[bytes - 1] != '\n') bytes++;
    double start = now();
    ct_bpe_trainer *trainer = ct_bpe_trainer_new();
    ct_bpe_train_options options = {.vocab_size = 4000, .min_frequency = 2};
    ct_bpe_train_report report;
    int rc = trainer ? ct_bpe_trainer_add_text(trainer, text, bytes) : -1;
    double counted = now();
    if (rc == 0) rc = ct_bpe_trainer_train(trainer, &options, &report);
    double seconds = now() - start;
    ct_bpe_trainer_free(trainer);
    if (rc < 0) return -1;
    printf("{\"bench\": \"tokenizer_train\", \"text\": \"%s\", \"bytes\": %zu, \"vocab_size\": %d, "
           "\"distinct_words\": %lld, \"count_seconds\": %.3f, \"seconds\": %.3f, \"threads\": 1, %s}\n",
           source, bytes, report.vocab_size, (long long)report.n_distinct_words, counted - start, seconds, bench_blas_json());
    return 0;
}

int main(int argc, char **argv) {
    bench_blas_start(argv);
    const char *tokenizer = NULL, *dump = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--tokenizer")) tokenizer = argv[i + 1];
        else if (!strcmp(argv[i], "--dump")) dump = argv[i + 1];
    }
    size_t len;
    const char *source;
    char *text = load_text(&len, &source);
    if (!text) {
        fprintf(stderr, "bench_tokenizer: %s\n", ct_last_error());
        return 1;
    }
    if (dump) {
        FILE *f = fopen(dump, "wb");
        int ok = f && fwrite(text, 1, len, f) == len;
        if (f) fclose(f);
        free(text);
        if (!ok) fprintf(stderr, "bench_tokenizer: cannot write %s\n", dump);
        return ok ? 0 : 1;
    }
    char *default_path = tokenizer ? NULL : qwen_tokenizer_path();
    ct_tokenizer *tok = ct_tokenizer_load(tokenizer ? tokenizer : default_path);
    int rc = tok ? bench_encode(tok, text, len, source) : -1;
    if (rc == 0) rc = bench_train(text, len, source);
    if (rc < 0) fprintf(stderr, "bench_tokenizer: %s\n", ct_last_error());
    ct_tokenizer_free(tok);
    free(default_path);
    free(text);
    return rc < 0 ? 1 : 0;
}
