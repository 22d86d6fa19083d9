/* test-lb-haproxy.c - the haproxy driver's pure parts fed canned bytes:
 * `show stat` CSV as HAProxy 2.6 prints it (quoted fields, check in
 * progress, other proxies), the configuration it writes, and the LB spec
 * built from a stored resource (defaults, and input that must never reach a
 * configuration line); `show servers state` read back from an adopted
 * process; a pid file naming an unrelated process, which the driver
 * must neither adopt nor kill; and a HAProxy binary that cannot be run. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/lb/lb.h"

static const char stat_csv[] =
	"# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,"
	"wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,"
	"sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,"
	"check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,"
	"req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,"
	"lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,"
	"agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,"
	"agent_fall,agent_health,addr,cookie,mode,algo,\n"
	"fe_web,FRONTEND,,,3,9,262121,40,0,0,0,0,0,,,,,OPEN,,,,,,,,,1,2,0,,,,0,0,0,5,,,,0,40,0,0,0,0,,0,5,40,,,0,0,0,0,,,,,,,,,,,,,,,,,,,,,http,,\n"
	"be_web,5161f377,0,0,2,5,,20,0,0,,0,,0,0,0,0,UP,1,1,0,0,0,12,0,,1,3,1,,20,,2,0,,3,L7OK,200,1,0,20,0,0,0,0,,,,20,0,0,,,,,0,\"HTTP status check returned code <3C>200<3E>, ok\",,0,0,0,1,,,,Layer7 check passed,,2,2,3,,,,198.19.77.2:8080,,http,,\n"
	"be_web,5c0a1aff,0,0,0,3,,20,0,0,,0,,0,0,0,0,DRAIN 0/2,1,1,0,0,0,12,0,,1,3,2,,20,,2,0,,3,* L7OK,200,1,0,20,0,0,0,0,,,,20,0,0,,,,,0,,,0,0,0,1,,,,Layer7 check passed,,2,2,1,,,,198.19.77.3:8080,,http,,\n"
	"be_web,573bc6fd,0,0,0,0,,0,0,0,,0,,0,0,0,0,MAINT,1,1,0,0,0,1,0,,1,3,3,,0,,2,0,,0,,,,0,0,0,0,0,0,,,,0,0,0,,,,,-1,,,0,0,0,0,,,,,,,,,,,,198.19.77.4:8080,,http,,\n"
	"be_web,BACKEND,0,0,2,9,26213,40,0,0,0,0,,0,0,0,0,UP,2,2,0,,0,12,0,,1,3,0,,40,,1,0,,5,,,,0,40,0,0,0,0,,,,40,0,0,0,0,0,0,0,,,0,0,0,1,,,,,,,,,,,,,,http,roundrobin,\n"
	"be_api,5161f377,0,0,7,7,,7,0,0,,0,,0,0,0,0,DOWN,1,1,0,1,1,12,12,,1,4,1,,7,,2,0,,3,L4CON,,0,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,198.19.77.2:80,,tcp,,\n";

static void
test_parse_stat(void **state)
{
	struct lb_backend b[8];
	size_t n = haproxy_parse_stat(stat_csv, "be_web", b, 8);

	assert_int_equal(n, 3);
	assert_string_equal(b[0].m.name, "5161f377");
	assert_string_equal(b[0].status, "UP");
	assert_int_equal(b[0].state, LBB_UP);
	assert_int_equal(b[0].scur, 2);
	assert_string_equal(b[0].check_status, "L7OK");
	assert_string_equal(b[0].m.addr, "198.19.77.2");
	assert_int_equal(b[0].m.port, 8080);
	/* a check in progress is starred; a drained one in transition */
	assert_string_equal(b[1].status, "DRAIN 0/2");
	assert_int_equal(b[1].state, LBB_DRAIN);
	assert_string_equal(b[1].check_status, "L7OK");
	assert_int_equal(b[2].state, LBB_MAINT);
	assert_string_equal(b[2].check_status, "");
	n = haproxy_parse_stat(stat_csv, "be_api", b, 8);
	assert_int_equal(n, 1);
	assert_int_equal(b[0].state, LBB_DOWN);
	assert_int_equal(b[0].scur, 7);
	assert_int_equal(haproxy_parse_stat(stat_csv, "be_nope", b, 8), 0);
	assert_int_equal(haproxy_parse_stat(stat_csv, "be_web", b, 1), 1);
	assert_int_equal(haproxy_parse_stat("garbage\n,,,\n", "be_web", b, 8), 0);
}

