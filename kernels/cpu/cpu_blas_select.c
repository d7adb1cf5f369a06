/* OpenBLAS kernel selection: CPUID against OpenBLAS's core, a re-execution with
 * OPENBLAS_CORETYPE when the core is below the CPU, and a start-up GEMM check (cpu_blas.h).
 *
 * The environment carries the state across the re-execution:
 *   CT_BLAS_FORCED=<core>            ctune re-executed with OPENBLAS_CORETYPE=<core>
 *   CT_BLAS_FORCED=rejected:<core>   <core> failed the GEMM check; ctune re-executed without it
 *   CT_BLAS_DETECTED=<core>          what OpenBLAS had chosen itself (for the log line)
 * A process whose OPENBLAS_CORETYPE equals CT_BLAS_FORCED is the re-executed one and never
 * re-executes again (so there is no loop, even when the BLAS ignores the variable); any other
 * OPENBLAS_CORETYPE is the user's and is kept. CT_BLAS_SIMULATE_MISDETECTION=1 is for tests:
 * the inherited OPENBLAS_CORETYPE then stands for OpenBLAS's own (wrong) choice, which is how a
 * machine whose CPU OpenBLAS knows can reproduce the mis-detection. */
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "kernels/cpu/cpu_blas.h"
#include "kernels/cpu/cpu_bf16_gemm.h"
#include "kernels/cpu/cpu_sgemm.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define CT_X86 1
#endif

#define FORCED_ENV "CT_BLAS_FORCED"
#define DETECTED_ENV "CT_BLAS_DETECTED"
#define SIMULATE_ENV "CT_BLAS_SIMULATE_MISDETECTION"
#define REJECTED_PREFIX "rejected:"

const char *ct_isa_name(ct_isa isa) {
    switch (isa) {
    case CT_ISA_SSE3: return "sse3";
    case CT_ISA_AVX: return "avx";
    case CT_ISA_AVX2: return "avx2+fma";
    case CT_ISA_AVX512: return "avx512";
    default: return "unknown";
    }
}

/* ---- what the CPU offers ---- */

#ifdef CT_X86
/* XCR0: which register states the OS saves on a context switch. An instruction set whose
 * registers are not saved must not be used even when CPUID lists it. */
static unsigned long long xcr0(void) {
    unsigned eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}
#endif

ct_isa ct_cpu_isa(void) {
#ifdef CT_X86
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return CT_ISA_UNKNOWN;
    bool sse3 = c & bit_SSE3, fma = c & bit_FMA, avx = c & bit_AVX, osxsave = c & bit_OSXSAVE;
    unsigned long long xcr = osxsave ? xcr0() : 0;
    bool os_avx = (xcr & 0x6) == 0x6;       /* XMM and YMM state */
    bool os_avx512 = (xcr & 0xe6) == 0xe6;  /* and opmask, ZMM_Hi256, Hi16_ZMM */
    unsigned b7 = 0;
    if (!__get_cpuid_count(7, 0, &a, &b7, &c, &d)) b7 = 0;
    bool avx2 = b7 & bit_AVX2;
    bool avx512 = (b7 & bit_AVX512F) && (b7 & bit_AVX512CD) && (b7 & bit_AVX512DQ) && (b7 & bit_AVX512BW) &&
                  (b7 & bit_AVX512VL);
    if (avx && os_avx && avx2 && fma && avx512 && os_avx512) return CT_ISA_AVX512;
    if (avx && os_avx && avx2 && fma) return CT_ISA_AVX2;
    if (avx && os_avx) return CT_ISA_AVX;
    return sse3 ? CT_ISA_SSE3 : CT_ISA_UNKNOWN;
#else
    return CT_ISA_UNKNOWN;
#endif
}

