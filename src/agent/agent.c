/* agent.c - `herd agent`: the host agent's entry, signals, main loop and
 * heartbeat thread. Often PID 1 of the host's PID namespace, so it reaps
 * every child and never exits on a server error. The main thread joins,
 * runs init scripts, then (later) long-polls for commands; the pulse thread
 * sends heartbeats (later also metrics) so they go on while scripts run. */
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "agent.h"
#include "exec.h"
#include "log.h"
#include "main.h"
#include "push.h"
#include "tlsfp.h"
#include "util.h"
#include "xalloc.h"

static volatile sig_atomic_t agent_stop_sig;   /* SIGTERM/SIGINT number, or 0 */
static int agent_sigfd = -1;                    /* write end of the self-pipe */

bool
agent_stopping(void)
{
	return agent_stop_sig != 0;
}

static void
agent_on_signal(int sig)
{
	int saved = errno;
	char c = (char)sig;

	if (sig == SIGTERM || sig == SIGINT)
		agent_stop_sig = sig;
	if (agent_sigfd >= 0)
		(void)!write(agent_sigfd, &c, 1); /* non-blocking: a full pipe is awake enough */
	errno = saved;
}

static int
agent_signals_init(struct agent *a)
{
	struct sigaction sa;

	if (pipe2(a->sigfd, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	agent_sigfd = a->sigfd[1];
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sa.sa_handler = agent_on_signal;
	sigaction(SIGCHLD, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
	return 0;
}

void
agent_wait(struct agent *a, int64_t ms)
{
	int64_t end = mono_ms() + ms;

	for (;;) {
		struct pollfd pfd = { .fd = a->sigfd[0], .events = POLLIN };
		int64_t left = end - mono_ms();
		char drain[64];

		/* reap first: SIGCHLD may have come while we were busy elsewhere */
		exec_reap();
		if (agent_stopping() || left <= 0)
			return;
		if (poll(&pfd, 1, (int)(left > 60000 ? 60000 : left)) > 0)
			while (read(a->sigfd[0], drain, sizeof(drain)) > 0)
				;
	}
}

static int
agent_config_load(struct agent_config *cfg, const char *path, struct herr *err)
{
	unsigned char fp[TLSFP_LEN];
	json_error_t jerr;
	json_t *j, *v;
	const char *s;

	memset(cfg, 0, sizeof(*cfg));
	cfg->heartbeat_s = 5;
	cfg->init_timeout_ms = 10 * 60 * 1000;
	snprintf(cfg->run_dir, sizeof(cfg->run_dir), "%s", AGENT_RUN_DIR);
	snprintf(cfg->state_dir, sizeof(cfg->state_dir), "%s", AGENT_STATE_DIR);
	j = json_load_file(path, 0, &jerr);
	if (j == NULL)
		return herr_set(err, HERR_INVALID, "cannot read config '%s': %s", path, jerr.text);
	if (!json_is_object(j)) {
		json_decref(j);
		return herr_set(err, HERR_INVALID, "config '%s' is not a JSON object", path);
	}
#define CFG_STR(key, dst, required)                                                          \
	do {                                                                                 \
		v = json_object_get(j, key);                                                 \
		s = json_string_value(v);                                                    \
		if (v && (s == NULL || strlen(s) >= sizeof(dst))) {                          \
			json_decref(j);                                                      \
			return herr_field(err, HERR_INVALID, key, "invalid '%s' in config '%s'", \
					  key, path);                                        \
		}                                                                            \
		if (s)                                                                       \
			snprintf(dst, sizeof(dst), "%s", s);                                 \
		else if (required) {                                                         \
			json_decref(j);                                                      \
			return herr_field(err, HERR_INVALID, key, "config '%s' lacks '%s'",     \
					  path, key);                                        \
		}                                                                            \
	} while (0)
	CFG_STR("server", cfg->server, true);
	CFG_STR("host_id", cfg->host_id, true);
	CFG_STR("host", cfg->host, false);
	CFG_STR("join_token", cfg->join_token, false);
	CFG_STR("ca_sha256", cfg->ca_sha256, false);
	CFG_STR("run_dir", cfg->run_dir, false);
	CFG_STR("state_dir", cfg->state_dir, false);
#undef CFG_STR
	v = json_object_get(j, "heartbeat_s");
	if (v && (!json_is_integer(v) || json_integer_value(v) < 1 ||
		  json_integer_value(v) > 3600)) {
		json_decref(j);
		return herr_field(err, HERR_INVALID, "heartbeat_s",
				  "invalid 'heartbeat_s' in config '%s': want 1-3600", path);
	}
	if (v)
		cfg->heartbeat_s = (int)json_integer_value(v);
	v = json_object_get(j, "init_timeout_s");
	if (v && (!json_is_integer(v) || json_integer_value(v) < 1 ||
		  json_integer_value(v) > 7 * 86400)) {
		json_decref(j);
		return herr_field(err, HERR_INVALID, "init_timeout_s",
				  "invalid 'init_timeout_s' in config '%s': want 1-604800", path);
	}
	if (v)
		cfg->init_timeout_ms = json_integer_value(v) * 1000;
	json_decref(j);
	if (!name_is_valid(cfg->host_id) && !script_name_is_valid(cfg->host_id))
		return herr_field(err, HERR_INVALID, "host_id",
				  "invalid 'host_id' in config '%s': want letters, digits, '-'", path);
	if (strncmp(cfg->server, "http://", 7) != 0 && strncmp(cfg->server, "https://", 8) != 0)
		return herr_field(err, HERR_INVALID, "server",
				  "invalid 'server' in config '%s': want an http(s) URL", path);
	if (cfg->ca_sha256[0] && tlsfp_parse(cfg->ca_sha256, fp) < 0)
		return herr_field(err, HERR_INVALID, "ca_sha256",
				  "invalid 'ca_sha256' in config '%s': want 64 hex digits", path);
	return 0;
}

static void
agent_heartbeat(struct httpc *c, bool *failing)
{
	struct herr err = HERR_INIT;
	json_t *body = json_object(), *resp = NULL;
	long status = 0;
	int rc;

	rc = httpc_json(c, "POST", "/v1/agent/heartbeat", body, &status, &resp, &err);
	json_decref(body);
	json_decref(resp);
	if (rc == 0 && status >= 200 && status < 300) {
		if (*failing)
			log_info("heartbeats reach the server again");
		*failing = false;
		return;
	}
	/* the next beat is the retry: log once per outage, not per beat */
	if (!*failing) {
		if (rc < 0)
			log_warn("heartbeat failed: %s", err.msg);
		else
			log_warn("heartbeat failed: server answered HTTP %ld", status);
	}
	*failing = true;
}

static void *
agent_pulse_main(void *arg)
{
	struct agent *a = arg;
	struct httpc c;
	bool failing = false;
	int64_t next = mono_ms();

	agent_http_init(a, &c, a->credential);
	c.timeout_ms = 10000;
	c.max_response = 1u << 20;
	pthread_mutex_lock(&a->pulse_lock);
	while (!a->pulse_stop) {
		int64_t now = mono_ms();
		struct timespec ts;

		if (now >= next) {
			pthread_mutex_unlock(&a->pulse_lock);
			agent_heartbeat(&c, &failing);
			/* later: push a metrics batch here when its timer is due */
			pthread_mutex_lock(&a->pulse_lock);
			next = now + (int64_t)a->heartbeat_s * 1000;
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += (time_t)((next - now) / 1000);
		ts.tv_nsec += (long)((next - now) % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&a->pulse_cond, &a->pulse_lock, &ts);
	}
	pthread_mutex_unlock(&a->pulse_lock);
	httpc_release(&c);
	return NULL;
}

static void
agent_pulse_start(struct agent *a)
{
	pthread_condattr_t ca;
	sigset_t all, old;
	int rc;

	pthread_mutex_init(&a->pulse_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->pulse_cond, &ca);
	pthread_condattr_destroy(&ca);
	/* signals go to the main thread only: the thread starts with all blocked */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&a->pulse, NULL, agent_pulse_main, a);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		log_err("cannot start the heartbeat thread: %s", strerror(rc));
		return;
	}
	a->pulse_running = true;
}

/* Stops the pulse thread; gives up after a moment if it is stuck in a
 * request, which is fine on the way out. Returns true if it ended. */
static bool
agent_pulse_stop(struct agent *a)
{
	struct timespec ts;

	if (!a->pulse_running)
		return true;
	pthread_mutex_lock(&a->pulse_lock);
	a->pulse_stop = true;
	pthread_cond_signal(&a->pulse_cond);
	pthread_mutex_unlock(&a->pulse_lock);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 2;
	if (pthread_timedjoin_np(a->pulse, NULL, &ts) != 0)
		return false;
	a->pulse_running = false;
	return true;
}

/* The persistent state goes in state_dir/<host_id>/, so that it cannot be
 * mistaken for another host's even where the state dir is shared. */
static void
agent_state_dir_init(struct agent_config *cfg)
{
	char dir[sizeof(cfg->state_dir)];
	int rc = -ENAMETOOLONG;

	if (snprintf(dir, sizeof(dir), "%s/%s", cfg->state_dir, cfg->host_id) < (int)sizeof(dir))
		rc = mkdir_p(dir, 0700);
	if (rc < 0 || access(dir, W_OK) < 0) {
		log_warn("state dir '%s' is not usable, keeping state in '%s'", cfg->state_dir,
			 cfg->run_dir);
		/* run_dir (< 256) + host_id (< 64) fits */
		snprintf(dir, sizeof(dir), "%s/%s", cfg->run_dir, cfg->host_id);
		mkdir_p(dir, 0700);
	}
	memcpy(cfg->state_dir, dir, sizeof(dir));
}

static void
agent_usage(FILE *f)
{
	fprintf(f,
		"usage: herd agent [--config FILE]\n"
		"\n"
		"Runs on each host: joins the herd server with the host's join token, runs\n"
		"the template's init scripts, reports their results and sends heartbeats.\n"
		"\n"
		"  --config FILE   agent config (JSON; default %s)\n"
		"  -v, --verbose   debug logging\n"
		"  -h, --help      this help\n",
		AGENT_CONFIG);
}

/* The main thread's loop once init is done: it waits for signals (and
 * reaps children) while script runs come in on agent-cmd.c's threads and
 * heartbeats go out on the pulse thread. */
static void
agent_loop(struct agent *a)
{
	if (a->credential[0])
		agent_cmd_start(a);
	while (!agent_stopping())
		agent_wait(a, 60000);
	agent_cmd_stop(a);
}

/* Makes sure fds 0-2 exist (PID 1 may start without them), so nothing we
 * open later lands on them by accident. */
static void
agent_std_fds(void)
{
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
			int n = open("/dev/null", O_RDWR);

			if (n >= 0 && n != fd)
				close(n);
		}
	}
}

