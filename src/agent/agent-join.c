/* agent-join.c - getting a host credential: resume from a saved one (the
 * agent restarted, or the machine rebooted and /run was wiped), or trade the
 * join token for one (a join whose answer was lost is simply sent again: the
 * token stays good until the host's first state report). Writes
 * run_dir/host.json for `herd meta` and keeps a copy plus the init scripts
 * in the state dir. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"
#include "util.h"
#include "xalloc.h"

#define JOIN_RETRY_MS 60000   /* after a refused join: slow, but never give up */

const char *
agent_state_path(const struct agent *a, const char *name, char *out, size_t outsz)
{
	snprintf(out, outsz, "%s/%s", a->cfg.state_dir, name);
	return out;
}

static void
copy_str(char *dst, size_t dstsz, json_t *v)
{
	const char *s = json_string_value(v);

	snprintf(dst, dstsz, "%s", s ? s : "");
}

static char *
agent_host_json_text(struct agent *a)
{
	json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
			      "server", a->cfg.server, "host_id", a->cfg.host_id,
			      "host", a->host, "cluster", a->cluster, "group", a->group,
			      "private_ip", a->private_ip, "credential", a->credential);
	char *text;

	BUG_ON(j == NULL);
	if (a->ca_pem)   /* the pinned CA: `herd meta` trusts exactly it too */
		json_object_set_new(j, "ca_pem", json_string(a->ca_pem));
	text = json_dumps(j, JSON_INDENT(2));
	json_decref(j);
	BUG_ON(text == NULL);
	return text;
}

int
agent_write_host_json(struct agent *a)
{
	char path[512], *text = agent_host_json_text(a);
	int rc;

	rc = mkdir_p(a->cfg.run_dir, 0700);
	if (rc == 0)
		chmod(a->cfg.run_dir, 0700);
	snprintf(path, sizeof(path), "%s/%s", a->cfg.run_dir, AGENT_HOST_FILE);
	if (rc == 0)
		rc = file_write_atomic(path, text, strlen(text), 0600);
	if (rc < 0)
		log_err("cannot write '%s': %s", path, strerror(-rc));
	free(text);
	return rc;
}

static void
agent_save_credential(struct agent *a)
{
	char path[512], *text;
	int rc;

	text = agent_host_json_text(a);
	agent_state_path(a, AGENT_CRED_FILE, path, sizeof(path));
	rc = file_write_atomic(path, text, strlen(text), 0600);
	if (rc < 0)
		log_warn("cannot write '%s': %s", path, strerror(-rc));
	free(text);
}

/* Loads a saved credential if it is for this host. */
static bool
agent_resume_from(struct agent *a, const char *path)
{
	json_t *j, *cred;
	char *text;
	bool ok;

	text = file_read(path, 64 * 1024, NULL);
	if (text == NULL)
		return false;
	j = json_loads(text, 0, NULL);
	free(text);
	cred = j ? json_object_get(j, "credential") : NULL;
	ok = json_is_string(cred) && json_string_length(cred) > 0 &&
	     json_string_length(cred) < sizeof(a->credential) &&
	     json_is_string(json_object_get(j, "host_id")) &&
	     strcmp(json_string_value(json_object_get(j, "host_id")), a->cfg.host_id) == 0;
	if (ok) {
		copy_str(a->credential, sizeof(a->credential), cred);
		copy_str(a->host, sizeof(a->host), json_object_get(j, "host"));
		copy_str(a->cluster, sizeof(a->cluster), json_object_get(j, "cluster"));
		copy_str(a->group, sizeof(a->group), json_object_get(j, "group"));
		copy_str(a->private_ip, sizeof(a->private_ip), json_object_get(j, "private_ip"));
		log_info("resuming as host '%s' with the credential in '%s'", a->host, path);
	} else if (j) {
		log_warn("ignoring '%s': not a credential for host '%s'", path, a->cfg.host_id);
	}
	json_decref(j);
	return ok;
}

static void
agent_use_credential(struct agent *a)
{
	size_t max = a->http.max_response;

	httpc_release(&a->http);
	agent_http_init(a, &a->http, a->credential);
	a->http.max_response = max;
}

