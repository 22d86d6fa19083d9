/* test-exec.c - exec_run with real processes: capture and caps, exit codes,
 * signals, timeouts that kill the whole group, daemons that outlive their
 * script, literal environment values. The test process is made a subreaper
 * (like the agent as PID 1), so orphans come back to it and are reaped. */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/exec.h"
#include "util.h"
#include "xalloc.h"

static char tdir[256];     /* per-run temp dir */
static char sdir[300];     /* script files go here */
static char env_d[320];    /* "D=<tdir>" */
static char *test_env[] = {
	(char *)"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
	(char *)"HOME=/root",
	env_d,
	NULL,
};

static int
setup(void **state)
{
	(void)state;
	snprintf(tdir, sizeof(tdir), "/tmp/herd-test-exec.XXXXXX");
	if (mkdtemp(tdir) == NULL)
		return -1;
	snprintf(sdir, sizeof(sdir), "%s/scripts", tdir);
	snprintf(env_d, sizeof(env_d), "D=%s", tdir);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		return -1;
	exec_set_reap_all(true);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[400];

	(void)state;
	exec_reap();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* A process that exists and is not a zombie. */
static bool
pid_alive(pid_t pid)
{
	char path[64], *stat, *p;
	bool alive;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	stat = file_read(path, 4096, NULL);
	if (stat == NULL)
		return false;
	p = strrchr(stat, ')');
	alive = p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
	free(stat);
	return alive;
}

/* Waits up to ms for pid to be gone, reaping orphans meanwhile. */
static bool
pid_gone_within(pid_t pid, int64_t ms)
{
	int64_t end = mono_ms() + ms;

	do {
		exec_reap();
		if (!pid_alive(pid))
			return true;
		sleep_ms(20);
	} while (mono_ms() < end);
	return false;
}

static pid_t
read_pid(const char *name)
{
	char path[400], *t;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/%s", tdir, name);
	t = file_read(path, 64, NULL);
	if (t == NULL)
		return 0;
	pid = (pid_t)atoi(t);
	free(t);
	return pid;
}

/* Reads every pid listed in tdir/name (one a line) into pids. */
static int
read_pids(const char *name, pid_t *pids, int max)
{
	char path[400], *t, *line, *save = NULL;
	int n = 0;

	snprintf(path, sizeof(path), "%s/%s", tdir, name);
	t = file_read(path, 4096, NULL);
	if (t == NULL)
		return 0;
	for (line = strtok_r(t, "\n", &save); line && n < max; line = strtok_r(NULL, "\n", &save))
		pids[n++] = (pid_t)atoi(line);
	free(t);
	return n;
}

static void
opts_init(struct exec_opts *o, const char *name, const char *text)
{
	memset(o, 0, sizeof(*o));
	o->name = name;
	o->text = text;
	o->env = test_env;
	o->dir = sdir;
	o->timeout_ms = 30000;
}

static void
test_capture_stdout_stderr(void **state)
{
	struct exec_opts o;
	struct exec_result r;
	struct herr err = HERR_INIT;

	(void)state;
	opts_init(&o, "cap.sh", "#!/bin/sh\nprintf 'hello\\n'\nprintf 'oops\\n' >&2\n");
	assert_int_equal(exec_run(&o, &r, &err), 0);
	assert_string_equal(r.out.p, "hello\n");
	assert_string_equal(r.err.p, "oops\n");
	assert_int_equal(r.exit_code, 0);
	assert_int_equal(r.signal, 0);
	assert_false(r.timed_out);
	assert_false(r.out.truncated);
	assert_false(r.err.truncated);
	assert_true(r.pid > 0);
	assert_true(r.ended_ms >= r.started_ms);
	assert_int_equal(r.sink_pid, 0);
	exec_result_release(&r);
}

static void
test_exit_code(void **state)
{
	struct exec_opts o;
	struct exec_result r;
	struct herr err = HERR_INIT;
	char why[128];

	(void)state;
	opts_init(&o, "three.sh", "#!/bin/sh\necho failing >&2\nexit 3\n");
	assert_int_equal(exec_run(&o, &r, &err), 0);
	assert_int_equal(r.exit_code, 3);
	assert_int_equal(r.signal, 0);
	assert_string_equal(r.err.p, "failing\n");
	assert_string_equal(exec_describe(&r, o.timeout_ms, why, sizeof(why)),
			    "exited with code 3");
	exec_result_release(&r);
}

static void
test_shebang_and_default_shell(void **state)
{
	struct exec_opts o;
	struct exec_result r;
	struct herr err = HERR_INIT;
	const char *cat = "#!/bin/cat\nthis text is printed by cat, not run\n";

	(void)state;
	/* the shebang picks the interpreter: cat prints the file itself */
	opts_init(&o, "cat.sh", cat);
	assert_int_equal(exec_run(&o, &r, &err), 0);
	assert_int_equal(r.exit_code, 0);
	assert_string_equal(r.out.p, cat);
	exec_result_release(&r);

	/* no shebang: /bin/sh */
	opts_init(&o, "plain", "x=sh; echo \"$x-ok\"\n");
	assert_int_equal(exec_run(&o, &r, &err), 0);
	assert_int_equal(r.exit_code, 0);
	assert_string_equal(r.out.p, "sh-ok\n");
	exec_result_release(&r);

	/* a missing interpreter is a result (127), not an exec_run error */
	opts_init(&o, "nointerp.sh", "#!/nonexistent/interpreter\n");
	assert_int_equal(exec_run(&o, &r, &err), 0);
	assert_int_equal(r.exit_code, 127);
	assert_non_null(strstr(r.err.p, "cannot execute script 'nointerp.sh'"));
	exec_result_release(&r);
}

static void
test_script_file_removed(void **state)
{
	struct exec_opts o;
	struct exec_result r;
	struct herr err = HERR_INIT;
	char path[512], *t;
	struct stat st;
	DIR *d;
	struct dirent *de;
	int files = 0;

	(void)state;
	opts_init(&o, "self.sh", "#!/bin/sh\nprintf '%s' \"$0\" > \"$D/self\"\n");
	assert_int_equal(exec_run(&o, &r, &err), 0);
	assert_int_equal(r.exit_code, 0);
	exec_result_release(&r);
	snprintf(path, sizeof(path), "%s/self", tdir);
	t = file_read(path, 4096, NULL);
	assert_non_null(t);
	/* it ran from the given dir, as a 0700 file, which is gone now */
	assert_memory_equal(t, sdir, strlen(sdir));
	assert_int_equal(stat(t, &st), -1);
	free(t);
	assert_int_equal(stat(sdir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	d = opendir(sdir);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			files++;
	closedir(d);
	assert_int_equal(files, 0);
}

static void
test_killed_by_signal(void **state)
{
	struct exec_opts o;
	struct exec_result r;
	struct herr err = HERR_INIT;
	char why[128];

	(void)state;
	opts_init(&o, "kill.sh", "#!/bin/sh\necho before\nkill -KILL $$\necho after\n");
	assert_int_equal(exec_run(&o, &r, &err), 0);
	assert_int_equal(r.signal, SIGKILL);
	assert_int_equal(r.exit_code, -1);
	assert_false(r.timed_out);
	assert_string_equal(r.out.p, "before\n");
	assert_non_null(strstr(exec_describe(&r, 0, why, sizeof(why)), "killed by signal 9"));
	exec_result_release(&r);
}

struct chunks {
	size_t out_bytes, err_bytes;
	int calls;
	char first[64];
	int64_t first_ms;
};

static void
count_chunk(enum exec_stream s, const char *data, size_t n, void *arg)
{
	struct chunks *c = arg;

	if (c->calls++ == 0) {
		snprintf(c->first, sizeof(c->first), "%.*s", (int)n, data);
		c->first_ms = now_ms();
	}
	if (s == EXEC_STDOUT)
		c->out_bytes += n;
	else
		c->err_bytes += n;
}

static void
test_output_caps(void **state)
{
	struct exec_opts o;
	struct exec_result r;
	struct herr err = HERR_INIT;
	struct chunks c = { 0 };

	(void)state;
	opts_init(&o, "big.sh",
		  "#!/bin/sh\nhead -c 200000 /dev/zero | tr '\\0' a\nprintf 0123456789 >&2\n");
	o.on_output = count_chunk;
	o.arg = &c;
	assert_int_equal(exec_run(&o, &r, &err), 0);
	assert_int_equal(r.exit_code, 0);
	assert_int_equal(r.out.len, EXEC_MAX_OUTPUT);
	assert_true(r.out.truncated);
	assert_int_equal(strlen(r.out.p), EXEC_MAX_OUTPUT);
	assert_int_equal(r.out.p[0], 'a');
	assert_int_equal(r.out.p[EXEC_MAX_OUTPUT - 1], 'a');
	assert_string_equal(r.err.p, "0123456789");
	assert_false(r.err.truncated);
	/* the callback saw everything, uncapped */
	assert_int_equal(c.out_bytes, 200000);
	assert_int_equal(c.err_bytes, 10);
	exec_result_release(&r);

	/* a smaller cap */
	opts_init(&o, "small.sh", "#!/bin/sh\necho 12345678901234567890\necho short >&2\n");
	o.max_output = 10;
	assert_int_equal(exec_run(&o, &r, &err), 0);
	assert_string_equal(r.out.p, "1234567890");
	assert_true(r.out.truncated);
	assert_string_equal(r.err.p, "short\n");
	assert_false(r.err.truncated);
	exec_result_release(&r);
}

static void
test_output_streams_live(void **state)
{
	struct exec_opts o;
	struct exec_result r;
	struct herr err = HERR_INIT;
	struct chunks c = { 0 };

	(void)state;
	opts_init(&o, "live.sh", "#!/bin/sh\necho first\nsleep 1\necho second\n");
	o.on_output = count_chunk;
	o.arg = &c;
	assert_int_equal(exec_run(&o, &r, &err), 0);
	assert_string_equal(r.out.p, "first\nsecond\n");
	assert_true(c.calls >= 2);
	assert_string_equal(c.first, "first\n");
	/* the first chunk came while the script was still sleeping */
	assert_true(c.first_ms < r.ended_ms - 500);
	exec_result_release(&r);
}

static void
test_timeout_kills_group(void **state)
{
	struct exec_opts o;
	struct exec_result r;
	struct herr err = HERR_INIT;
	pid_t pids[8];
	char why[128];
	int n;

	(void)state;
	opts_init(&o, "hang.sh",
		  "#!/bin/sh\n"
		  "sleep 1000 &\n"
		  "echo $! >> \"$D/pids\"\n"
		  "sh -c 'echo $$ >> \"$D/pids\"; exec sleep 1000' &\n"
		  "sh -c 'echo $$ >> \"$D/pids\"; exec sleep 1000'\n");
	/* long enough for a loaded machine to start all three (the test
	 * counts them), short enough not to slow the suite much */
	o.timeout_ms = 3000;
	assert_int_equal(exec_run(&o, &r, &err), 0);
	assert_true(r.timed_out);
	assert_int_equal(r.signal, SIGTERM);
	assert_int_equal(r.exit_code, -1);
	assert_string_equal(exec_describe(&r, o.timeout_ms, why, sizeof(why)),
			    "timed out after 3.0s");
	n = read_pids("pids", pids, 8);
	assert_int_equal(n, 3);
	/* no child of the script remains */
	for (int i = 0; i < n; i++) {
		assert_true(pids[i] > 0);
		assert_false(pid_alive(pids[i]));
	}
	assert_int_equal(kill(-r.pid, 0), -1);
	exec_result_release(&r);
}

static void
test_timeout_escalates_to_sigkill(void **state)
{
	struct exec_opts o;
	struct exec_result r;
	struct herr err = HERR_INIT;
	pid_t child;

	(void)state;
	/* everything ignores SIGTERM: only SIGKILL ends it, after the grace */
	opts_init(&o, "stubborn.sh",
		  "#!/bin/sh\ntrap '' TERM\nsleep 1000 &\necho $! > \"$D/stubborn\"\nsleep 1000\n");
	/* the shell must have run its trap before the SIGTERM: on a loaded
	 * machine that can take a while, so the timeout is generous */
	o.timeout_ms = 2000;
	o.kill_grace_ms = 300;
	assert_int_equal(exec_run(&o, &r, &err), 0);
	assert_true(r.timed_out);
	assert_int_equal(r.signal, SIGKILL);
	assert_true(r.ended_ms - r.started_ms >= 2300);
	child = read_pid("stubborn");
	assert_true(child > 0);
	assert_true(pid_gone_within(child, 2000));
	exec_result_release(&r);
}

static bool
stop_now(void *arg)
{
	int *calls = arg;

	return ++*calls >= 3;
}

static void
test_cancel(void **state)
{
	struct exec_opts o;
	struct exec_result r;
	struct herr err = HERR_INIT;
	int calls = 0;

	(void)state;
	opts_init(&o, "long.sh", "#!/bin/sh\nsleep 1000\n");
	o.should_stop = stop_now;
	o.arg = &calls;
	assert_int_equal(exec_run(&o, &r, &err), 0);
	assert_true(r.cancelled);
	assert_false(r.timed_out);
	assert_int_equal(r.signal, SIGTERM);
	exec_result_release(&r);
}

static void
test_daemons_survive(void **state)
{
	struct exec_opts o;
	struct exec_result r;
	struct herr err = HERR_INIT;
	pid_t d[4];

	(void)state;
	opts_init(&o, "daemons.sh",
		  "#!/bin/sh\n"
		  /* holds the pipes, silent */
		  "sleep 1000 &\n"
		  "echo $! > \"$D/d0\"\n"
		  /* holds the pipes and keeps writing after the script is gone:
		   * it starts once the script's last line ran (a fixed delay
		   * from the start let a loaded machine capture a tick) */
		  "(while [ ! -e \"$D/done\" ]; do sleep 0.01; done; sleep 0.5;"
		  " while :; do echo tick; echo tock >&2; sleep 0.05; done) &\n"
		  "echo $! > \"$D/d1\"\n"
		  "nohup sleep 1000 > /dev/null 2>&1 &\n"
		  "echo $! > \"$D/d2\"\n"
		  /* forks and leaves the session, like redis-server --daemonize yes */
		  "setsid -f sh -c 'echo $$ > \"$D/d3\"; exec sleep 1000'\n"
		  "while [ ! -s \"$D/d3\" ]; do sleep 0.01; done\n"
		  "echo started\n"
		  ": > \"$D/done\"\n");
	assert_int_equal(exec_run(&o, &r, &err), 0);
	assert_int_equal(r.exit_code, 0);
	assert_false(r.timed_out);
	assert_string_equal(r.out.p, "started\n");
	/* returned when the script ended, not when its daemons did */
	assert_true(r.ended_ms - r.started_ms < 10000);
	assert_true(r.sink_pid > 0);
	assert_false(kill(-r.pid, 0) == -1); /* the group lives on: nothing was killed */
	d[0] = read_pid("d0");
	d[1] = read_pid("d1");
	d[2] = read_pid("d2");
	d[3] = read_pid("d3");
	/* the writer would die of SIGPIPE here without the sink */
	sleep_ms(1500);
	exec_reap();
	for (int i = 0; i < 4; i++) {
		assert_true(d[i] > 0);
		assert_true(pid_alive(d[i]));
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(kill(d[i], SIGKILL), 0);
		assert_true(pid_gone_within(d[i], 3000));
	}
	/* the writer's last `sleep 0.05` may hold the pipe a moment longer */
	assert_true(pid_gone_within(r.sink_pid, 3000));
	exec_result_release(&r);
}

static void
test_env_literal(void **state)
{
	struct exec_opts o;
	struct exec_result r;
	struct herr err = HERR_INIT;
	char evil[1024], path[512];
	char *env[] = { (char *)"PATH=/usr/bin:/bin", env_d, evil, NULL };
	struct stat st;

	(void)state;
	setenv("HERD_TEST_LEAK", "leaked", 1);
	snprintf(evil, sizeof(evil), "EVIL=$(touch %s/pwned); `touch %s/pwned2`; 'q' \"dq\" \\n",
		 tdir, tdir);
	opts_init(&o, "env.sh",
		  "#!/bin/sh\nprintf '%s' \"$EVIL\"\necho $EVIL >/dev/null\n"
		  "printf '%s' \"${HERD_TEST_LEAK:-none}\" >&2\n");
	o.env = env;
	assert_int_equal(exec_run(&o, &r, &err), 0);
	assert_int_equal(r.exit_code, 0);
	assert_string_equal(r.out.p, evil + strlen("EVIL="));
	/* only the given environment, nothing from ours */
	assert_string_equal(r.err.p, "none");
	snprintf(path, sizeof(path), "%s/pwned", tdir);
	assert_int_equal(stat(path, &st), -1);
	snprintf(path, sizeof(path), "%s/pwned2", tdir);
	assert_int_equal(stat(path, &st), -1);
	unsetenv("HERD_TEST_LEAK");
	exec_result_release(&r);
}

static void
test_own_children_only(void **state)
{
	struct exec_opts o;
	struct exec_result r;
	struct herr err = HERR_INIT;
	pid_t other;
	int status;

	(void)state;
	/* without reap-all, a child of ours that is no script stays ours */
	exec_set_reap_all(false);
	other = fork();
	if (other == 0)
		_exit(7);
	assert_true(other > 0);
	opts_init(&o, "five.sh", "#!/bin/sh\nsleep 0.2\nexit 5\n");
	assert_int_equal(exec_run(&o, &r, &err), 0);
	assert_int_equal(r.exit_code, 5);
	exec_result_release(&r);
	assert_int_equal(waitpid(other, &status, 0), other);
	assert_int_equal(WEXITSTATUS(status), 7);
	exec_set_reap_all(true);
}

static void
test_cannot_start(void **state)
{
	struct exec_opts o;
	struct exec_result r;
	struct herr err = HERR_INIT;

	(void)state;
	opts_init(&o, "x.sh", "#!/bin/sh\n");
	o.dir = "/proc/self/no/such/dir";
	assert_true(exec_run(&o, &r, &err) < 0);
	assert_non_null(strstr(err.msg, "cannot create script directory"));
	assert_int_equal(r.exit_code, -1);
	exec_result_release(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_capture_stdout_stderr),
		cmocka_unit_test(test_exit_code),
		cmocka_unit_test(test_shebang_and_default_shell),
		cmocka_unit_test(test_script_file_removed),
		cmocka_unit_test(test_killed_by_signal),
		cmocka_unit_test(test_output_caps),
		cmocka_unit_test(test_output_streams_live),
		cmocka_unit_test(test_timeout_kills_group),
		cmocka_unit_test(test_timeout_escalates_to_sigkill),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_daemons_survive),
		cmocka_unit_test(test_env_literal),
		cmocka_unit_test(test_own_children_only),
		cmocka_unit_test(test_cannot_start),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