bool ct_cpu_is_amd(void) {
#ifdef CT_X86
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return false;
    char vendor[13];
    memcpy(vendor, &b, 4), memcpy(vendor + 4, &d, 4), memcpy(vendor + 8, &c, 4);
    vendor[12] = '\0';
    return !strcmp(vendor, "AuthenticAMD") || !strcmp(vendor, "HygonGenuine");
#else
    return false;
#endif
}

/* ---- what OpenBLAS chose ---- */

/* OpenBLAS's x86_64 core names (driver/others/dynamic.c) by the instruction set of their SGEMM
 * kernel. Cooperlake and SapphireRapids add bf16 GEMMs; their SGEMM is SkylakeX's. */
static const struct {
    const char *core;
    ct_isa isa;
} core_isa[] = {
    {"Katmai", CT_ISA_SSE3},       {"Coppermine", CT_ISA_SSE3},  {"Northwood", CT_ISA_SSE3},
    {"Prescott", CT_ISA_SSE3},     {"Banias", CT_ISA_SSE3},      {"Atom", CT_ISA_SSE3},
    {"Core2", CT_ISA_SSE3},        {"Penryn", CT_ISA_SSE3},      {"Dunnington", CT_ISA_SSE3},
    {"Nehalem", CT_ISA_SSE3},      {"Athlon", CT_ISA_SSE3},      {"Opteron", CT_ISA_SSE3},
    {"Opteron_SSE3", CT_ISA_SSE3}, {"Barcelona", CT_ISA_SSE3},   {"Nano", CT_ISA_SSE3},
    {"Bobcat", CT_ISA_SSE3},       {"Sandybridge", CT_ISA_AVX},  {"Bulldozer", CT_ISA_AVX},
    {"Piledriver", CT_ISA_AVX},    {"Steamroller", CT_ISA_AVX},  {"Excavator", CT_ISA_AVX},
    {"Haswell", CT_ISA_AVX2},      {"Zen", CT_ISA_AVX2},         {"SkylakeX", CT_ISA_AVX512},
    {"Cooperlake", CT_ISA_AVX512}, {"SapphireRapids", CT_ISA_AVX512},
};

ct_isa ct_blas_core_isa(const char *core) {
    if (!core) return CT_ISA_UNKNOWN;
    for (size_t i = 0; i < sizeof core_isa / sizeof core_isa[0]; i++)
        if (!strcasecmp(core, core_isa[i].core)) return core_isa[i].isa;
    return CT_ISA_UNKNOWN;
}

/* SkylakeX for every AVX-512 CPU: OpenBLAS 0.3.21 has no SapphireRapids core, and Cooperlake's
 * SGEMM is the same kernel. */
const char *ct_blas_core_for_isa(ct_isa isa, bool amd) {
    switch (isa) {
    case CT_ISA_AVX512: return "SkylakeX";
    case CT_ISA_AVX2: return amd ? "Zen" : "Haswell";
    case CT_ISA_AVX: return "Sandybridge";
    default: return NULL;
    }
}

/* ---- the GEMM check ---- */

#define CHECK_M 67
#define CHECK_N 45
#define CHECK_K 53
#define CHECK_LD 70 /* padded leading dimensions (> 67) catch a kernel that assumes packed rows */
#define CHECK_SIZE (CHECK_LD * CHECK_M)

/* The logical op(A) [M, K], op(B) [K, N] and C [M, N], each stored as the GEMM reads it without
 * and with a transpose, so one f64 reference serves all four calls. */
typedef struct {
    double a_dense[CHECK_M * CHECK_K], b_dense[CHECK_K * CHECK_N];
    double want[CHECK_M * CHECK_N], c0[CHECK_M * CHECK_N];
    float a[2][CHECK_SIZE], b[2][CHECK_SIZE], c[CHECK_SIZE];
    double a64[2][CHECK_SIZE], b64[2][CHECK_SIZE], c64[CHECK_SIZE];
} check_buffers;