static void
agent_load_init(struct agent *a)
{
	char path[512];
	json_t *j;

	agent_state_path(a, AGENT_INIT_FILE, path, sizeof(path));
	j = json_load_file(path, 0, NULL);
	if (j && !json_is_array(j)) {
		json_decref(j);
		j = NULL;
	}
	if (j == NULL)
		log_warn("no init scripts saved in '%s': assuming none", path);
	json_decref(a->init);
	a->init = j ? j : json_array();
}

/* Takes what the join answer says; false if it lacks a credential. */
static bool
agent_take_join_answer(struct agent *a, json_t *resp)
{
	json_t *cred = json_object_get(resp, "credential");
	json_t *host = json_object_get(resp, "host");
	json_t *init = json_object_get(resp, "init");
	json_t *hb = json_object_get(resp, "heartbeat_s");
	char path[512], *text;
	int rc;

	if (!json_is_string(cred) || json_string_length(cred) == 0 ||
	    json_string_length(cred) >= sizeof(a->credential)) {
		log_err("join answer has no valid 'credential'");
		return false;
	}
	copy_str(a->credential, sizeof(a->credential), cred);
	copy_str(a->host, sizeof(a->host), json_object_get(host, "name"));
	if (a->host[0] == '\0')
		snprintf(a->host, sizeof(a->host), "%s", a->cfg.host);
	copy_str(a->cluster, sizeof(a->cluster), json_object_get(host, "cluster"));
	copy_str(a->group, sizeof(a->group), json_object_get(host, "group"));
	copy_str(a->private_ip, sizeof(a->private_ip), json_object_get(host, "private_ip"));
	if (json_is_integer(hb) && json_integer_value(hb) >= 1 && json_integer_value(hb) <= 3600)
		a->heartbeat_s = (int)json_integer_value(hb);
	json_decref(a->init);
	a->init = json_is_array(init) ? json_incref(init) : json_array();

	/* a fresh join starts a fresh init record */
	unlink(agent_state_path(a, AGENT_DONE_FILE, path, sizeof(path)));
	text = json_dumps(a->init, JSON_COMPACT);
	agent_state_path(a, AGENT_INIT_FILE, path, sizeof(path));
	rc = file_write_atomic(path, text, strlen(text), 0600);
	if (rc < 0)
		log_warn("cannot write '%s': %s", path, strerror(-rc));
	free(text);
	agent_save_credential(a);
	return true;
}

int
agent_join(struct agent *a)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", a->cfg.run_dir, AGENT_HOST_FILE);
	if (agent_resume_from(a, path) ||
	    agent_resume_from(a, agent_state_path(a, AGENT_CRED_FILE, path, sizeof(path)))) {
		agent_use_credential(a);
		agent_write_host_json(a);
		agent_load_init(a);
		return 0;
	}
	if (a->cfg.join_token[0] == '\0') {
		log_err("no saved credential and no 'join_token' in the config: cannot join");
		return -ENOENT;
	}
	for (;;) {
		struct herr err = HERR_INIT;
		json_t *body, *resp = NULL;
		bool ok;
		int rc;

		log_info("joining %s as host '%s'", a->cfg.server, a->cfg.host_id);
		body = json_pack("{s:s, s:s}", "host_id", a->cfg.host_id,
				 "join_token", a->cfg.join_token);
		rc = agent_request(a, "POST", "/v1/agent/join", body, &resp, &err);
		json_decref(body);
		if (rc == -ECANCELED)
			return rc;
		ok = rc == 0 && agent_take_join_answer(a, resp);
		json_decref(resp);
		if (ok)
			break;
		log_err("join failed; trying again in %d s", JOIN_RETRY_MS / 1000);
		agent_wait(a, JOIN_RETRY_MS);
		if (agent_stopping())
			return -ECANCELED;
	}
	agent_use_credential(a);
	agent_write_host_json(a);
	log_info("joined: host '%s' of group '%s' in cluster '%s', address %s", a->host, a->group,
		 a->cluster, a->private_ip[0] ? a->private_ip : "-");
	return 0;
}
