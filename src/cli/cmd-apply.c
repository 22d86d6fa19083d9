/* cmd-apply.c - `herd apply -f FILE [--dry-run]` and `herd delete -f FILE`:
 * the blueprint is read here (libyaml), script `file:` paths are resolved
 * relative to it and inlined, and the server validates and applies the
 * whole document in one transaction. Errors come back naming a document
 * path, which the line map turns into FILE:LINE. The answer's warnings
 * (flapping predicted at a group's load, api-apply.c) go to stderr. */
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util.h"
#include "xalloc.h"
#include "yamljson.h"

#define SCRIPT_MAX (1024 * 1024)

struct bp {
	const char *file;
	json_t *doc;
	struct linemap *lines;
};

static int
bp_fail(const struct bp *b, const char *path, const char *msg)
{
	int line = b->lines && path ? linemap_line(b->lines, path) : 0;

	if (line > 0)
		fprintf(stderr, "%s:%d: %s%s%s\n", b->file, line, path && *path ? cli_esc(path) : "",
			path && *path ? ": " : "", cli_esc(msg));
	else
		fprintf(stderr, "%s: %s%s%s\n", b->file, path && *path ? cli_esc(path) : "",
			path && *path ? ": " : "", cli_esc(msg));
	return 1;
}

static int
bp_load(struct bp *b, const char *file)
{
	struct herr err = HERR_INIT;
	size_t len;
	char *text, *dircopy, *dir;
	json_t *scripts, *s;
	size_t i;

	memset(b, 0, sizeof(*b));
	b->file = file;
	text = file_read(file, YAMLJSON_MAX_BYTES, &len);
	if (text == NULL)
		return cli_fail("cannot read '%s': %s", file,
				errno == EFBIG ? "larger than 1 MiB" : strerror(errno));
	if (yaml_to_json(text, len, &b->doc, &b->lines, &err) < 0) {
		free(text);
		/* libyaml messages start with "line N: " */
		if (strncmp(err.msg, "line ", 5) == 0)
			fprintf(stderr, "%s:%s\n", file, err.msg + 5);
		else
			fprintf(stderr, "%s: %s\n", file, err.msg);
		return 1;
	}
	free(text);
	if (!json_is_object(b->doc))
		return bp_fail(b, "", "a blueprint is a mapping of lists (accounts, networks, ...)");
	dircopy = xstrdup(file);
	dir = dirname(dircopy);
	scripts = json_object_get(b->doc, "scripts");
	json_array_foreach(scripts, i, s) {
		json_t *f = json_object_get(s, "file");
		char fp[64], *path, *content;
		size_t n;

		if (f == NULL)
			continue;
		snprintf(fp, sizeof(fp), "scripts[%zu].file", i);
		if (!json_is_string(f)) {
			free(dircopy);
			return bp_fail(b, fp, "must be a path");
		}
		if (json_object_get(s, "content")) {
			free(dircopy);
			return bp_fail(b, fp, "give either file or content, not both");
		}
		path = json_string_value(f)[0] == '/' ? xstrdup(json_string_value(f))
						      : xasprintf("%s/%s", dir, json_string_value(f));
		content = file_read(path, SCRIPT_MAX, &n);
		if (content == NULL) {
			char msg[1200];
			snprintf(msg, sizeof(msg), "cannot read '%s': %s", path,
				 errno == EFBIG ? "larger than 1 MiB" : strerror(errno));
			free(path);
			free(dircopy);
			return bp_fail(b, fp, msg);
		}
		json_object_set_new(s, "content", json_stringn(content, n));
		json_object_del(s, "file");
		free(content);
		free(path);
	}
	free(dircopy);
	return 0;
}

static void
bp_release(struct bp *b)
{
	json_decref(b->doc);
	linemap_free(b->lines);
}

/* Sends the document; maps a field error to FILE:LINE. */
static int
bp_send(struct cli *c, struct bp *b, const char *path, bool dry, long *status, json_t **resp)
{
	struct herr err = HERR_INIT;
	json_t *body = json_pack("{s:O,s:b}", "document", b->doc, "dry_run", dry);
	int rc = httpc_json(cli_http(c), "POST", path, body, status, resp, &err);

	json_decref(body);
	if (rc < 0)
		return cli_fail("%s", err.msg);
	if (*status >= 300) {
		json_t *e = json_object_get(*resp, "error");
		const char *field = json_string_value(json_object_get(e, "field"));
		const char *msg = json_string_value(json_object_get(e, "message"));
		if (*status == 401 || *status == 403)
			return cli_fail("%s", msg ? msg : "not allowed");
		return bp_fail(b, field ? field : "", msg ? msg : "refused");
	}
	return 0;
}

