// The configuration file: oxenstored.conf syntax and every oxenstored 4.17 key (mapped or accepted
// without effect), dxenstored's own keys, errors with line numbers, and command line over file.
import assert from "../helpers/assert.ts";
import { applyConfig, CONFIG_KEYS, parseConfigText, parseOcamlInt } from "../../src/cli/config.ts";
import { defaultOptions, OPTIONS } from "../../src/cli/options.ts";
import { loadOptions } from "../../src/cli/startup.ts";

const noEnv = (_: string) => undefined;
const DEBIAN_CONF = new URL("./golden/oxenstored.conf", import.meta.url).pathname;

/** oxenstored 4.17's parse_config keys (tools/ocaml/xenstored/xenstored.ml). */
const OX_KEYS = [
  "merge-activate",
  "conflict-burst-limit",
  "conflict-max-history-seconds",
  "conflict-rate-limit-is-aggregate",
  "perms-activate",
  "perms-watch-activate",
  "quota-activate",
  "quota-maxwatch",
  "quota-transaction",
  "quota-maxentity",
  "quota-maxsize",
  "quota-maxrequests",
  "quota-maxoutstanding",
  "quota-maxwatchevents",
  "quota-path-max",
  "gc-max-overhead",
  "test-eagain",
  "persistent",
  "xenstored-log-file",
  "xenstored-log-level",
  "xenstored-log-nb-files",
  "xenstored-log-nb-lines",
  "xenstored-log-nb-chars",
  "access-log-file",
  "access-log-nb-files",
  "access-log-nb-lines",
  "access-log-nb-chars",
  "access-log-read-ops",
  "access-log-transactions-ops",
  "access-log-special-ops",
  "allow-debug",
  "ring-scan-interval",
  "pid-file",
  "xenstored-kva",
  "xenstored-port",
];

Deno.test("config: every oxenstored key is known, mapped or ignored, with a reason", () => {
  for (const k of OX_KEYS) {
    const c = CONFIG_KEYS.find((x) => x.key === k);
    assert.ok(c !== undefined, `${k} missing`);
    assert.equal(c.origin, "oxenstored");
    assert.ok(c.help.length > 10, `${k} says what it does`);
  }
  const keys = CONFIG_KEYS.map((k) => k.key);
  assert.equal(new Set(keys).size, keys.length, "no key twice");
});

Deno.test("config: Debian's /etc/xen/oxenstored.conf applies without errors", () => {
  const o = defaultOptions(noEnv);
  const r = applyConfig(o, Deno.readTextFileSync(DEBIAN_CONF));
  assert.deepEqual(r.errors, []);
  assert.equal(o.pidFile, "/var/run/xen/xenstored.pid");
  assert.deepEqual(o.quotas, {
    nodes: 1000,
    "node-size": 2048,
    watches: 100,
    transactions: 10,
    "transaction-nodes": 1024,
    "path-max": 1024,
    outstanding: 1024,
  });
  for (
    const k of ["merge-activate", "conflict-burst-limit", "perms-activate", "xenstored-kva", "persistent"]
  ) {
    assert.ok(r.ignored.includes(k), `${k} reported as ignored`);
  }
  assert.equal(r.policyKeys, 0);
});

Deno.test("config: the shipped /etc/xen/dxenstored.conf is valid and sets only the persistent store", () => {
  const o = defaultOptions(noEnv);
  const r = applyConfig(
    o,
    Deno.readTextFileSync(new URL("../../packaging/debian/dxenstored.conf", import.meta.url)),
  );
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.applied, ["backend"]);
  assert.deepEqual(o.backend, { kind: "file", dir: "/var/lib/xenstored/dxenstored" });
  assert.deepEqual({ ...o, backend: null }, { ...defaultOptions(noEnv), backend: null });
});

