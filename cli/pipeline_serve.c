#include "cli/pipeline.h"
#include <cjson/cJSON.h>
int ct_stage_serve(ct_stage_run *s) {
    cJSON_AddStringToObject(s->metrics, "note", "not yet");
    return 0;
}