static void
test_spec_and_config(void **state)
{
	struct herr err = HERR_INIT;
	struct lb_spec sp[2];
	struct lb_member m[] = { { "5161f377", "198.19.77.2", 8080, "" } };
	const struct lb_member *mem[] = { m, NULL };
	size_t nmem[] = { 1, 0 };
	struct buf o;
	json_t *j;

	j = json_pack("{s:s,s:s,s:i,s:s,s:{s:s,s:i,s:s},s:s}", "network", "vpc1", "listen",
		      "127.0.0.1:18080", "backend_port", 8080, "mode", "http", "health_check", "path",
		      "/healthz", "expect", 204, "interval", "500ms", "drain_timeout", "5s");
	assert_int_equal(lb_spec_from_json("web", j, &sp[0], &err), 0);
	json_decref(j);
	assert_string_equal(sp[0].check.type, "http");
	assert_string_equal(sp[0].algorithm, "roundrobin");
	assert_int_equal(sp[0].check.interval_ms, 500);
	assert_int_equal(sp[0].drain_timeout_ms, 5000);
	j = json_pack("{s:s,s:i,s:s}", "listen", "127.0.0.1:2222", "backend_port", 22, "algorithm", "source");
	assert_int_equal(lb_spec_from_json("ssh", j, &sp[1], &err), 0);
	json_decref(j);
	assert_string_equal(sp[1].mode, "tcp");
	assert_string_equal(sp[1].check.type, "tcp");
	assert_int_equal(sp[1].drain_timeout_ms, LB_DEFAULT_DRAIN_MS);

	buf_init(&o, 1 << 20);
	assert_int_equal(haproxy_config(&o, "/d/lb/haproxy.sock", sp, 2, mem, nmem, &err), 0);
	assert_non_null(strstr(o.p, "stats socket /d/lb/haproxy.sock mode 600 level admin\n"));
	assert_non_null(strstr(o.p, "frontend fe_web\n\tmode http\n\tbind 127.0.0.1:18080\n"));
	assert_non_null(strstr(o.p, "\toption httpchk GET /healthz\n\thttp-check expect status 204\n"));
	assert_non_null(strstr(o.p, "\tserver 5161f377 198.19.77.2:8080 check inter 500ms"));
	assert_non_null(strstr(o.p, "backend be_ssh\n\tmode tcp\n\tbalance source\n\thash-type consistent\n"));
	assert_null(strstr(strstr(o.p, "backend be_ssh"), "httpchk"));
	buf_release(&o);
}

static void
test_spec_rejects_injection(void **state)
{
	struct herr err = HERR_INIT;
	struct lb_spec sp;
	json_t *j;

	j = json_pack("{s:s,s:i,s:{s:s}}", "listen", "127.0.0.1:80", "backend_port", 80, "health_check",
		      "path", "/x\n\tserver evil 1.2.3.4:80");
	assert_int_equal(lb_spec_from_json("web", j, &sp, &err), HERR_INVALID);
	assert_string_equal(err.field, "health_check.path");
	json_decref(j);
	j = json_pack("{s:s,s:i}", "listen", "127.0.0.1:80 ssl", "backend_port", 80);
	assert_int_equal(lb_spec_from_json("web", j, &sp, &err), HERR_INVALID);
	assert_string_equal(err.field, "listen");
	json_decref(j);
	j = json_pack("{s:s,s:i,s:s}", "listen", "127.0.0.1:80", "backend_port", 80, "algorithm", "first");
	assert_int_equal(lb_spec_from_json("web", j, &sp, &err), HERR_INVALID);
	json_decref(j);
}

