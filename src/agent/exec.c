/* exec.c - runs scripts as process groups with captured, capped output and a
 * group-wide timeout; see exec.h. The wait loop polls the two pipes and a
 * pidfd of the script, so it wakes as soon as the script's own process ends,
 * whatever its background children do with the pipes. Code between fork()
 * and exec/_exit uses only async-signal-safe calls: the agent has threads. */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "exec.h"
#include "util.h"
#include "xalloc.h"

#define EXEC_TICK_MS 200               /* longest poll while a script runs */
#define EXEC_TICK_NO_PIDFD_MS 50       /* same, when the kernel has no pidfd */
#define EXEC_READ_BURST (256u << 10)   /* bytes per stream per wakeup */
#define EXEC_DRAIN_MAX (1u << 20)      /* bytes per stream read after the exit */

/* A script exec_run waits for; its status lands here whoever reaps it. */
struct exec_slot {
	pid_t pid;      /* 0 = free */
	int status;     /* from waitpid */
	bool done;      /* reaped */
	bool lost;      /* reaped by someone else: status unknown */
};

static pthread_mutex_t exec_lock = PTHREAD_MUTEX_INITIALIZER;
static struct exec_slot exec_slots[EXEC_MAX_RUNNING];
static bool exec_reap_all_on;
static pthread_once_t exec_fds_once = PTHREAD_ONCE_INIT;

/* Everything the child needs, prepared before fork. */
struct exec_child_args {
	const char *exe;
	char *argv[3];
	char *const *env;
	const char *cwd;
	int devnull, outw, errw;
	const char *name;
};

/* One run in progress. */
struct exec_run_state {
	const struct exec_opts *o;
	struct exec_result *r;
	int fd[3];      /* [EXEC_STDOUT], [EXEC_STDERR]: read ends, -1 once closed */
};

void
exec_set_reap_all(bool on)
{
	pthread_mutex_lock(&exec_lock);
	exec_reap_all_on = on;
	pthread_mutex_unlock(&exec_lock);
}

static int
exec_reap_locked(void)
{
	int n = 0, status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		n++;
		for (size_t i = 0; i < EXEC_MAX_RUNNING; i++) {
			if (exec_slots[i].pid == pid) {
				exec_slots[i].status = status;
				exec_slots[i].done = true;
				break;
			}
		}
	}
	return n;
}

int
exec_reap(void)
{
	int n;

	pthread_mutex_lock(&exec_lock);
	n = exec_reap_locked();
	pthread_mutex_unlock(&exec_lock);
	return n;
}

/* While a script runs, a PID 1 must still reap its orphans. */
static void
exec_reap_orphans(void)
{
	pthread_mutex_lock(&exec_lock);
	if (exec_reap_all_on)
		exec_reap_locked();
	pthread_mutex_unlock(&exec_lock);
}

/* True once the slot's process has been reaped (by us or by exec_reap). */
static bool
exec_slot_ended(struct exec_slot *s, int *status, bool *lost)
{
	bool done;

	pthread_mutex_lock(&exec_lock);
	if (exec_reap_all_on) {
		exec_reap_locked();
	} else if (!s->done) {
		int st;
		pid_t w = waitpid(s->pid, &st, WNOHANG);

		if (w == s->pid) {
			s->status = st;
			s->done = true;
		} else if (w < 0 && errno == ECHILD) {
			/* SIGCHLD ignored, or reaped behind our back */
			s->done = s->lost = true;
		}
	}
	done = s->done;
	*status = s->status;
	*lost = s->lost;
	pthread_mutex_unlock(&exec_lock);
	return done;
}

static void
exec_slot_free(struct exec_slot *s)
{
	pthread_mutex_lock(&exec_lock);
	memset(s, 0, sizeof(*s));
	pthread_mutex_unlock(&exec_lock);
}

/* Pipes must land on fds >= 3 so the child's dup2 onto 0-2 is never a no-op
 * that would keep O_CLOEXEC: make sure 0, 1 and 2 are open. */
static void
exec_std_fds(void)
{
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
			int n = open("/dev/null", O_RDWR);

			if (n >= 0 && n != fd)
				close(n);
		}
	}
}

static void
exec_close_from(int fd)
{
	if (syscall(SYS_close_range, (unsigned)fd, ~0U, 0) < 0)
		for (int i = fd; i < 4096; i++)
			close(i);
}

static void
exec_default_signals(void)
{
	struct sigaction sa;
	sigset_t none;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &sa, NULL); /* fails harmlessly for KILL, STOP, glibc's own */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

