// The command line: every cxenstored 4.17 and oxenstored 4.17 option is accepted (getopt_long rules),
// obsolete ones only warn, dxenstored's own keep working, and the socket follows libxenstore's rules.
import assert from "../helpers/assert.ts";
import { type DaemonOptions, OPTIONS, parseArgs, tokenize, usage } from "../../src/cli/options.ts";

const noEnv = (_: string) => undefined;

function parsed(argv: string[], env: (k: string) => string | undefined = noEnv): DaemonOptions {
  const r = parseArgs(argv, env);
  if (typeof r === "string") throw new Error(`parse of ${JSON.stringify(argv)} failed: ${r}`);
  return r;
}

function failure(argv: string[]): string {
  const r = parseArgs(argv, noEnv);
  assert.ok(typeof r === "string", `${JSON.stringify(argv)} was accepted`);
  return r;
}

// cxenstored 4.17's `xenstored --help` and getopt string "DE:F:HI::KNPS:t:A:M:Q:q:T:RVW:w:U", and
// oxenstored 4.17's parse_arg.ml speclist.
const CX_SHORT = "DEFHIKNPStAMQqTRVWwU";
const CX_LONG = [
  "no-domain-init",
  "pid-file",
  "help",
  "no-fork",
  "output-pid",
  "trace-file",
  "entry-nb",
  "entry-size",
  "watch-nb",
  "transaction",
  "perm-nb",
  "path-max",
  "quota",
  "quota-soft",
  "timeout",
  "no-recovery",
  "internal-db",
  "keep-orphans",
  "verbose",
  "event",
  "master-domid",
  "priv-domid",
  "live-update",
];
const OX_LONG = [
  "no-domain-init",
  "config-file",
  "no-fork",
  "reraise-top-level",
  "no-access-log",
  "pid-file",
  "restart",
  "live",
  "config-test",
  "disable-socket",
  "help",
];

Deno.test("options: the table has every cxenstored and oxenstored option", () => {
  for (const ch of CX_SHORT) assert.ok(OPTIONS.some((o) => o.short === ch), `-${ch} missing`);
  for (const l of [...CX_LONG, ...OX_LONG]) assert.ok(OPTIONS.some((o) => o.long === l), `--${l} missing`);
  assert.ok(OPTIONS.some((o) => o.short === "T" && o.origin.includes("oxenstored")), "ox's -T");
});

Deno.test("options: defaults fork, socket from XENSTORED_PATH / RUNDIR / /var/run/xenstored", () => {
  const d = parsed([]);
  assert.equal(d.fork, true);
  assert.equal(d.socket, "/var/run/xenstored/socket");
  assert.equal(d.rootdir, "/var/lib/xenstored");
  assert.equal(parsed([], (k) => k === "XENSTORED_RUNDIR" ? "/run/x" : undefined).socket, "/run/x/socket");
  const env: Record<string, string> = {
    XENSTORED_RUNDIR: "/run/x",
    XENSTORED_PATH: "/p/s",
    XENSTORED_ROOTDIR: "/r",
  };
  const e = parsed([], (k) => env[k]);
  assert.equal(e.socket, "/p/s");
  assert.equal(e.rundir, "/run/x");
  assert.equal(e.rootdir, "/r");
});

Deno.test("options: --socket is the foreground development mode; -N / --no-fork stay in the foreground", () => {
  const s = parsed(["--socket", "/tmp/s"]);
  assert.equal(s.socket, "/tmp/s");
  assert.equal(s.fork, false);
  assert.equal(parsed(["-N"]).fork, false);
  assert.equal(parsed(["--no-fork"]).fork, false);
  assert.equal(parsed(["--no-f"]).fork, false, "getopt_long: unique prefix");
});

Deno.test("options: Debian's init script command line", () => {
  // /etc/init.d/xen: $XENSTORED_ARGS --pid-file /run/xenstore.pid
  const o = parsed(["--pid-file", "/run/xenstore.pid"]);
  assert.equal(o.pidFile, "/run/xenstore.pid");
  assert.equal(o.fork, true);
  // launch-xenstore: --pid-file /var/run/xen/xenstored.pid $XENSTORED_ARGS (with a trace file)
  const t = parsed(["--pid-file=/var/run/xen/xenstored.pid", "-T", "/var/log/xen/xenstored-trace.log"]);
  assert.equal(t.accessLog.file, "/var/log/xen/xenstored-trace.log");
});

Deno.test("options: short clusters and attached values (getopt)", () => {
  const o = parsed(["-NPF/run/p", "-E2000", "-W", "50", "-t5", "-A7", "-M", "1024", "-S4096", "-V"]);
  assert.equal(o.fork, false);
  assert.equal(o.outputPid, true);
  assert.equal(o.pidFile, "/run/p");
  assert.deepEqual(o.quotas, {
    nodes: 2000,
    watches: 50,
    transactions: 5,
    permissions: 7,
    "path-max": 1024,
    "node-size": 4096,
  });
  assert.equal(o.logLevel, "debug");
});