int
agent_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = AGENT_CONFIG;
	struct herr err = HERR_INIT;
	struct agent *a;
	int opt, rc;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:vh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 'v':
			log_set_level(LOG_DEBUG);
			break;
		case 'h':
			agent_usage(stdout);
			return 0;
		default:
			agent_usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "herd agent: unexpected argument '%s'\n", argv[optind]);
		agent_usage(stderr);
		return 2;
	}
	agent_std_fds();
	log_set_prefix("agent");
	setvbuf(stderr, NULL, _IOLBF, 0);
	a = xcalloc(1, sizeof(*a));
	a->sigfd[0] = a->sigfd[1] = -1;
	rc = agent_signals_init(a);
	if (rc < 0) {
		log_err("cannot set up signals: %s", strerror(-rc));
		free(a);
		return 1;
	}
	/* as PID 1 (or under systemd, harmlessly) every child is ours to reap */
	exec_set_reap_all(true);
	if (agent_config_load(&a->cfg, config, &err) < 0) {
		log_err("%s", err.msg);
		free(a);
		return 1;
	}
	a->heartbeat_s = a->cfg.heartbeat_s;
	/* hold no directory busy (the config path may be relative: read it first) */
	if (chdir("/") < 0)
		log_warn("cannot chdir to '/': %s", strerror(errno));
	log_info("herd agent %s starting: host '%s' (%s), server %s, pid %d", HERD_VERSION,
		 a->cfg.host[0] ? a->cfg.host : "?", a->cfg.host_id, a->cfg.server, (int)getpid());
	rc = mkdir_p(a->cfg.run_dir, 0700);
	if (rc < 0)
		log_err("cannot create '%s': %s", a->cfg.run_dir, strerror(-rc));
	agent_state_dir_init(&a->cfg);
	httpc_init(&a->http, a->cfg.server, NULL);
	a->http.max_response = AGENT_MAX_RESPONSE;

	if (agent_pin(a) == 0 && agent_join(a) == 0) {
		agent_pulse_start(a);
		agent_push_start(a);    /* metrics and monitors: push.c */
		agent_init_run(a);
	}
	agent_loop(a);

	log_info("stopping on %s", agent_stop_sig == SIGINT ? "SIGINT" : "SIGTERM");
	agent_push_stop();
	if (!agent_pulse_stop(a)) {
		/* a heartbeat is stuck in a request: leave without waiting for it */
		fflush(NULL);
		_exit(0);
	}
	httpc_release(&a->http);
	free(a->ca_pem);
	json_decref(a->init);
	close(a->sigfd[0]);
	close(a->sigfd[1]);
	agent_sigfd = -1;
	free(a);
	return 0;
}