/* Values in [-1, 1) with 16 significant bits: exact in f32, so both GEMMs see the same inputs. */
static double check_value(unsigned *state) {
    *state = *state * 1664525u + 1013904223u;
    return (double)(*state >> 16) / 32768.0 - 1.0;
}

static void check_fill(check_buffers *w) {
    double *a = w->a_dense, *b = w->b_dense;
    unsigned state = 12345;
    for (int i = 0; i < CHECK_M; i++)
        for (int k = 0; k < CHECK_K; k++) {
            double v = a[i * CHECK_K + k] = check_value(&state);
            w->a64[0][i * CHECK_LD + k] = w->a64[1][k * CHECK_LD + i] = v;
            w->a[0][i * CHECK_LD + k] = w->a[1][k * CHECK_LD + i] = (float)v;
        }
    for (int k = 0; k < CHECK_K; k++)
        for (int j = 0; j < CHECK_N; j++) {
            double v = b[k * CHECK_N + j] = check_value(&state);
            w->b64[0][k * CHECK_LD + j] = w->b64[1][j * CHECK_LD + k] = v;
            w->b[0][k * CHECK_LD + j] = w->b[1][j * CHECK_LD + k] = (float)v;
        }
    for (int i = 0; i < CHECK_M * CHECK_N; i++) w->c0[i] = check_value(&state);
    /* want = alpha A B + beta C0, alpha = 0.75, beta = -0.5 */
    for (int i = 0; i < CHECK_M; i++)
        for (int j = 0; j < CHECK_N; j++) {
            double sum = 0;
            for (int k = 0; k < CHECK_K; k++) sum += a[i * CHECK_K + k] * b[k * CHECK_N + j];
            w->want[i * CHECK_N + j] = 0.75 * sum - 0.5 * w->c0[i * CHECK_N + j];
        }
}

/* ‖got − want‖ / ‖want‖ over the M x N block (got has leading dimension CHECK_LD); NaN stays NaN. */
static double relative_error(const double *want, const void *got, bool is_f32) {
    double diff = 0, norm = 0;
    for (int i = 0; i < CHECK_M; i++)
        for (int j = 0; j < CHECK_N; j++) {
            int at = i * CHECK_LD + j;
            double g = is_f32 ? ((const float *)got)[at] : ((const double *)got)[at];
            double e = want[i * CHECK_N + j];
            diff += (g - e) * (g - e);
            norm += e * e;
        }
    return sqrt(diff / norm);
}

static void check_reset_c(check_buffers *w) {
    for (int i = 0; i < CHECK_M; i++)
        for (int j = 0; j < CHECK_N; j++)
            w->c[i * CHECK_LD + j] = (float)(w->c64[i * CHECK_LD + j] = w->c0[i * CHECK_N + j]);
}

/* One transpose combination through sgemm (and dgemm when given); -1 with the error on a
 * mismatch. f32 rounding of a K=53 dot product is ~1e-7 relative: 1e-5 leaves room for any
 * summation order and still catches one wrong element among the 3,015. */
static int check_one(check_buffers *w, int ta, int tb, ct_sgemm_fn sgemm, ct_dgemm_fn dgemm) {
    enum CBLAS_TRANSPOSE op_a = ta ? CblasTrans : CblasNoTrans, op_b = tb ? CblasTrans : CblasNoTrans;
    check_reset_c(w);
    sgemm(CblasRowMajor, op_a, op_b, CHECK_M, CHECK_N, CHECK_K, 0.75f, w->a[ta], CHECK_LD, w->b[tb], CHECK_LD, -0.5f,
          w->c, CHECK_LD);
    double err = relative_error(w->want, w->c, true);
    if (!(err <= 1e-5))
        return ct_fail("sgemm (%s%s, %dx%dx%d) differs from an f64 reference: relative error %.3g", ta ? "T" : "N",
                       tb ? "T" : "N", CHECK_M, CHECK_N, CHECK_K, err);
    if (!dgemm) return 0;
    dgemm(CblasRowMajor, op_a, op_b, CHECK_M, CHECK_N, CHECK_K, 0.75, w->a64[ta], CHECK_LD, w->b64[tb], CHECK_LD, -0.5,
          w->c64, CHECK_LD);
    err = relative_error(w->want, w->c64, false);
    if (!(err <= 1e-12))
        return ct_fail("dgemm (%s%s, %dx%dx%d) differs from an f64 reference: relative error %.3g", ta ? "T" : "N",
                       tb ? "T" : "N", CHECK_M, CHECK_N, CHECK_K, err);
    return 0;
}

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A forced core whose kernels use instructions the CPU lacks dies of SIGILL in its first GEMM:
 * the check catches it and reports it like a wrong result. The small GEMMs run on the calling
 * thread (OpenBLAS threads only far larger ones), and after a failure the process runs no other
 * GEMM (it re-executes or exits), so leaving OpenBLAS mid-call is harmless. */