static void
exec_child_fail(const char *name, int e)
{
	const char *why = e == ENOENT ? "no such file (is the interpreter installed?)"
			: e == EACCES ? "permission denied"
			: e == ENOEXEC ? "exec format error"
			: e == ETXTBSY ? "text file busy"
			: "cannot exec";

	/* plain write(2): async-signal-safe */
	(void)!write(2, "herd: cannot execute script '", 29);
	(void)!write(2, name, strlen(name));
	(void)!write(2, "': ", 3);
	(void)!write(2, why, strlen(why));
	(void)!write(2, "\n", 1);
}

static void __attribute__((noreturn))
exec_child(const struct exec_child_args *a)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	int e;

	exec_default_signals();
	setpgid(0, 0);
	if (dup2(a->devnull, 0) < 0 || dup2(a->outw, 1) < 0 || dup2(a->errw, 2) < 0)
		_exit(126);
	exec_close_from(3);
	if (chdir(a->cwd) < 0)
		(void)!chdir("/");
	umask(022);
	/* another thread's fork may briefly hold the file open for writing */
	for (int i = 0;; i++) {
		execve(a->exe, a->argv, a->env);
		if (errno != ETXTBSY || i >= 100)
			break;
		nanosleep(&ts, NULL);
	}
	e = errno;
	exec_child_fail(a->name, e);
	_exit(e == ENOENT ? 127 : 126);
}

/* The sink: detached, it reads and drops what a leftover daemon writes to
 * the script's pipes until the daemon closes them. */
static void __attribute__((noreturn))
exec_sink_loop(int a, int b)
{
	struct pollfd pfd[2];
	char tmp[4096];

	exec_default_signals();
	setsid();
	if (dup2(a, 0) < 0 || dup2(b, 1) < 0)
		_exit(1);
	exec_close_from(2);
	prctl(PR_SET_NAME, "herd-sink", 0, 0, 0);
	pfd[0].fd = 0;
	pfd[1].fd = 1;
	pfd[0].events = pfd[1].events = POLLIN;
	while (pfd[0].fd >= 0 || pfd[1].fd >= 0) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < 2; i++) {
			ssize_t n;

			if (pfd[i].fd < 0 || pfd[i].revents == 0)
				continue;
			n = read(pfd[i].fd, tmp, sizeof(tmp));
			if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
				close(pfd[i].fd);
				pfd[i].fd = -1;
			}
		}
	}
	_exit(0);
}

/* Hands the read ends to a sink that is not our child (double fork), so it
 * needs reaping only where orphans come to us anyway. Returns its pid or 0. */
static pid_t
exec_sink_start(int a, int b)
{
	int p[2];
	pid_t mid, sink = 0;

	if (pipe2(p, O_CLOEXEC) < 0)
		return 0;
	mid = fork();
	if (mid == 0) {
		pid_t g = fork();

		if (g == 0)
			exec_sink_loop(a, b);
		(void)!write(p[1], &g, sizeof(g));
		_exit(0);
	}
	close(p[1]);
	if (mid > 0) {
		ssize_t n;

		do
			n = read(p[0], &sink, sizeof(sink));
		while (n < 0 && errno == EINTR);
		if (n != (ssize_t)sizeof(sink) || sink < 0)
			sink = 0;
		waitpid(mid, NULL, 0); /* ECHILD if exec_reap got it first: fine */
	}
	close(p[0]);
	return sink;
}

/* Reads what is there (up to limit bytes) from one stream into its buffer
 * and the callback. Closes the fd at EOF or on error. */
static void
exec_pump(struct exec_run_state *x, enum exec_stream s, size_t limit)
{
	struct buf *b = s == EXEC_STDOUT ? &x->r->out : &x->r->err;
	char chunk[16384];
	size_t total = 0;

	while (x->fd[s] >= 0 && total < limit) {
		ssize_t n = read(x->fd[s], chunk, sizeof(chunk));

		if (n > 0) {
			total += (size_t)n;
			if (x->o->on_output)
				x->o->on_output(s, chunk, (size_t)n, x->o->arg);
			buf_add_trunc(b, chunk, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		close(x->fd[s]);
		x->fd[s] = -1;
	}
}

static bool
exec_group_alive(pid_t pgid)
{
	return kill(-pgid, 0) == 0 || errno == EPERM;
}

static int
exec_pidfd_open(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	(void)pid;
	errno = ENOSYS;
	return -1;
#endif
}

/* Writes the script into a fresh file in dir; sets *path (owned). */
static int
exec_write_script(const struct exec_opts *o, char **path, struct herr *err)
{
	const char *dir = o->dir ? o->dir : EXEC_DIR;
	const char *name = o->name && script_name_is_valid(o->name) ? o->name : "script";
	size_t len = o->text_len ? o->text_len : strlen(o->text);
	const char *p = o->text;
	int fd, rc;

	*path = NULL;
	rc = mkdir_p(dir, 0700);
	if (rc < 0)
		return herr_set(err, rc, "cannot create script directory '%s': %s", dir, strerror(-rc));
	*path = xasprintf("%s/%s.XXXXXX", dir, name);
	fd = mkostemp(*path, O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		herr_set(err, rc, "cannot create script file in '%s': %s", dir, strerror(errno));
		xfree(path);
		return rc;
	}
	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			rc = -errno;
			herr_set(err, rc, "cannot write script file '%s': %s", *path, strerror(errno));
			break;
		}
		p += w;
		len -= (size_t)w;
	}
	if (rc == 0 && fchmod(fd, 0700) < 0)
		rc = herr_set(err, -errno, "cannot chmod script file '%s': %s", *path, strerror(errno));
	close(fd);
	if (rc < 0) {
		unlink(*path);
		xfree(path);
	}
	return rc;
}

