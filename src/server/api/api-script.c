/* api-script.c - the script library: named scripts whose every content
 * change is a new version (kept in script_versions, with its hash), the
 * interpreter read from the shebang. Built-in scripts are read-only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "model/script.h"
#include "util.h"

void
api_script_versions(struct req *rq)
{
	struct herr err = HERR_INIT;
	json_t *rows = NULL;

	if (script_versions_list(rq->srv->store, req_param(rq, 0), &rows, &err) < 0)
		return reply_err(rq, &err);
	reply_json(rq, 200, json_pack("{s:o}", "items", rows));
}
