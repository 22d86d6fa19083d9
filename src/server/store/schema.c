/* schema.c - the store's versioned schema, read by both backends (see
 * schema.h). */
#include "schema.h"

/* Versioned schema. Append only: a released migration is never edited.
 * Tests of an old migration make the store at the version before it with
 * these migrations (store_open_at, tests/tools/store-at.c: test-group-state,
 * e2e 0220), so a new migration needs nothing from them. Written in
 * SQLite's dialect; the PostgreSQL backend translates the column types
 * (store-pg.c, pg_schema_sql); where that is not enough, .pg holds
 * PostgreSQL's text. */
const struct store_migration store_migrations[] = {
	/* 1: the control plane */
	{ .sql =
		"CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
		"CREATE TABLE resources ("
		"  id INTEGER PRIMARY KEY,"
		"  kind TEXT NOT NULL,"
		"  scope TEXT NOT NULL DEFAULT '',"
		"  name TEXT NOT NULL,"
		"  spec TEXT NOT NULL,"
		"  version INTEGER NOT NULL DEFAULT 1,"
		"  created_ms BIGINT NOT NULL,"
		"  updated_ms BIGINT NOT NULL,"
		"  UNIQUE (kind, scope, name));"
		"CREATE TABLE refs ("
		"  from_id INTEGER NOT NULL REFERENCES resources(id) ON DELETE CASCADE,"
		"  to_id INTEGER NOT NULL REFERENCES resources(id),"
		"  PRIMARY KEY (from_id, to_id));"
		"CREATE INDEX refs_to ON refs (to_id);"
		"CREATE TABLE script_versions ("
		"  name TEXT NOT NULL,"
		"  version INTEGER NOT NULL,"
		"  content TEXT NOT NULL,"
		"  hash TEXT NOT NULL,"
		"  interpreter TEXT NOT NULL,"
		"  created_ms BIGINT NOT NULL,"
		"  PRIMARY KEY (name, version));"
		"CREATE TABLE hosts ("
		"  id TEXT PRIMARY KEY,"
		"  name TEXT NOT NULL,"
		"  cluster TEXT NOT NULL,"
		"  grp TEXT NOT NULL,"
		"  seq INTEGER NOT NULL,"
		"  template TEXT NOT NULL,"
		"  account TEXT NOT NULL,"
		"  network TEXT NOT NULL,"
		"  state TEXT NOT NULL,"
		"  reason TEXT NOT NULL DEFAULT '',"
		"  private_ip TEXT,"
		"  instance_id TEXT NOT NULL DEFAULT '',"
		"  client_token TEXT NOT NULL,"
		"  join_hash TEXT,"
		"  join_expires_ms BIGINT NOT NULL DEFAULT 0,"
		"  cred_hash TEXT,"
		"  labels TEXT NOT NULL DEFAULT '{}',"
		"  protected INTEGER NOT NULL DEFAULT 0,"
		"  attempt INTEGER NOT NULL DEFAULT 0,"
		"  created_ms BIGINT NOT NULL,"
		"  updated_ms BIGINT NOT NULL,"
		"  launched_ms BIGINT NOT NULL DEFAULT 0,"
		"  joined_ms BIGINT NOT NULL DEFAULT 0,"
		"  ready_ms BIGINT NOT NULL DEFAULT 0,"
		"  heartbeat_ms BIGINT NOT NULL DEFAULT 0,"
		"  terminated_ms BIGINT NOT NULL DEFAULT 0);"
		"CREATE INDEX hosts_group ON hosts (cluster, grp, state);"
		"CREATE UNIQUE INDEX hosts_live_name ON hosts (cluster, name) WHERE state <> 'terminated';"
		"CREATE UNIQUE INDEX hosts_live_ip ON hosts (network, private_ip) WHERE state <> 'terminated';"
		"CREATE UNIQUE INDEX hosts_cred ON hosts (cred_hash);"
		"CREATE TABLE init_results ("
		"  host_id TEXT NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,"
		"  idx INTEGER NOT NULL,"
		"  script TEXT NOT NULL,"
		"  version INTEGER NOT NULL,"
		"  exit_code INTEGER NOT NULL,"
		"  signal INTEGER NOT NULL DEFAULT 0,"
		"  timed_out INTEGER NOT NULL DEFAULT 0,"
		"  stdout TEXT NOT NULL,"
		"  stderr TEXT NOT NULL,"
		"  stdout_truncated INTEGER NOT NULL DEFAULT 0,"
		"  stderr_truncated INTEGER NOT NULL DEFAULT 0,"
		"  started_ms BIGINT NOT NULL,"
		"  ended_ms BIGINT NOT NULL,"
		"  PRIMARY KEY (host_id, idx));"
		"CREATE TABLE activities ("
		"  id INTEGER PRIMARY KEY,"
		"  ts_ms BIGINT NOT NULL,"
		"  cluster TEXT NOT NULL DEFAULT '',"
		"  grp TEXT NOT NULL DEFAULT '',"
		"  host TEXT NOT NULL DEFAULT '',"
		"  kind TEXT NOT NULL,"
		"  cause TEXT NOT NULL DEFAULT '',"
		"  reason TEXT NOT NULL,"
		"  inputs TEXT NOT NULL DEFAULT '{}');"
		"CREATE INDEX activities_group ON activities (cluster, grp, id);"
		"CREATE TABLE tokens ("
		"  id INTEGER PRIMARY KEY,"
		"  name TEXT NOT NULL UNIQUE,"
		"  role TEXT NOT NULL,"
		"  hash TEXT NOT NULL UNIQUE,"
		"  created_ms BIGINT NOT NULL);"
		"CREATE TABLE audit ("
		"  id INTEGER PRIMARY KEY,"
		"  ts_ms BIGINT NOT NULL,"
		"  who TEXT NOT NULL,"
		"  role TEXT NOT NULL,"
		"  method TEXT NOT NULL,"
		"  path TEXT NOT NULL,"
		"  status INTEGER NOT NULL,"
		"  detail TEXT NOT NULL DEFAULT '');" },
	/* 2: script runs (api-run.c): one row per run, one per target host,
	 * and the live output chunks that `herd run logs --follow` reads. */
	{ .sql =
		"CREATE TABLE runs ("
		"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
		"  script TEXT NOT NULL,"
		"  version INTEGER NOT NULL,"
		"  hash TEXT NOT NULL,"
		"  target_kind TEXT NOT NULL,"
		"  target TEXT NOT NULL,"
		"  env TEXT NOT NULL DEFAULT '{}',"
		"  timeout_ms BIGINT NOT NULL,"
		"  parallel INTEGER NOT NULL DEFAULT 0,"
		"  created_by TEXT NOT NULL,"
		"  created_ms BIGINT NOT NULL,"
		"  ended_ms BIGINT NOT NULL DEFAULT 0,"
		"  state TEXT NOT NULL,"
		"  cancel_requested INTEGER NOT NULL DEFAULT 0);"
		"CREATE INDEX runs_state ON runs (state);"
		"CREATE TABLE run_hosts ("
		"  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
		"  seq INTEGER NOT NULL,"
		"  host_id TEXT NOT NULL,"
		"  host TEXT NOT NULL,"
		"  cluster TEXT NOT NULL,"
		"  grp TEXT NOT NULL,"
		"  state TEXT NOT NULL,"
		"  reason TEXT NOT NULL DEFAULT '',"
		"  exit_code INTEGER,"
		"  signal INTEGER NOT NULL DEFAULT 0,"
		"  delivery TEXT NOT NULL UNIQUE,"
		"  start_nonce TEXT NOT NULL DEFAULT '',"
		"  deliveries INTEGER NOT NULL DEFAULT 0,"
		"  delivered_ms BIGINT NOT NULL DEFAULT 0,"
		"  started_ms BIGINT NOT NULL DEFAULT 0,"
		"  ended_ms BIGINT NOT NULL DEFAULT 0,"
		"  stdout TEXT NOT NULL DEFAULT '',"
		"  stderr TEXT NOT NULL DEFAULT '',"
		"  stdout_len INTEGER NOT NULL DEFAULT 0,"
		"  stderr_len INTEGER NOT NULL DEFAULT 0,"
		"  stdout_truncated INTEGER NOT NULL DEFAULT 0,"
		"  stderr_truncated INTEGER NOT NULL DEFAULT 0,"
		"  PRIMARY KEY (run_id, host_id));"
		"CREATE INDEX run_hosts_host ON run_hosts (host_id, state);"
		"CREATE INDEX run_hosts_state ON run_hosts (state);"
		"CREATE TABLE run_output ("
		"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
		"  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
		"  host_id TEXT NOT NULL,"
		"  stream INTEGER NOT NULL,"
		"  data TEXT NOT NULL);"
		"CREATE INDEX run_output_run ON run_output (run_id, id);" },
	/* 3: draining hosts (before_terminate): the run that drains each, and
	 * until when it may take */
	{ .sql =
		"ALTER TABLE hosts ADD COLUMN drain_run_id BIGINT NOT NULL DEFAULT 0;"
		"ALTER TABLE hosts ADD COLUMN drain_deadline_ms BIGINT NOT NULL DEFAULT 0;" },
	/* 4: hosts being terminated: when (wall ms) their LB drain began, so
	 * each reconcile pass checks it and a restart resumes it; 0 = not yet */
	{ .sql =
		"ALTER TABLE hosts ADD COLUMN lb_drain_since_ms BIGINT NOT NULL DEFAULT 0;" },
	/* 5: controller bookkeeping out of the declarative group spec: the
	 * autoscaler's last actions and the last manual scale move from the
	 * spec's *_ms keys into group_state (the spec's version is not
	 * bumped: it was never declared); a deleted group takes its row along */
	{ .sql =
		"CREATE TABLE group_state ("
		"  cluster TEXT NOT NULL,"
		"  grp TEXT NOT NULL,"
		"  last_scale_out_ms BIGINT NOT NULL DEFAULT 0,"
		"  last_scale_in_ms BIGINT NOT NULL DEFAULT 0,"
		"  manual_scale_ms BIGINT NOT NULL DEFAULT 0,"
		"  PRIMARY KEY (cluster, grp));"
		"INSERT INTO group_state (cluster, grp, last_scale_out_ms, last_scale_in_ms, manual_scale_ms)"
		"  SELECT scope, name,"
		"    COALESCE(CAST(json_extract(spec, '$.last_scale_out_ms') AS INTEGER), 0),"
		"    COALESCE(CAST(json_extract(spec, '$.last_scale_in_ms') AS INTEGER), 0),"
		"    COALESCE(CAST(json_extract(spec, '$.manual_scale_ms') AS INTEGER), 0)"
		"  FROM resources WHERE kind = 'group' AND json_valid(spec) AND"
		"    (json_type(spec, '$.last_scale_out_ms') IS NOT NULL OR"
		"     json_type(spec, '$.last_scale_in_ms') IS NOT NULL OR"
		"     json_type(spec, '$.manual_scale_ms') IS NOT NULL);"
		"UPDATE resources SET spec = json_remove(spec, '$.last_scale_out_ms',"
		"    '$.last_scale_in_ms', '$.manual_scale_ms')"
		"  WHERE kind = 'group' AND json_valid(spec) AND"
		"    (json_type(spec, '$.last_scale_out_ms') IS NOT NULL OR"
		"     json_type(spec, '$.last_scale_in_ms') IS NOT NULL OR"
		"     json_type(spec, '$.manual_scale_ms') IS NOT NULL);"
		"CREATE TRIGGER group_state_gone AFTER DELETE ON resources WHEN old.kind = 'group'"
		"  BEGIN DELETE FROM group_state WHERE cluster = old.scope AND grp = old.name; END;",
	  /* a PostgreSQL store is younger than the spec's *_ms keys: nothing
	   * to move; the trigger in PostgreSQL's form */
	  .pg =
		"CREATE TABLE group_state ("
		"  cluster TEXT NOT NULL,"
		"  grp TEXT NOT NULL,"
		"  last_scale_out_ms BIGINT NOT NULL DEFAULT 0,"
		"  last_scale_in_ms BIGINT NOT NULL DEFAULT 0,"
		"  manual_scale_ms BIGINT NOT NULL DEFAULT 0,"
		"  PRIMARY KEY (cluster, grp));"
		"CREATE FUNCTION group_state_gone() RETURNS trigger LANGUAGE plpgsql AS $$"
		"  BEGIN DELETE FROM group_state WHERE cluster = old.scope AND grp = old.name;"
		"  RETURN old; END $$;"
		"CREATE TRIGGER group_state_gone AFTER DELETE ON resources FOR EACH ROW"
		"  WHEN (old.kind = 'group') EXECUTE FUNCTION group_state_gone();" },
	/* 6: deleted networks whose provider side (bridge) the controller has
	 * yet to remove: written with the delete, removed once the provider
	 * did it, so a crash in between leaves the job to the next start; the
	 * account's spec as it was, should the account go too */
	{ .sql =
		"CREATE TABLE IF NOT EXISTS networks_gone ("
		"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
		"  name TEXT NOT NULL,"
		"  account TEXT NOT NULL,"
		"  spec TEXT NOT NULL,"
		"  account_spec TEXT,"
		"  deleted_ms BIGINT NOT NULL DEFAULT 0);" },
	/* 7: alerting's transitions (model/alert-event.h): the history, and
	 * the outbox notifiers tail by id */
	{ .sql =
		"CREATE TABLE IF NOT EXISTS alert_events ("
		"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
		"  ts_ms BIGINT NOT NULL,"
		"  rule TEXT NOT NULL,"
		"  cluster TEXT NOT NULL DEFAULT '',"
		"  grp TEXT NOT NULL DEFAULT '',"
		"  key TEXT NOT NULL DEFAULT '',"
		"  state TEXT NOT NULL,"
		"  severity TEXT NOT NULL,"
		"  summary TEXT NOT NULL DEFAULT '',"
		"  labels TEXT NOT NULL DEFAULT '{}',"
		"  value DOUBLE PRECISION,"
		"  started_ms BIGINT NOT NULL,"
		"  repeat INTEGER NOT NULL DEFAULT 0,"
		"  silenced INTEGER NOT NULL DEFAULT 0);"
		"CREATE INDEX IF NOT EXISTS alert_events_rule ON alert_events (rule, cluster, grp, id);" },
	/* 8: the alert evaluator's instances (pending or firing; an inactive
	 * one has no row) and the operators' silences (model/alert-state.h) */
	{ .sql =
		"CREATE TABLE IF NOT EXISTS alert_states ("
		"  rule TEXT NOT NULL,"
		"  cluster TEXT NOT NULL DEFAULT '',"
		"  grp TEXT NOT NULL DEFAULT '',"
		"  key TEXT NOT NULL DEFAULT '',"
		"  state TEXT NOT NULL,"
		"  since_ms BIGINT NOT NULL,"
		"  started_ms BIGINT NOT NULL DEFAULT 0,"
		"  last_event_ms BIGINT NOT NULL DEFAULT 0,"
		"  severity TEXT NOT NULL,"
		"  summary TEXT NOT NULL DEFAULT '',"
		"  value DOUBLE PRECISION,"
		"  silenced INTEGER NOT NULL DEFAULT 0,"
		"  PRIMARY KEY (rule, cluster, grp, key));"
		"CREATE TABLE IF NOT EXISTS alert_silences ("
		"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
		"  rule TEXT NOT NULL,"
		"  cluster TEXT NOT NULL DEFAULT '',"
		"  grp TEXT NOT NULL DEFAULT '',"
		"  reason TEXT NOT NULL DEFAULT '',"
		"  created_by TEXT NOT NULL DEFAULT '',"
		"  created_ms BIGINT NOT NULL,"
		"  until_ms BIGINT NOT NULL);" },
	/* 9: alert delivery (model/alert-delivery.h): per receiver, the last
	 * alert_events id delivered (or dropped), its counters and retry state */
	{ .sql =
		"CREATE TABLE IF NOT EXISTS alert_deliveries ("
		"  receiver TEXT PRIMARY KEY,"
		"  cursor BIGINT NOT NULL DEFAULT 0,"
		"  sent BIGINT NOT NULL DEFAULT 0,"
		"  failed BIGINT NOT NULL DEFAULT 0,"
		"  dropped BIGINT NOT NULL DEFAULT 0,"
		"  failures INTEGER NOT NULL DEFAULT 0,"
		"  last_error TEXT NOT NULL DEFAULT '',"
		"  last_error_ms BIGINT NOT NULL DEFAULT 0,"
		"  next_retry_ms BIGINT NOT NULL DEFAULT 0,"
		"  last_sent_ms BIGINT NOT NULL DEFAULT 0);" },
	/* 10: template versions (model/template-version.h): the version each
	 * host was launched from ('unknown' for hosts made before versions), and
	 * what each version was, so a diff can say what changed */
	{ .sql =
		"ALTER TABLE hosts ADD COLUMN template_version TEXT NOT NULL DEFAULT 'unknown';"
		"CREATE TABLE IF NOT EXISTS template_versions ("
		"  template TEXT NOT NULL,"
		"  version TEXT NOT NULL,"
		"  snapshot TEXT NOT NULL,"
		"  created_ms BIGINT NOT NULL,"
		"  PRIMARY KEY (template, version));"
		/* instance refreshes (model/refresh.h): the refresh, and each host it
		 * took out, stored before it is drained */
		"CREATE TABLE IF NOT EXISTS refreshes ("
		"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
		"  cluster TEXT NOT NULL,"
		"  grp TEXT NOT NULL,"
		"  template TEXT NOT NULL,"
		"  target TEXT NOT NULL,"
		"  params TEXT NOT NULL,"
		"  state TEXT NOT NULL,"
		"  extra INTEGER NOT NULL DEFAULT 0,"
		"  batch TEXT NOT NULL DEFAULT '[]',"
		"  replaced INTEGER NOT NULL DEFAULT 0,"
		"  batches INTEGER NOT NULL DEFAULT 0,"
		"  reason TEXT NOT NULL DEFAULT '',"
		"  old_spec TEXT NOT NULL DEFAULT '{}',"
		"  started_ms BIGINT NOT NULL,"
		"  updated_ms BIGINT NOT NULL);"
		"CREATE INDEX IF NOT EXISTS refreshes_group ON refreshes (cluster, grp, id);"
		"CREATE TABLE IF NOT EXISTS refresh_hosts ("
		"  refresh_id BIGINT NOT NULL,"
		"  host_id TEXT NOT NULL,"
		"  host TEXT NOT NULL,"
		"  out_ms BIGINT NOT NULL,"
		"  PRIMARY KEY (refresh_id, host_id));" },
	/* 11: rolling script runs (model/run.h, ctl/rolling.c): a run's batch
	 * size and its drain, health gate and stop-on-failure options; each
	 * host's batch, its step in the rolling run (phase), when that step
	 * began and since when it has been healthy in its health gate */
	{ .sql =
		"ALTER TABLE runs ADD COLUMN batch INTEGER NOT NULL DEFAULT 0;"
		"ALTER TABLE runs ADD COLUMN drain INTEGER NOT NULL DEFAULT 0;"
		"ALTER TABLE runs ADD COLUMN gate_ms BIGINT NOT NULL DEFAULT 0;"
		"ALTER TABLE runs ADD COLUMN stop_on_failure INTEGER NOT NULL DEFAULT 0;"
		"ALTER TABLE run_hosts ADD COLUMN batch INTEGER NOT NULL DEFAULT 0;"
		"ALTER TABLE run_hosts ADD COLUMN phase TEXT NOT NULL DEFAULT '';"
		"ALTER TABLE run_hosts ADD COLUMN phase_ms BIGINT NOT NULL DEFAULT 0;"
		"ALTER TABLE run_hosts ADD COLUMN healthy_ms BIGINT NOT NULL DEFAULT 0;" },
	/* 12: the controller lease (model/lease.h): who may run the
	 * controllers (holder: a server id, one per process start), its epoch
	 * (+1 at each takeover: the fencing token every controller write
	 * checks) and when it lapses (the store's clock, ms); and the servers
	 * seen on this store */
	{ .sql =
		"CREATE TABLE IF NOT EXISTS leases ("
		"  name TEXT PRIMARY KEY,"
		"  holder TEXT NOT NULL,"
		"  epoch BIGINT NOT NULL,"
		"  expires_ms BIGINT NOT NULL,"
		"  renewed_ms BIGINT NOT NULL);"
		"CREATE TABLE IF NOT EXISTS servers ("
		"  id TEXT PRIMARY KEY,"
		"  address TEXT NOT NULL,"
		"  version TEXT NOT NULL,"
		"  started_ms BIGINT NOT NULL,"
		"  seen_ms BIGINT NOT NULL);" },
	/* 13: refresh_took_out() finds a draining host's refresh by host */
	{ .sql = "CREATE INDEX IF NOT EXISTS refresh_hosts_host ON refresh_hosts (host_id);" },
	/* 14: who made each activity: the server (a process's id, as in
	 * servers) and the lease epoch a controller acted under; "" and 0 for
	 * an API request's (model/activity.c) */
	{ .sql =
		"ALTER TABLE activities ADD COLUMN server TEXT NOT NULL DEFAULT '';"
		"ALTER TABLE activities ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;" },
	/* 15: the host list's order (model/host.c host_page_write: ORDER BY
	 * cluster, grp, seq, id), so a page is read in order from the index
	 * and stops at its limit instead of sorting every matching host */
	{ .sql = "CREATE INDEX IF NOT EXISTS hosts_page ON hosts (cluster, grp, seq, id);" },
};

const int store_migrations_n = (int)(sizeof(store_migrations) / sizeof(store_migrations[0]));