/* Waits for the script's own process, reading its output, enforcing the
 * timeout and the cancel callback. */
static void
exec_wait(struct exec_run_state *x, struct exec_slot *slot, int pidfd)
{
	const struct exec_opts *o = x->o;
	struct exec_result *r = x->r;
	pid_t pid = r->pid;
	int64_t start = mono_ms(), term_at = 0;
	int64_t deadline = o->timeout_ms > 0 ? start + o->timeout_ms : 0;
	int64_t grace = o->kill_grace_ms > 0 ? o->kill_grace_ms : EXEC_KILL_GRACE_MS;
	bool ended = false, stopping = false, killed = false, lost = false;
	int status = 0;

	for (;;) {
		struct pollfd pfd[3];
		nfds_t n = 0;
		int64_t now, wait_ms = pidfd >= 0 ? EXEC_TICK_MS : EXEC_TICK_NO_PIDFD_MS;

		if (!ended)
			ended = exec_slot_ended(slot, &status, &lost);
		else
			exec_reap_orphans();
		/* after a normal exit, stop at once; after a kill, wait for the group */
		if (ended && (!stopping || killed || !exec_group_alive(pid)))
			break;
		now = mono_ms();
		if (!stopping && deadline && now >= deadline)
			r->timed_out = stopping = true;
		else if (!stopping && o->should_stop && o->should_stop(o->arg))
			r->cancelled = stopping = true;
		if (stopping && term_at == 0) {
			kill(-pid, SIGTERM);
			term_at = now;
		}
		if (stopping && !killed && now >= term_at + grace) {
			kill(-pid, SIGKILL);
			killed = true;
			continue;
		}
		if (!stopping && deadline && deadline - now < wait_ms)
			wait_ms = deadline - now;
		if (stopping && !killed && term_at + grace - now < wait_ms)
			wait_ms = term_at + grace - now;
		if (wait_ms < 0)
			wait_ms = 0;
		for (int s = EXEC_STDOUT; s <= EXEC_STDERR; s++) {
			if (x->fd[s] >= 0) {
				pfd[n].fd = x->fd[s];
				pfd[n].events = POLLIN;
				n++;
			}
		}
		if (pidfd >= 0 && !ended) {
			pfd[n].fd = pidfd;
			pfd[n].events = POLLIN;
			n++;
		}
		if (poll(pfd, n, (int)wait_ms) > 0) {
			exec_pump(x, EXEC_STDOUT, EXEC_READ_BURST);
			exec_pump(x, EXEC_STDERR, EXEC_READ_BURST);
		}
	}
	if (lost) {
		r->exit_code = -1;
	} else if (WIFEXITED(status)) {
		r->exit_code = WEXITSTATUS(status);
	} else if (WIFSIGNALED(status)) {
		r->exit_code = -1;
		r->signal = WTERMSIG(status);
	}
}

