// The real-Xen E2E's verdicts come from parsing the serial log (e2e/xen/serial_log.ts): a parser that
// missed a FAIL line would turn a failing boot into a PASS. These tests use lines shaped like a real
// log (Xen, dom0 kernel, dom0 init, guest console, daemon log interleaved) and need no Xen.
import { deepEqual, equal, ok } from "../../helpers/assert.ts";
import { parseSerialLog, relevantLines } from "../../../e2e/xen/serial_log.ts";
import { benchTable, type BootReport } from "../../../e2e/xen/report.ts";

const LOG = [
  "(XEN) [00000000145c6ef8] Xen version 4.17.7 (Debian 4.17.7+13-g2445b30a44-0+deb12u1)",
  "[    3.484382] Segment Routing with IPv6",
  "[dom0 9.10] DOM0-INIT-OK kernel 6.1.0-56-amd64 xsd=/opt/dxenstored/run plan=A",
  "[xsd] <6>serving /run/xenstored/socket (policy legacy, pid 116)",
  "[dom0 20.01] E2E-SCENARIO s1 BEGIN PV + PVH guests over the real ring\r",
  "[dom0 27.61] E2E-MS s1 7.6 xl create PV done (domid 1)",
  "[guest e2e-pv] GUEST-CHECK s1 ok relative write+read :: v1-e2e-pv",
  "[guest e2e-pvh] GUEST-CHECK s1 FAIL list (relative) :: want [a b] got []",
  "[dom0 35.02] E2E-CHECK s1 ok dom0 reads e2e-pv's write :: v1-e2e-pv",
  "[dom0 35.10] E2E-CHECK s1 note something :: informational",
  "[dom0 35.20] E2E-BENCH xsd=/opt/dxenstored/run guest=pv create_to_first_access_s=0.35",
  "[dom0 36.00] E2E-SCENARIO s1 FAIL",
  "[dom0 36.10] E2E-SCENARIO s2 BEGIN two guests",
  "[dom0 37.20] E2E-CHECK s2 FAIL dom0 sees the grant :: want [n1 r2] got [n1]",
  "[xsd] <3>something went wrong",
  "[dom0 40.00] E2E-BENCH xsd=cxenstored n=1000 total_us=250000 mean_us=250.0 p50_us=240.0 p99_us=400.0",
  "[dom0 41.00] E2E-RESULT: FAIL (failed: s1 s2)",
].join("\n");

Deno.test("serial log: scenarios, checks from dom0 and guests, milestones, verdicts", () => {
  const log = parseSerialLog(LOG);
  deepEqual([...log.scenarios.keys()], ["s1", "s2"]);
  const s1 = log.scenarios.get("s1")!;
  equal(s1.title, "PV + PVH guests over the real ring");
  equal(s1.verdict, "FAIL");
  deepEqual(s1.milestones, [{ seconds: 7.6, label: "xl create PV done (domid 1)" }]);
  deepEqual(
    s1.checks.map((c) => `${c.source}:${c.status}:${c.what}`),
    [
      "e2e-pv:ok:relative write+read",
      "e2e-pvh:FAIL:list (relative)",
      "dom0:ok:dom0 reads e2e-pv's write",
      "dom0:note:something",
    ],
  );
  equal(s1.checks[1].detail, "want [a b] got []");
  const s2 = log.scenarios.get("s2")!;
  equal(s2.verdict, undefined, "no verdict line for s2");
  equal(s2.checks[0].status, "FAIL");
  equal(log.result, "FAIL (failed: s1 s2)");
  deepEqual(log.xsdLog, [
    "<6>serving /run/xenstored/socket (policy legacy, pid 116)",
    "<3>something went wrong",
  ]);
  equal(log.bench.length, 2);
  equal(log.bench[1].mean_us, "250.0");
});

Deno.test("serial log: a failed scenario's section is shown without the daemon's lines", () => {
  const log = parseSerialLog(LOG);
  const lines = relevantLines(log, log.scenarios.get("s1"));
  equal(lines[0], "[dom0 20.01] E2E-SCENARIO s1 BEGIN PV + PVH guests over the real ring");
  equal(lines[lines.length - 1], "[dom0 36.00] E2E-SCENARIO s1 FAIL");
  ok(lines.every((l) => !l.startsWith("[xsd]")));
  // a scenario that never began: the tail of the log
  const tail = relevantLines(log, undefined, 3);
  deepEqual(tail, [
    "... (12 earlier lines)",
    "[dom0 37.20] E2E-CHECK s2 FAIL dom0 sees the grant :: want [n1 r2] got [n1]",
    "[dom0 40.00] E2E-BENCH xsd=cxenstored n=1000 total_us=250000 mean_us=250.0 p50_us=240.0 p99_us=400.0",
    "[dom0 41.00] E2E-RESULT: FAIL (failed: s1 s2)",
  ]);
});

Deno.test("serial log: an empty or garbled log has no scenarios and no verdict", () => {
  const log = parseSerialLog("(XEN) Panic on CPU 0:\n[dom0 x] E2E-SCENARIO\n");
  equal(log.scenarios.size, 0);
  equal(log.result, undefined);
});

Deno.test("benchmark table: ratios dxenstored / reference", () => {
  const boot = (xsd: string, text: string): BootReport => ({
    plan: "B",
    xsd,
    counted: true,
    log: parseSerialLog(text),
    seconds: 1,
    logPath: "",
    runOutput: "",
  });
  const lines = benchTable([
    boot(
      "dxenstored",
      "[dom0 1.0] E2E-BENCH xsd=x n=1000 total_us=500000 mean_us=500.0 p50_us=480.0 p99_us=900.0\n" +
        "[dom0 2.0] E2E-BENCH xsd=x window=2 n=1000 total_us=300000 mean_us=300.0 p50_us=290.0 p99_us=600.0",
    ),
    boot(
      "cxenstored",
      "[dom0 1.0] E2E-BENCH xsd=cxenstored n=1000 total_us=250000 mean_us=250.0 p50_us=240.0\n" +
        "[dom0 2.0] E2E-BENCH xsd=x window=2 n=1000 total_us=250000 mean_us=250.0 p50_us=232.0 p99_us=500.0",
    ),
  ]);
  // the second window is its own row, and does not overwrite the first
  const p50 = lines.find((l) => l.includes("round trip, p50"))!;
  ok(/480\s+240\s+2\.00$/.test(p50), p50);
  const next50 = lines.find((l) => l.includes("next 1000 READs: p50"))!;
  ok(/290\s+232\s+1\.25$/.test(next50), next50);
  const mean = lines.find((l) => l.includes("mean (us)"))!;
  ok(/500\s+250\s+2\.00$/.test(mean), mean);
  const p99 = lines.find((l) => l.includes("p99"))!;
  ok(/900\s+-$/.test(p99), `no ratio without both values: ${p99}`);
});