static sigjmp_buf check_escape;
static volatile sig_atomic_t check_stage; /* the transpose combination running */

static void on_illegal_instruction(int sig) {
    (void)sig;
    siglongjmp(check_escape, 1);
}

static int check_all(check_buffers *w, ct_sgemm_fn sgemm, ct_dgemm_fn dgemm) {
    check_fill(w);
    for (int t = 0; t < 4; t++) {
        check_stage = t;
        CT_TRY(check_one(w, t & 1, (t >> 1) & 1, sgemm, dgemm));
    }
    return 0;
}

int ct_blas_gemm_check(ct_sgemm_fn sgemm, ct_dgemm_fn dgemm, double *seconds) {
    double t0 = seconds_now();
    check_buffers *w = ct_calloc(1, sizeof *w, "the GEMM check's matrices");
    if (!w) return -1;
    struct sigaction catch = {.sa_handler = on_illegal_instruction}, previous;
    sigemptyset(&catch.sa_mask);
    sigaction(SIGILL, &catch, &previous);
    int rc;
    if (sigsetjmp(check_escape, 1) == 0)
        rc = check_all(w, sgemm, dgemm);
    else
        rc = ct_fail("sgemm or dgemm (%s%s, %dx%dx%d) raised SIGILL: its kernels use instructions this cpu lacks",
                     check_stage & 1 ? "T" : "N", check_stage & 2 ? "T" : "N", CHECK_M, CHECK_N, CHECK_K);
    sigaction(SIGILL, &previous, NULL);
    free(w);
    if (seconds) *seconds = seconds_now() - t0;
    return rc;
}

/* ---- selection at start-up ---- */

static struct {
    bool done, described;
    int status;
    const char *core;      /* openblas_get_corename() */
    ct_isa cpu, kernels;   /* the CPU's class, the core's class */
    bool from_user;        /* OPENBLAS_CORETYPE set by the user */
    bool from_ctune;       /* OPENBLAS_CORETYPE set by ct_blas_select's re-execution */
    double check_ms;
    const char *check;     /* "ok", "not run", or "FAILED" */
    char warning[320];
    char onednn_warning[320];
    char line[560];
    char json[560];
} blas;

/* "OpenBLAS 0.3.21" from "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Zen MAX_THREADS=64". */
static void blas_version(char *buf, size_t size) {
    const char *config = openblas_get_config();
    const char *space = config ? strchr(config, ' ') : NULL;
    size_t n = space ? strcspn(space + 1, " ") + (size_t)(space + 1 - config) : (config ? strlen(config) : 0);
    snprintf(buf, size, "%.*s", (int)n, config ? config : "OpenBLAS");
}

/* Replaces the process with itself under a new environment; returns only when execv failed. */
static void reexec(char **argv) {
    fflush(NULL);
    execv("/proc/self/exe", argv);
}

