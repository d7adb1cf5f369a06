/* accuracy.svg of the overview page: one pair of horizontal bars per model and baseline
 * (single-turn and multi-turn test accuracy, 0 to 1), plain SVG 1.1 like the trainer's plot.svg,
 * so the stages without a training log have a picture too. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/pipeline.h"
#include "core/atomic_file.h"
#include "core/error.h"

enum { LEFT = 300, BAR_WIDTH = 480, ROW = 44, TOP = 50 };

static void escaped(FILE *out, const char *text) {
    for (; *text; text++) {
        if (*text == '&') fputs("&amp;", out);
        else if (*text == '<') fputs("&lt;", out);
        else if (*text == '>') fputs("&gt;", out);
        else fputc(*text, out);
    }
}

static void bar(FILE *out, double y, double value, const char *colour) {
    if (isnan(value)) return;
    double w = BAR_WIDTH * fmin(1.0, fmax(0.0, value));
    fprintf(out, "<rect x=\"%d\" y=\"%.1f\" width=\"%.1f\" height=\"16\" fill=\"%s\"/>\n", LEFT, y, w, colour);
    fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\">%.4f</text>\n", LEFT + w + 6, y + 13, value);
}

int ct_pipeline_accuracy_svg(const char *path, const char *const *names, const double *single, const double *multi,
                             int n) {
    char *tmp;
    FILE *out = ct_atomic_fopen(path, &tmp);
    if (!out) return -1;
    int height = TOP + ROW * n + 40;
    fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"880\" "
                 "height=\"%d\" font-family=\"sans-serif\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
                 "<text x=\"20\" y=\"24\" font-size=\"15\">Test accuracy: single-turn (blue), multi-turn (red)</text>\n",
            height);
    for (int i = 0; i < n; i++) {
        double y = TOP + ROW * i;
        fprintf(out, "<text x=\"%d\" y=\"%.1f\" font-size=\"13\" text-anchor=\"end\">", LEFT - 10, y + 22);
        escaped(out, names[i]);
        fputs("</text>\n", out);
        bar(out, y, single[i], "#1f77b4");
        bar(out, y + 18, multi[i], "#d62728");
    }
    for (int t = 0; t <= 10; t += 2) /* the 0-1 axis */
        fprintf(out, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#ccc\"/><text x=\"%d\" y=\"%d\" "
                     "font-size=\"11\" text-anchor=\"middle\">%.1f</text>\n",
                LEFT + BAR_WIDTH * t / 10, TOP - 6, LEFT + BAR_WIDTH * t / 10, height - 30,
                LEFT + BAR_WIDTH * t / 10, height - 14, t / 10.0);
    fputs("</svg>\n", out);
    int rc = fclose(out) == 0 ? ct_atomic_commit(tmp, path)
                              : (ct_atomic_discard(tmp), ct_fail("%s: cannot write it", path));
    free(tmp);
    return rc;
}