/* As HAProxy 2.6 prints it: a1 ready, a2 drained, a3 added (maintenance). */
static const char servers_state[] =
	"1\n"
	"# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "
	"srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health "
	"srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord "
	"srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n"
	"3 be_web 1 a1 198.19.77.2 2 0 1 1 1 8 2 0 14 0 0 0 - 8080 - 0 0 - - 0\n"
	"3 be_web 2 a2 198.19.77.3 2 8 1 1 0 1 0 2 0 0 0 0 - 8080 - 0 0 - - 0\n"
	"3 be_web 3 a3 198.19.77.4 0 1 1 1 0 1 0 0 2 0 0 0 - 8081 - 0 0 - - 0\n"
	"4 be_api 1 b1 198.19.77.2 2 0 1 1 1 8 2 0 14 0 0 0 - 80 - 0 0 - - 0\n";

static void
test_parse_servers_state(void **state)
{
	struct lb_backend b[8];
	size_t n = haproxy_parse_servers_state(servers_state, "be_web", b, 8, 777);

	assert_int_equal(n, 3);
	assert_string_equal(b[0].m.name, "a1");
	assert_string_equal(b[0].m.addr, "198.19.77.2");
	assert_int_equal(b[0].m.port, 8080);
	assert_int_equal(b[0].intent, LBI_ACTIVE);
	assert_int_equal(b[0].drain_since_ms, 0);
	/* drained: joining or leaving, never given traffic on a guess */
	assert_int_equal(b[1].intent, LBI_DRAINING);
	assert_int_equal(b[1].drain_since_ms, 777);
	assert_int_equal(b[2].intent, LBI_DRAINING);
	assert_int_equal(b[2].state, LBB_MAINT);
	assert_int_equal(b[2].m.port, 8081);
	assert_int_equal(haproxy_parse_servers_state(servers_state, "be_api", b, 8, 0), 1);
	assert_int_equal(haproxy_parse_servers_state(servers_state, "be_web", b, 2, 0), 2);
	assert_int_equal(haproxy_parse_servers_state("Can't find backend.\n", "be_web", b, 8, 0), 0);
	/* no header: columns unknown, nothing guessed */
	assert_int_equal(haproxy_parse_servers_state(strchr(strchr(servers_state, '#'), '\n') + 1,
						     "be_web", b, 8, 0), 0);
}

static void
test_config_same_listeners(void **state)
{
	const char *a = "global\n\tstats socket /s\nbackend be_web\n\tbalance roundrobin\n"
			"\tserver a1 1.2.3.4:80 check\n\tserver a2 1.2.3.5:80 check\n";
	const char *b = "global\n\tstats socket /s\nbackend be_web\n\tbalance roundrobin\n";
	const char *c = "global\n\tstats socket /s\nbackend be_web\n\tbalance leastconn\n";
	const char *d = "global\n\tstats socket /s\nbackend be_web\n\tbalance roundrobin\n"
			"frontend fe_x\n";

	assert_true(haproxy_config_same_listeners(a, b));
	assert_true(haproxy_config_same_listeners(b, a));
	assert_true(haproxy_config_same_listeners(a, a));
	assert_false(haproxy_config_same_listeners(a, c));
	assert_false(haproxy_config_same_listeners(b, d));
	assert_false(haproxy_config_same_listeners(d, b));
}

/* A pid file left naming an unrelated live process (a reused pid; here a
 * shell whose arguments even name the configuration) is neither adopted
 * nor signalled when the driver opens and closes. */