static void
print_changes(json_t *changes, bool dry)
{
	json_t *ch;
	size_t i;
	int n = 0;

	json_array_foreach(changes, i, ch) {
		const char *a = json_string_value(json_object_get(ch, "action"));
		const char *mark = strcmp(a, "create") == 0 ? "+" : strcmp(a, "update") == 0 ? "~"
				 : strcmp(a, "remove") == 0 ? "-" : NULL;
		if (mark == NULL)
			continue;
		n++;
		printf("%s %s %s %s", mark, dry ? (strcmp(a, "create") == 0 ? "would create"
					      : strcmp(a, "update") == 0 ? "would update" : "would remove") : a,
		       cli_esc(json_string_value(json_object_get(ch, "kind"))),
		       cli_esc(json_string_value(json_object_get(ch, "name"))));
		if (json_array_size(json_object_get(ch, "fields"))) {
			json_t *f;
			size_t k;
			printf(" (");
			json_array_foreach(json_object_get(ch, "fields"), k, f)
				printf("%s%s", k ? ", " : "", cli_esc(json_string_value(f)));
			printf(")");
		}
		putchar('\n');
	}
	if (n == 0)
		printf("no changes (%zu resources up to date)\n", json_array_size(changes));
}

int
cmd_apply(struct cli *c, int argc, char **argv)
{
	const char *file = cli_opt(c, "file");
	bool dry = cli_flag(c, "dry-run");
	struct bp b;
	json_t *resp = NULL, *w;
	long status = 0;
	size_t i;
	int rc;

	if (file == NULL)
		return cli_fail("usage: herd apply -f FILE [--dry-run]");
	if ((rc = bp_load(&b, file)) != 0)
		return rc;
	rc = bp_send(c, &b, "/v1/apply", dry, &status, &resp);
	if (rc == 0) {
		if (c->json)
			cli_print_json(resp);
		else
			print_changes(json_object_get(resp, "changes"), dry);
		json_array_foreach(json_object_get(resp, "warnings"), i, w)
			fprintf(stderr, "warning: %s\n", cli_esc(json_string_value(w)));
	}
	json_decref(resp);
	bp_release(&b);
	return rc;
}

int
cmd_delete(struct cli *c, int argc, char **argv)
{
	const char *file = cli_opt(c, "file");
	const char *tmo = cli_opt(c, "timeout");
	bool dry = cli_flag(c, "dry-run");
	int64_t timeout_ms = 5 * 60 * 1000, deadline;
	struct bp b;
	json_t *resp = NULL;
	long status = 0;
	int rc;

	if (tmo && parse_duration_ms(tmo, &timeout_ms) < 0)
		return cli_fail("invalid --timeout '%s'", tmo);
	if (file == NULL)
		return cli_fail("usage: herd delete -f FILE [--timeout 5m]");
	if ((rc = bp_load(&b, file)) != 0)
		return rc;
	deadline = mono_ms() + timeout_ms;
	for (bool said = false;;) {
		json_decref(resp);
		resp = NULL;
		if ((rc = bp_send(c, &b, "/v1/unapply", dry, &status, &resp)) != 0)
			break;
		if (status != 202 || dry) {
			if (status == 202) {
				printf("would scale to 0 and wait for: ");
				cli_print_json(json_object_get(resp, "waiting"));
			} else if (c->json) {
				cli_print_json(resp);
			} else {
				print_changes(json_object_get(resp, "changes"), dry);
			}
			break;
		}
		if (!said) {
			json_t *w;
			size_t i;
			json_array_foreach(json_object_get(resp, "waiting"), i, w)
				fprintf(stderr, "waiting for the hosts of %s to terminate\n",
					cli_esc(json_string_value(w)));
			said = true;
		}
		if (mono_ms() > deadline) {
			rc = cli_fail("hosts still terminating after %s; run herd delete again later",
				      tmo ? tmo : "5m");
			break;
		}
		sleep_ms(300);
	}
	json_decref(resp);
	bp_release(&b);
	return rc;
}