Deno.test("config: syntax as oxenstored (trim, # comments, first =, last one wins)", () => {
  assert.deepEqual(parseConfigText("  a = b = c  \n# x = y\n\nk=\tv\n").entries, [
    { line: 1, key: "a", value: "b = c" },
    { line: 4, key: "k", value: "v" },
  ]);
  const o = defaultOptions(noEnv);
  applyConfig(o, "pid-file = /a\npid-file = /b\n");
  assert.equal(o.pidFile, "/b");
});

Deno.test('config: a line that is neither "key = value" nor a comment is an error naming its line', () => {
  const o = defaultOptions(noEnv);
  const r = applyConfig(o, "# fine\npid-file = /run/x.pid\n\nthis is garbage\nquota-maxwatch = 5\n");
  assert.deepEqual(r.errors, [
    { line: 4, key: "this is garbage", message: 'not a "key = value" line (nor a # comment)' },
  ]);
  assert.equal(o.pidFile, "/run/x.pid", "the rest still applies (a normal start keeps going)");
  assert.equal(o.quotas.watches, 5);
});

Deno.test("config: values are checked; errors name the line and key", () => {
  const o = defaultOptions(noEnv);
  const r = applyConfig(
    o,
    [
      "quota-maxentity = lots",
      "merge-activate = yes",
      "conflict-burst-limit = fast",
      "xenstored-log-level = loud",
      "no-such-key = 1",
      "backend = floppy:/a",
      "metrics-interval = 0",
      "quota-maxwatch = 0x20",
      "quota-transaction = -1",
      "access-log-read-ops = true",
      "xenstored-log-file = syslog:local2",
      "policy = legacy",
      "policy-config.legacy.x = 1",
    ].join("\n"),
  );
  assert.deepEqual(r.errors.map((e) => `${e.line}:${e.key}`), [
    "1:quota-maxentity",
    "2:merge-activate",
    "3:conflict-burst-limit",
    "4:xenstored-log-level",
    "5:no-such-key",
    "6:backend",
    "7:metrics-interval",
  ]);
  assert.equal(r.errors[4].message, "unknown key");
  assert.equal(o.quotas.watches, 32, "OCaml integer syntax");
  assert.equal(o.quotas.transactions, 0x7fffffff, "negative: unlimited, as oxenstored");
  assert.equal(o.accessLog.readOps, true);
  assert.equal(o.logDest, "syslog:local2");
  assert.equal(r.policyKeys, 2, "policy keys belong to the policy loader");
  assert.equal(parseOcamlInt("1_000"), 1000);
  assert.equal(parseOcamlInt("0o17"), 15);
  assert.equal(parseOcamlInt("1e3"), null);
});

Deno.test("config: the command line overrides the file; policy keys point the policy loader at it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dxconf-" });
  try {
    const f = `${dir}/dx.conf`;
    Deno.writeTextFileSync(
      f,
      "quota-maxwatch = 5\npid-file = /a\nxenstored-log-level = debug\nmetrics-file = /m\npolicy = legacy\n",
    );
    const l = loadOptions(["--config-file", f, "-W", "7", "--pid-file", "/b", "--log-level", "warn"], noEnv);
    assert.ok(l.kind === "run");
    assert.equal(l.opts.quotas.watches, 7);
    assert.equal(l.opts.pidFile, "/b");
    assert.equal(l.opts.logLevel, "warn");
    assert.equal(l.opts.metricsFile, "/m", "from the file");
    assert.equal(l.opts.policyConfig, f);
    const missing = loadOptions(["--config-file", `${dir}/none`], noEnv);
    assert.ok(missing.kind === "exit" && missing.code === 2, "a named file must exist");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("docs: operations.md lists every option and every configuration key", () => {
  const doc = Deno.readTextFileSync(new URL("../../docs/operations.md", import.meta.url));
  for (const k of CONFIG_KEYS) {
    assert.ok(new RegExp(`\\| \`${k.key}\` +\\|`).test(doc), `config key ${k.key} in the table`);
  }
  for (const o of OPTIONS) {
    const name = o.long ? `\`--${o.long}\`` : `\`-${o.short}\``;
    assert.ok(doc.includes(name), `option ${name} documented`);
  }
});