static void
test_stale_pid_file(void **state)
{
	char dir[] = "/tmp/herd-test-lb-XXXXXX", path[256], cfg[256];
	struct herr err = HERR_INIT;
	struct lb_health hl;
	struct lb l;
	pid_t decoy;
	int status;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/lb", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(cfg, sizeof(cfg), "%s/lb/haproxy.cfg", dir);
	if ((decoy = fork()) == 0) {
		/* its own group (killed whole below), off the test's output */
		setpgid(0, 0);
		freopen("/dev/null", "w", stdout);
		freopen("/dev/null", "w", stderr);
		execl("/bin/sh", "sh", "-c", "sleep 30; :", cfg, (char *)NULL);
		_exit(127);
	}
	assert_true(decoy > 0);
	snprintf(path, sizeof(path), "%s/lb/haproxy.pid", dir);
	assert_non_null(f = fopen(path, "w"));
	fprintf(f, "%d\n", (int)decoy);
	fclose(f);
	usleep(100 * 1000);   /* the decoy has exec'd */

	setenv("HERD_HAPROXY", "/bin/true", 1);   /* nothing is started before apply */
	memset(&l, 0, sizeof(l));
	snprintf(l.data_dir, sizeof(l.data_dir), "%s", dir);
	assert_int_equal(lb_open(&l, lb_find("haproxy"), &err), 0);
	assert_int_equal(lb_health(&l, &hl, &err), 0);
	assert_int_not_equal(hl.pid, decoy);   /* not adopted */
	lb_close(&l);
	assert_int_equal(lb_teardown(&l, &err), 0);
	/* still alive: not reaped, no signal */
	assert_int_equal(waitpid(decoy, &status, WNOHANG), 0);
	assert_int_equal(kill(decoy, 0), 0);

	kill(-decoy, SIGKILL);
	waitpid(decoy, &status, 0);
	/* what open made, and nothing else */
	snprintf(path, sizeof(path), "%s/lb/haproxy.log", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/lb", dir);
	assert_int_equal(rmdir(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

/* A TCP port on 127.0.0.1 that nothing listens on just now. */
static int
free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t n = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &n), 0);
	close(fd);
	return ntohs(a.sin_port);
}

/* A HAProxy binary that exists but cannot be executed (here: not a
 * program at all) is named with the system's reason when the driver runs
 * it, not taken for HAProxy rejecting the configuration. */
static void
test_unrunnable_binary(void **state)
{
	char dir[] = "/tmp/herd-test-lb-XXXXXX", bin[256], path[256];
	struct herr err = HERR_INIT;
	struct lb_spec sp;
	struct lb l;
	json_t *j;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(bin, sizeof(bin), "%s/haproxy", dir);
	assert_non_null(f = fopen(bin, "w"));
	fputs("\x7f\x01 not a program\n", f);
	fclose(f);
	assert_int_equal(chmod(bin, 0755), 0);
	setenv("HERD_HAPROXY", bin, 1);
	memset(&l, 0, sizeof(l));
	snprintf(l.data_dir, sizeof(l.data_dir), "%s", dir);
	assert_int_equal(lb_open(&l, lb_find("haproxy"), &err), 0);
	snprintf(path, sizeof(path), "127.0.0.1:%d", free_port());
	j = json_pack("{s:s,s:i}", "listen", path, "backend_port", 22);
	assert_int_equal(lb_spec_from_json("ssh", j, &sp, &err), 0);
	json_decref(j);
	if (lb_ensure(&l, &sp, &err) < 0)
		fail_msg("%s", err.msg);
	assert_true(lb_apply(&l, &err) < 0);
	assert_non_null(strstr(err.msg, "cannot run"));
	assert_non_null(strstr(err.msg, strerror(ENOEXEC)));
	herr_clear(&err);
	lb_close(&l);
	lb_teardown(&l, &err);
	herr_clear(&err);
	unsetenv("HERD_HAPROXY");
	/* what open and apply made */
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	assert_int_equal(system(path), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_stat),
		cmocka_unit_test(test_spec_and_config),
		cmocka_unit_test(test_spec_rejects_injection),
		cmocka_unit_test(test_parse_servers_state),
		cmocka_unit_test(test_config_same_listeners),
		cmocka_unit_test(test_stale_pid_file),
		cmocka_unit_test(test_unrunnable_binary),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
