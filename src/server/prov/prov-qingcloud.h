/* prov-qingcloud.h - the pure parts of the qingcloud provider driver
 * (prov-qingcloud.c): names that carry herd's ids, QingCloud answers turned
 * into struct prov_instance, and the RunInstances parameters. No I/O, so the
 * unit test (tests/unit/test-prov-qingcloud.c) feeds them canned JSON. */
#ifndef HERD_PROV_QINGCLOUD_H
#define HERD_PROV_QINGCLOUD_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "herr.h"
#include "prov.h"

/* QingCloud's user data limit: the docs' userdata page
 * (content/compute/vm/manual/userdata.md in yunify/qingcloud-docs) allows
 * 4 KiB for `exec` and `plain` before base64; larger needs a `tar`
 * attachment (UploadUserDataAttachment), not implemented yet. */
#define QCP_USERDATA_MAX_BYTES 4096

/* "herd-<server instance>-<host id>": the instance name herd gives a host,
 * searched for before and after RunInstances (so a crash or an unknown
 * outcome never makes a second instance) and parsed by list(). Returns 0, or
 * HERR_INVALID when it does not fit in n. */
int qcp_instance_name(const char *server_instance, const char *host_id, char *out, size_t n);

/* The host id in name if it is "herd-<server_instance>-<8 lowercase hex>"
 * exactly: true and the id in out; false for any other name (another
 * server's, a person's, a longer suffix). */
bool qcp_host_id_from_name(const char *server_instance, const char *name, char out[16]);

/* The VxNet name of herd's network id: "herd-<net id>" (the id already
 * hashes this server's instance and the network's name). */
int qcp_vxnet_name(const char *net_id, char *out, size_t n);

/* prov_instance state for QingCloud's status and transition_status:
 * "pending", "running", "stopped" (stopped, suspended, and any instance
 * stopping or suspending, so it is never adopted), or NULL for terminated,
 * ceased and terminating (gone). */
const char *qcp_state(const char *status, const char *transition_status);

/* One item of DescribeInstances' instance_set into out: 0 if it is this
 * server's (name parses with qcp_host_id_from_name) and alive; 1 if it is
 * not ours or gone (skip it); HERR_INVALID if malformed (no instance_id). */
int qcp_instance_parse(const json_t *item, const char *server_instance, struct prov_instance *out,
		       struct herr *err);

/* The RunInstances parameters for spec on VxNet vxnet_id (owned object in
 * *out): image_id, instance_type or cpu + memory, count 1, instance_name,
 * login_mode keypair + login_keypair (when spec->keypair), vxnets.1
 * "<vxnet>|<private ip>", security_group, hostname, userdata_type exec and
 * userdata_value = base64 of the agent bootstrap script (bootstrap.h) that
 * carries spec->user_data (the agent config) and installs the agent from
 * spec->server_url, checked against spec->agent_sha256, with
 * spec->join_token. Returns 0, or HERR_INVALID
 * naming the template field ("image", "instance_type", "keypair",
 * "user_data") when the spec cannot be launched. */
int qcp_run_params(const struct host_spec *spec, const char *server_instance, const char *vxnet_id,
		   json_t **out, struct herr *err);

/* The qingcloud account check (prov_ops.config_check): zone, access_key_id
 * and secret_file required, endpoint and the values as qc_client_init
 * checks them; err->field is "path.field". */
int qcp_config_check(const json_t *config, const char *path, struct herr *err);

#endif