/* OpenBLAS's own core is below the CPU and nobody chose it: run again with the CPU's core. */
static void force_best_core(char **argv) {
    const char *best = ct_blas_core_for_isa(blas.cpu, ct_cpu_is_amd());
    if (!best) return;
    setenv(DETECTED_ENV, blas.core, 1);
    setenv(FORCED_ENV, best, 1);
    setenv("OPENBLAS_CORETYPE", best, 1);
    unsetenv(SIMULATE_ENV);
    reexec(argv);
    /* Still here: this process keeps its slow kernels and says so. */
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv(FORCED_ENV);
}

/* The core ctune forced computes wrong results: run again with OpenBLAS's own choice. */
static void drop_forced_core(char **argv, const char *forced) {
    char value[64];
    snprintf(value, sizeof value, REJECTED_PREFIX "%s", forced);
    setenv(FORCED_ENV, value, 1);
    unsetenv("OPENBLAS_CORETYPE");
    reexec(argv);
}

static void describe(const char *forced, const char *rejected) {
    char version[64], coretype[160];
    blas.described = true;
    blas_version(version, sizeof version);
    const char *detected = getenv(DETECTED_ENV);
    if (blas.from_user)
        snprintf(coretype, sizeof coretype, "%s set by the user (OPENBLAS_CORETYPE)", forced);
    else if (blas.from_ctune)
        snprintf(coretype, sizeof coretype, "%s forced by ctune (OpenBLAS chose %s)", forced,
                 detected ? detected : "a slower core");
    else if (rejected)
        snprintf(coretype, sizeof coretype, "auto (%s failed the gemm check)", rejected);
    else
        snprintf(coretype, sizeof coretype, "auto");
    snprintf(blas.line, sizeof blas.line,
             "blas: %s, core %s (%s kernels), cpu %s, coretype %s, gemm check %s (%.2f ms)%s; matmul sgemm: %s; "
             "bf16 gemm: %s",
             version,
             blas.core, ct_isa_name(blas.kernels), ct_isa_name(blas.cpu), coretype, blas.check, blas.check_ms,
             ct_blas_below_cpu() ? ", kernels BELOW the cpu" : "", ct_sgemm_library(), ct_cpu_bf16_gemm_path());
    snprintf(blas.json, sizeof blas.json,
             "\"blas\": \"%s\", \"blas_core\": \"%s\", \"blas_kernels\": \"%s\", \"cpu_isa\": \"%s\", "
             "\"blas_coretype\": \"%s\", \"matmul_sgemm\": \"%s\", \"bf16_gemm\": \"%s\"",
             version, blas.core, ct_isa_name(blas.kernels), ct_isa_name(blas.cpu),
             blas.from_user ? "user" : blas.from_ctune ? "forced" : "auto", ct_sgemm_library(),
             ct_cpu_bf16_gemm_path());
}

static void set_warning(const char *forced, const char *rejected) {
    const char *best = ct_blas_core_for_isa(blas.cpu, ct_cpu_is_amd());
    if (rejected)
        snprintf(blas.warning, sizeof blas.warning,
                 "blas: OPENBLAS_CORETYPE=%s failed the start-up GEMM check on this cpu; using OpenBLAS's own "
                 "choice %s (%s kernels)", rejected, blas.core, ct_isa_name(blas.kernels));
    else if (ct_blas_below_cpu() && blas.from_user)
        snprintf(blas.warning, sizeof blas.warning,
                 "blas: OPENBLAS_CORETYPE=%s (set in the environment) runs %s kernels on a cpu with %s; GEMMs run "
                 "several times slower (unset it, or set %s)", forced, ct_isa_name(blas.kernels), ct_isa_name(blas.cpu),
                 best ? best : "a newer core");
    else if (ct_blas_below_cpu())
        snprintf(blas.warning, sizeof blas.warning,
                 "blas: OpenBLAS runs %s (%s kernels) on a cpu with %s and could not be switched; GEMMs run several "
                 "times slower", blas.core, ct_isa_name(blas.kernels), ct_isa_name(blas.cpu));
}

