/* builtin.c - the built-in script library. At start the server reads every
 * *.sh file of its scripts directory (--scripts DIR; else ../scripts beside
 * the herd binary, as in a source tree; else /usr/share/herd/scripts) and
 * makes each a read-only script resource (`builtin: true`), with a new
 * version only when its content or description changed. A user's own script
 * of the same name is left alone, with a warning. */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api/api.h"
#include "log.h"
#include "server.h"
#include "store/store.h"
#include "util.h"
#include "xalloc.h"

#define BUILTIN_DEFAULT_DIR "/usr/share/herd/scripts"
#define BUILTIN_DESC_MAX 200
#define BUILTIN_MAX_FILES 1000

/* The description: the first comment line after the shebang, without
 * "# " and without a leading "NAME - ". */
static json_t *
builtin_description(const char *name, const char *text)
{
	const char *p = text, *end;
	size_t n = strlen(name);

	if (strncmp(p, "#!", 2) == 0)
		p += strcspn(p, "\n") + (p[strcspn(p, "\n")] ? 1 : 0);
	if (p[0] != '#' || p[1] == '!')
		return NULL;
	p++;
	while (*p == ' ')
		p++;
	if (strncmp(p, name, n) == 0 && strncmp(p + n, " - ", 3) == 0)
		p += n + 3;
	end = p + strcspn(p, "\n");
	if (end - p > BUILTIN_DESC_MAX)
		end = p + BUILTIN_DESC_MAX;
	while (end > p && (end[-1] == ' ' || end[-1] == '\r'))
		end--;
	return end > p ? json_stringn(p, (size_t)(end - p)) : NULL;
}

/* Creates or updates one built-in script; 1 if it changed, 0 if not. */
static int
builtin_put(struct server *s, const char *name, const char *text, struct herr *err)
{
	json_t *spec = json_pack("{s:s}", "content", text), *desc;
	const char *old_hash, *old_desc, *new_desc;
	struct res old = { 0 };
	bool have, created;
	char hash[65];
	int rc;

	if (spec == NULL)
		return herr_set(err, HERR_INVALID, "it is not UTF-8 text");
	desc = builtin_description(name, text);
	if (desc)
		json_object_set_new(spec, "description", desc);
	if ((rc = store_begin(s->store, err)) < 0)
		goto out;
	have = res_get(s->store, &kind_script, "", name, &old, err) == 0;
	herr_clear(err);
	if (have && !json_is_true(json_object_get(old.spec, "builtin"))) {
		log_warn("built-in script '%s' not loaded: a script of that name was made by a user",
			 name);
		store_rollback(s->store);
		rc = 0;
		goto out;
	}
	sha256_hex(text, strlen(text), hash);
	old_hash = have ? json_string_value(json_object_get(old.spec, "hash")) : NULL;
	old_desc = have ? json_string_value(json_object_get(old.spec, "description")) : NULL;
	new_desc = json_string_value(json_object_get(spec, "description"));
	if (old_hash && strcmp(hash, old_hash) == 0 &&
	    strcmp(old_desc ? old_desc : "", new_desc ? new_desc : "") == 0) {
		store_rollback(s->store);
		rc = 0;
		goto out;
	}
	/* validated as new: the read-only check is for users' updates */
	if ((rc = kind_validate(&kind_script, spec, NULL, "", err)) < 0)
		goto out_tx;
	json_object_set_new(spec, "builtin", json_true());
	if ((rc = script_store_version(s->store, name, spec, err)) < 0 ||
	    (rc = res_put(s->store, &kind_script, "", name, spec, "", &created, err)) < 0 ||
	    (rc = store_commit(s->store, err)) < 0)
		goto out_tx;
	log_info("built-in script '%s' %s (version %lld)", name, created ? "loaded" : "updated",
		 (long long)json_integer_value(json_object_get(spec, "latest")));
	rc = 1;
	goto out;
out_tx:
	store_rollback(s->store);
out:
	res_release(&old);
	json_decref(spec);
	return rc;
}

static int
builtin_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
builtin_scripts_load(struct server *s, struct herr *err)
{
	char dir[PATH_MAX], *names[BUILTIN_MAX_FILES];
	size_t n = 0, loaded = 0;
	struct dirent *de;
	struct stat sb;
	DIR *d;

	if (s->scripts_dir[0]) {
		snprintf(dir, sizeof(dir), "%s", s->scripts_dir);
	} else {
		const char *slash = strrchr(s->self_bin, '/');

		snprintf(dir, sizeof(dir), "%.*s/../scripts", slash ? (int)(slash - s->self_bin) : 1,
			 slash ? s->self_bin : ".");
		if (stat(dir, &sb) < 0 || !S_ISDIR(sb.st_mode))
			snprintf(dir, sizeof(dir), "%s", BUILTIN_DEFAULT_DIR);
	}
	if ((d = opendir(dir)) == NULL) {
		if (s->scripts_dir[0])
			return herr_set(err, -errno, "cannot read scripts directory '%s': %s", dir,
					strerror(errno));
		log_info("no built-in scripts: '%s' is not there", dir);
		return 0;
	}
	while ((de = readdir(d)) != NULL && n < BUILTIN_MAX_FILES) {
		size_t len = strlen(de->d_name);
		if (len > 3 && strcmp(de->d_name + len - 3, ".sh") == 0 &&
		    script_name_is_valid(de->d_name))
			names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), builtin_name_cmp);
	for (size_t i = 0; i < n; i++) {
		char path[PATH_MAX + 128], *text;
		size_t tlen = 0;
		int rc;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		text = file_read(path, s->body_max, &tlen);
		if (text == NULL || strlen(text) != tlen) {
			log_warn("built-in script '%s' not loaded: %s", path,
				 text ? "it contains NUL bytes" : strerror(errno));
		} else if ((rc = builtin_put(s, names[i], text, err)) < 0) {
			log_warn("built-in script '%s' not loaded: %s", path, err->msg);
			herr_clear(err);
		} else {
			loaded += (size_t)rc;
		}
		free(text);
		free(names[i]);
	}
	log_info("built-in scripts from '%s': %zu file(s), %zu new or changed", dir, n, loaded);
	return 0;
}
