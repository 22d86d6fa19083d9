/* model/template-version.h - template versions: what a host of a group is
 * made from, named by a content hash. A version covers the template's spec
 * (all but its description) and the version number of each init script it
 * runs, so a change of either is a new version, and going back to the same
 * content is the same version again. Each host records the version it was
 * launched from (hosts.template_version; "unknown" for hosts made before
 * versions existed), and each version launched is kept (template_versions)
 * so `herd group diff` can say what changed. */
#ifndef HERD_MODEL_TEMPLATE_VERSION_H
#define HERD_MODEL_TEMPLATE_VERSION_H

#include <stdbool.h>

#include <jansson.h>

#include "herr.h"

struct store;

#define TEMPLATE_VERSION_LEN 12   /* hex digits of the SHA-256 kept */

/* The snapshot a version is the hash of, from a template spec (borrowed)
 * and its scripts' versions ({name: number}, borrowed; NULL = none):
 * {"spec": spec without "description", "scripts": {...}}. Owned. Pure. */
json_t *template_version_snapshot(const json_t *spec, const json_t *scripts);

/* The version of a snapshot: the first TEMPLATE_VERSION_LEN hex digits of
 * the SHA-256 of its compact, key-sorted JSON, into out. Pure. */
void template_version_of(const json_t *snapshot, char out[TEMPLATE_VERSION_LEN + 1]);

/* What changed from snapshot old to snapshot new (both borrowed; old NULL
 * = not known): an owned array of {"field", "from", "to"} in key order,
 * spec fields by name, scripts as "script NAME" (from/to their version
 * numbers, null where absent); when old is NULL, one item {"field":
 * "version", "from": "unknown", "to": null}. Pure. */
json_t *template_version_changes(const json_t *old, const json_t *new_);

/* Whether a host launched from template host_template at version
 * host_version (NULL or "" = unknown) is on template template_ at version
 * ver: a host of another template, or of unknown version, is behind. Pure. */
bool template_version_is_current(const char *host_template, const char *host_version,
				 const char *template_, const char *ver);

/* The current version of template name: its spec and the latest version
 * of each init script. ver gets the version, *snapshot (when not NULL) the
 * owned snapshot. 0, HERR_NOTFOUND or the store's error. */
int template_version_current(struct store *st, const char *name,
			     char ver[TEMPLATE_VERSION_LEN + 1], json_t **snapshot,
			     struct herr *err);

/* Keeps version ver of template name with its snapshot (borrowed), once:
 * a version already kept is left as it is. 0 or the store's error. */
int template_version_record(struct store *st, const char *name, const char *ver,
			    const json_t *snapshot, struct herr *err);

/* The kept snapshot of version ver of template name (owned), or NULL when
 * not kept or on a store error (err set only then). */
json_t *template_version_get(struct store *st, const char *name, const char *ver,
			     struct herr *err);

/* `herd group diff`: group cluster/grp's template, its current version,
 * its hosts in service or on their way (not failed, not terminated) counted, and each host behind it with
 * its version and template_version_changes() from it to the current one:
 * {"cluster","group","template","version","hosts","current","behind":[
 * {"host","state","template","version","changes"}]}. Owned in *out. 0,
 * HERR_NOTFOUND (group or template) or the store's error. */
int group_diff(struct store *st, const char *cluster, const char *grp, json_t **out,
	       struct herr *err);

#endif