int
exec_run(const struct exec_opts *o, struct exec_result *r, struct herr *err)
{
	struct exec_run_state x = { .o = o, .r = r, .fd = { -1, -1, -1 } };
	struct exec_child_args a;
	struct exec_slot *slot = NULL;
	size_t max = o->max_output ? o->max_output : EXEC_MAX_OUTPUT;
	int outp[2] = { -1, -1 }, errp[2] = { -1, -1 }, pidfd = -1, rc;
	char *path = NULL;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	buf_init(&r->out, max);
	buf_init(&r->err, max);
	r->exit_code = -1;
	r->started_ms = r->ended_ms = now_ms();
	pthread_once(&exec_fds_once, exec_std_fds);

	rc = exec_write_script(o, &path, err);
	if (rc < 0)
		return rc;
	memset(&a, 0, sizeof(a));
	a.name = o->name ? o->name : "script";
	a.env = o->env;
	a.cwd = o->cwd ? o->cwd : "/";
	if ((o->text_len ? o->text_len : strlen(o->text)) >= 2 && o->text[0] == '#' &&
	    o->text[1] == '!') {
		a.exe = path;
		a.argv[0] = path;
	} else {
		a.exe = "/bin/sh";
		a.argv[0] = (char *)"/bin/sh";
		a.argv[1] = path;
	}
	a.devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (a.devnull < 0) {
		rc = herr_set(err, -errno, "cannot open '/dev/null': %s", strerror(errno));
		goto out_unlink;
	}
	if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		rc = herr_set(err, -errno, "cannot create pipes: %s", strerror(errno));
		goto out_close;
	}
	a.outw = outp[1];
	a.errw = errp[1];

	/* hold the lock across fork so nobody reaps the child before its slot exists */
	pthread_mutex_lock(&exec_lock);
	for (size_t i = 0; i < EXEC_MAX_RUNNING && slot == NULL; i++)
		if (exec_slots[i].pid == 0)
			slot = &exec_slots[i];
	if (slot == NULL) {
		pthread_mutex_unlock(&exec_lock);
		rc = herr_set(err, HERR_TOOBIG, "too many scripts running (at most %d)",
			      EXEC_MAX_RUNNING);
		goto out_close;
	}
	pid = fork();
	if (pid == 0)
		exec_child(&a);
	if (pid < 0) {
		pthread_mutex_unlock(&exec_lock);
		rc = herr_set(err, -errno, "cannot fork for script '%s': %s", a.name, strerror(errno));
		goto out_close;
	}
	memset(slot, 0, sizeof(*slot));
	slot->pid = pid;
	pthread_mutex_unlock(&exec_lock);
	setpgid(pid, pid); /* also done by the child: whichever runs first wins */
	r->pid = pid;
	r->started_ms = now_ms();

	close(outp[1]);
	close(errp[1]);
	outp[1] = errp[1] = -1;
	x.fd[EXEC_STDOUT] = outp[0];
	x.fd[EXEC_STDERR] = errp[0];
	outp[0] = errp[0] = -1;
	for (int s = EXEC_STDOUT; s <= EXEC_STDERR; s++)
		fcntl(x.fd[s], F_SETFL, fcntl(x.fd[s], F_GETFL) | O_NONBLOCK);
	pidfd = exec_pidfd_open(pid);
	if (pidfd >= 0)
		fcntl(pidfd, F_SETFD, FD_CLOEXEC);

	exec_wait(&x, slot, pidfd);
	r->ended_ms = now_ms();
	exec_slot_free(slot);

	/* what the script wrote before it ended is in the pipes: take it, no more */
	exec_pump(&x, EXEC_STDOUT, EXEC_DRAIN_MAX);
	exec_pump(&x, EXEC_STDERR, EXEC_DRAIN_MAX);
	if (x.fd[EXEC_STDOUT] >= 0 || x.fd[EXEC_STDERR] >= 0) {
		int fa = x.fd[EXEC_STDOUT] >= 0 ? x.fd[EXEC_STDOUT] : x.fd[EXEC_STDERR];
		int fb = x.fd[EXEC_STDERR] >= 0 ? x.fd[EXEC_STDERR] : x.fd[EXEC_STDOUT];

		r->sink_pid = exec_sink_start(fa, fb);
	}
	for (int s = EXEC_STDOUT; s <= EXEC_STDERR; s++)
		if (x.fd[s] >= 0)
			close(x.fd[s]);
	if (pidfd >= 0)
		close(pidfd);
	rc = 0;
out_close:
	for (int i = 0; i < 2; i++) {
		if (outp[i] >= 0)
			close(outp[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	close(a.devnull);
out_unlink:
	unlink(path);
	free(path);
	return rc;
}

void
exec_result_release(struct exec_result *r)
{
	buf_release(&r->out);
	buf_release(&r->err);
}

const char *
exec_describe(const struct exec_result *r, int64_t timeout_ms, char *out, size_t outsz)
{
	char d[32];

	if (r->timed_out && timeout_ms > 0)
		snprintf(out, outsz, "timed out after %s", fmt_duration(timeout_ms, d, sizeof(d)));
	else if (r->timed_out)
		snprintf(out, outsz, "timed out");
	else if (r->cancelled)
		snprintf(out, outsz, "was cancelled");
	else if (r->signal)
		snprintf(out, outsz, "was killed by signal %d (%s)", r->signal, strsignal(r->signal));
	else
		snprintf(out, outsz, "exited with code %d", r->exit_code);
	return out;
}