/* The matmuls' f32 GEMM goes through oneDNN when ctune has it (kernels/cpu/cpu_sgemm.h): the same
 * check, through ct_sgemm; a failure falls back to OpenBLAS with a warning. */
static void check_onednn(void) {
    if (!ct_sgemm_uses_onednn() || ct_blas_gemm_check(ct_sgemm_as_cblas, NULL, NULL) == 0) return;
    snprintf(blas.onednn_warning, sizeof blas.onednn_warning,
             "blas: %s failed the start-up GEMM check on this cpu (%s); the matmuls use OpenBLAS",
             ct_sgemm_library(), ct_last_error());
    ct_sgemm_use_openblas();
}

int ct_blas_select(char **argv) {
    if (blas.done) return blas.status;
    blas.done = true;
    blas.core = openblas_get_corename();
    if (!blas.core) blas.core = "unknown";
    blas.cpu = ct_cpu_isa();
    blas.kernels = ct_blas_core_isa(blas.core);
    const char *env = getenv("OPENBLAS_CORETYPE"), *guard = getenv(FORCED_ENV);
    blas.from_ctune = env && guard && !strcasecmp(env, guard);
    blas.from_user = env && !blas.from_ctune && !getenv(SIMULATE_ENV);
    const char *rejected = guard && !strncmp(guard, REJECTED_PREFIX, strlen(REJECTED_PREFIX))
                               ? guard + strlen(REJECTED_PREFIX) : NULL;

    if (!blas.from_user && !blas.from_ctune && !rejected && ct_blas_below_cpu()) force_best_core(argv);

    double seconds = 0;
    int rc = ct_blas_gemm_check(cblas_sgemm, cblas_dgemm, &seconds);
    blas.check_ms = seconds * 1e3;
    blas.check = rc == 0 ? "ok" : "FAILED";
    char why[256] = "";
    if (rc < 0) snprintf(why, sizeof why, "%s", ct_last_error()); /* ct_fail below reuses its buffer */
    if (rc < 0 && blas.from_ctune) drop_forced_core(argv, env); /* returns only if execv failed */
    if (rc == 0) check_onednn();
    describe(env, rejected);
    set_warning(env, rejected);
    if (rc < 0) {
        blas.status = ct_fail("blas: OpenBLAS core %s%s fails the start-up GEMM check on this cpu (%s); %s", blas.core,
                              blas.from_user ? " (OPENBLAS_CORETYPE)" : "", why,
                              blas.from_user ? "unset OPENBLAS_CORETYPE or name an older core"
                                             : "set OPENBLAS_CORETYPE to an older core, e.g. Sandybridge");
        return blas.status;
    }
    return 0;
}

static void ensure_described(void) {
    if (blas.described) return;
    /* Not selected (a program that does not call ct_blas_select): describe what is there. */
    blas.core = openblas_get_corename();
    if (!blas.core) blas.core = "unknown";
    blas.cpu = ct_cpu_isa();
    blas.kernels = ct_blas_core_isa(blas.core);
    blas.from_user = getenv("OPENBLAS_CORETYPE") != NULL;
    blas.check = "not run";
    describe(getenv("OPENBLAS_CORETYPE"), NULL);
}

const char *ct_blas_warning(void) {
    if (blas.warning[0]) return blas.warning;
    return blas.onednn_warning[0] ? blas.onednn_warning : NULL;
}

bool ct_blas_below_cpu(void) {
    return blas.cpu != CT_ISA_UNKNOWN && blas.kernels != CT_ISA_UNKNOWN && blas.kernels < blas.cpu;
}

bool ct_blas_coretype_from_user(void) { return blas.from_user; }

const char *ct_blas_describe(void) {
    ensure_described();
    return blas.line;
}

const char *ct_blas_json(void) {
    ensure_described();
    return blas.json;
}