Deno.test("options: -Q / -q quotas by name (4.17 and master spellings), -w timeout", () => {
  const o = parsed([
    "-Q",
    "transaction-nodes=100",
    "--quota=memory=5000",
    "-Qoutstanding=3",
    "-Q",
    "node-permissions=9",
    "-q",
    "memory=4000",
    "-w",
    "watch-event=20",
  ]);
  assert.deepEqual(o.quotas, { "transaction-nodes": 100, memory: 5000, outstanding: 3, permissions: 9 });
  assert.deepEqual(o.softQuotas, { memory: 4000 });
  assert.equal(o.watchEventTimeoutS, 20);
  assert.ok(o.warnings.some((w) => w.includes("-w")), "-w warns that it has no effect");
  assert.ok(failure(["-Q", "bogus=1"]).includes("unknown quota"));
  assert.ok(failure(["-Q", "memory"]).includes("<what>=<nb>"));
  assert.ok(failure(["-q", "nodes=1"]).includes("unknown quota"));
  assert.ok(failure(["-E", "-1"]).includes("invalid parameter value"));
  assert.ok(failure(["-E", "2147483648"]).includes("invalid parameter value"));
  assert.ok(failure(["-w", "other=1"]).includes("unknown timeout"));
});

Deno.test("options: obsolete and not-applicable options are accepted with a warning", () => {
  for (
    const argv of [
      ["-R"],
      ["-I"],
      ["-Ioff"],
      ["--internal-db=on"],
      ["--internal-db", "off"],
      ["--reraise-top-level"],
      ["--restart"],
      ["--disable-socket"],
      ["--event", "3"],
      ["--master-domid", "0"],
      ["--priv-domid", "0"],
    ]
  ) {
    const o = parsed(argv);
    assert.equal(o.warnings.length, 1, `${argv.join(" ")}: one warning, got ${JSON.stringify(o.warnings)}`);
  }
  const k = parsed(["-K", "-D", "--no-access-log"]);
  assert.equal(k.keepOrphans, true);
  assert.equal(k.domainInit, false);
  assert.equal(k.accessLog.disabled, true);
  assert.equal(k.warnings.length, 1, "-K warns that it is a security risk; -D is plain");
  assert.ok(k.warnings[0].includes("security risk"));
  // -U: started by a live update (docs/live-update.md): adopt the state (main never forks then).
  const u = parsed(["-U"]);
  assert.equal(u.liveUpdate, true);
  assert.equal(parsed([]).liveUpdate, false);
  assert.ok(failure(["--live"]).includes("live update"));
});

Deno.test("options: oxenstored's --config-file / --config-test; help", () => {
  const o = parsed(["--config-file", "/etc/xen/oxenstored.conf", "--config-test"]);
  assert.equal(o.configFile, "/etc/xen/oxenstored.conf");
  assert.equal(o.configTest, true);
  for (const h of ["-H", "--help", "-h"]) assert.equal(parseArgs([h], noEnv), "help");
  const u = usage();
  for (const l of ["--pid-file", "--no-fork", "--config-test", "--metrics-file", "--socket"]) {
    assert.ok(u.includes(l), `usage lists ${l}`);
  }
});

Deno.test("options: errors (unknown, missing value, stray argument, ambiguous prefix)", () => {
  assert.ok(failure(["--bogus"]).includes("unknown option"));
  assert.ok(failure(["-Z"]).includes("unknown option"));
  assert.ok(failure(["--pid-file"]).includes("needs a value"));
  assert.ok(failure(["-F"]).includes("needs a value"));
  assert.ok(failure(["stray"]).includes("no arguments desired"));
  assert.ok(failure(["--no"]).includes("ambiguous"));
  assert.ok(failure(["--no-fork=yes"]).includes("takes no value"));
  assert.ok(failure(["--log-level", "loud"]).includes("unknown log level"));
  assert.ok(failure(["--metrics-interval", "0"]).includes("seconds"));
});

Deno.test("options: dxenstored's own options keep their meaning", () => {
  const o = parsed([
    "--socket=/s",
    "--log-level",
    "warn",
    "--backend",
    "file:/var/lib/dx",
    "--sync",
    "none",
    "--recover",
    "--max-out-bytes",
    "65536",
    "--metrics-file",
    "/run/m.prom",
    "--metrics-interval",
    "0.5",
    "--access-log-redact",
    "*/secret,*/other",
    "--log-file",
    "syslog:local3",
  ]);
  assert.equal(o.logLevel, "warn");
  assert.deepEqual(o.backend, { kind: "file", dir: "/var/lib/dx" });
  assert.equal(o.sync, "none");
  assert.equal(o.recover, true);
  assert.equal(o.maxOutBytes, 65536);
  assert.equal(o.metricsFile, "/run/m.prom");
  assert.equal(o.metricsInterval, 0.5);
  assert.deepEqual(o.accessLog.redact, ["*/secret", "*/other"]);
  assert.equal(o.logDest, "syslog:local3");
  assert.deepEqual(parsed(["--access-log-redact="]).accessLog.redact, []);
});

Deno.test("options: tokenize keeps the order (the last occurrence wins)", () => {
  const occ = tokenize(["-F", "/a", "--pid-file=/b"]);
  assert.deepEqual(occ.map((o) => o.value), ["/a", "/b"]);
  assert.equal(parsed(["-F", "/a", "--pid-file=/b"]).pidFile, "/b");
});
