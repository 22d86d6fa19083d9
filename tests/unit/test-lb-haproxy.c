/* test-lb-haproxy.c - the haproxy driver's pure parts fed canned bytes:
 * `show stat` CSV as HAProxy 2.6 prints it (quoted fields, check in
 * progress, other proxies), the configuration it writes, and the LB spec
 * built from a stored resource (defaults, and input that must never reach a
 * configuration line). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_stat),
		cmocka_unit_test(test_spec_and_config),
		cmocka_unit_test(test_spec_rejects_injection),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
