/* notify/notify-webhook.c - the webhook channel: one JSON POST per
 * notification, signed: X-Herd-Timestamp (unix seconds) and
 * X-Herd-Signature: sha256=HEX, the HMAC-SHA256 under the receiver's
 * secret of "TIMESTAMP.BODY" (the exact body bytes), so a receiver can
 * check both who sent it and that it is not an old one replayed
 * (docs/alert-delivery.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "notify/notify.h"
#include "util.h"

void
notify_webhook_sign(const unsigned char *key, size_t key_len, int64_t ts_s, const char *body,
		    size_t body_len, char out[72])
{
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state st;
	char ts[24];

	snprintf(ts, sizeof(ts), "%lld.", (long long)ts_s);
	crypto_auth_hmacsha256_init(&st, key, key_len);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)ts, strlen(ts));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, body_len);
	crypto_auth_hmacsha256_final(&st, mac);
	memcpy(out, "sha256=", 7);
	sodium_bin2hex(out + 7, 65, mac, sizeof(mac));
	sodium_memzero(&st, sizeof(st));
}

/* One event in the API's words: times as ISO-8601 beside the ms. */
static json_t *
event_out(const json_t *ev)
{
	json_t *o = json_deep_copy(ev);
	char fp[17], t[40];

	notify_fingerprint(ev, fp);
	json_object_set_new(o, "fingerprint", json_string(fp));
	json_object_set_new(o, "at", json_string(fmt_time(json_integer_value(json_object_get(ev, "ts_ms")), t, sizeof(t))));
	json_object_set_new(o, "started_at",
			    json_string(fmt_time(json_integer_value(json_object_get(ev, "started_ms")), t, sizeof(t))));
	json_object_del(o, "silenced");   /* never sent silenced */
	return o;
}

json_t *
notify_webhook_body(const char *receiver, const json_t *events)
{
	const json_t *first = json_array_get(events, 0), *ev;
	json_t *ids = json_array(), *alerts = json_array();
	const char *status = "resolved";
	size_t i;

	json_array_foreach(events, i, ev) {
		json_array_append_new(ids, json_integer(json_integer_value(json_object_get(ev, "id"))));
		json_array_append_new(alerts, event_out(ev));
		if (strcmp(json_string_value(json_object_get(ev, "state")) ?: "", "firing") == 0)
			status = "firing";
	}
	return json_pack("{s:i, s:s, s:s, s:O?, s:O?, s:O?, s:o, s:o}", "version", 1, "receiver", receiver,
			 "status", status, "rule", json_object_get(first, "rule"), "cluster",
			 json_object_get(first, "cluster"), "group", json_object_get(first, "group"),
			 "event_ids", ids, "alerts", alerts);
}

int
notify_webhook_send(const struct receiver *r, const json_t *events, long *status, struct herr *err)
{
	unsigned char key[NOTIFY_SECRET_MAX + 1];
	char sig[72], h_sig[96], h_ts[64], h_ids[64];
	const char *headers[4];
	json_t *body = notify_webhook_body(r->name, events);
	char *text = json_dumps(body, JSON_COMPACT);
	int64_t ts = now_ms() / 1000;
	size_t key_len = 0, n = json_array_size(events);
	int rc, nh = 0;

	json_decref(body);
	snprintf(h_ts, sizeof(h_ts), "X-Herd-Timestamp: %lld", (long long)ts);
	snprintf(h_ids, sizeof(h_ids), "X-Herd-Event-Ids: %lld-%lld",
		 (long long)json_integer_value(json_object_get(json_array_get(events, 0), "id")),
		 (long long)json_integer_value(json_object_get(json_array_get(events, n - 1), "id")));
	if (r->secret_file) {
		if ((rc = notify_secret_read(r->secret_file, "secret_file", key, sizeof(key), &key_len,
					     err)) < 0)
			goto out;
		notify_webhook_sign(key, key_len, ts, text, strlen(text), sig);
		sodium_memzero(key, sizeof(key));
		snprintf(h_sig, sizeof(h_sig), "X-Herd-Signature: %s", sig);
	}
	headers[nh++] = h_ts;
	if (r->secret_file)   /* else unsigned */
		headers[nh++] = h_sig;
	headers[nh++] = h_ids;
	headers[nh] = NULL;
	rc = notify_http_post(r->url, headers, text, strlen(text), r->timeout_ms, status, err);
out:
	free(text);
	return rc;
}
