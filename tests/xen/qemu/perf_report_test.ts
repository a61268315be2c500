// The performance boot's report (e2e/xen/perf_report.ts, plan P): per-guest results combined, system
// calls per request with the idle daemon's rate subtracted, ratios dxenstored / reference. Lines are
// shaped like tests/xen/qemu/dom0/init.sh prints them; no Xen needed.
import { equal, ok } from "../../helpers/assert.ts";
import { parseSerialLog } from "../../../e2e/xen/serial_log.ts";
import { perfTable } from "../../../e2e/xen/perf_report.ts";
import type { BootReport } from "../../../e2e/xen/report.ts";

const boot = (xsd: string, lines: string[]): BootReport => ({
  plan: "P",
  xsd,
  counted: xsd === "dxenstored",
  log: parseSerialLog(lines.join("\n")),
  seconds: 1,
  logPath: "",
  runOutput: "",
});

const DX = [
  "[dom0 10.0] E2E-BENCH xsd=/opt/dxenstored/run phase=t1 guest=perf0 n=100 total_us=10000000 mean_us=100000.0 p50_us=3000.0 p99_us=9000.0 max_us=9500.0",
  "[dom0 20.0] E2E-BENCH xsd=/opt/dxenstored/run phase=t10 guest=perf0 n=50 total_us=10000000 mean_us=2000.0 p50_us=2000.0 p99_us=8000.0 max_us=9000.0",
  "[dom0 20.1] E2E-BENCH xsd=/opt/dxenstored/run phase=t10 guest=perf1 n=30 total_us=10000000 mean_us=3000.0 p50_us=3000.0 p99_us=12000.0 max_us=13000.0",
  // t1's 100 READs: 0.5 s of the main thread in user mode, 0.2 s in the kernel, 0.1 s of other threads
  "[dom0 10.1] E2E-CPU xsd=/opt/dxenstored/run phase=t1 hz=100 main_user=50 main_sys=20 other_user=10 other_sys=0",
  // idle for 10 s: 200 epoll_wait, 1000 clock_gettime; then 100 READs in 20 s
  "[dom0 30.0] E2E-STRACE xsd=/opt/dxenstored/run phase=idle-s1 seconds=10.0 threads=4 epoll_wait=200 clock_gettime=1000",
  "[dom0 50.0] E2E-STRACE xsd=/opt/dxenstored/run phase=s1 requests=100 seconds=20.0 threads=4 epoll_wait=500 clock_gettime=2100 ioctl=100 read=101 write=100 futex=7/3",
];
const CX = [
  "[dom0 10.0] E2E-BENCH xsd=cxenstored phase=t1 guest=perf0 n=200 total_us=10000000 mean_us=50000.0 p50_us=1500.0 p99_us=4500.0 max_us=5000.0",
  "[dom0 10.1] E2E-CPU xsd=cxenstored phase=t1 hz=100 main_user=20 main_sys=20 other_user=0 other_sys=0",
  "[dom0 30.0] E2E-STRACE xsd=cxenstored phase=idle-s1 seconds=10.0 threads=1",
  "[dom0 50.0] E2E-STRACE xsd=cxenstored phase=s1 requests=100 seconds=20.0 threads=1 poll=105 ioctl=400 read=100 write=100 clock_gettime=200",
];

const value = (lines: string[], label: string) => {
  const l = lines.find((x) => x.trimStart().startsWith(label.trim()));
  ok(l !== undefined, `no line "${label}" in\n${lines.join("\n")}`);
  return l!.slice(2 + 46).trim().split(/\s+/);
};

Deno.test("perf report: round trips, throughput of guests at once, ratios to the reference", () => {
  const lines = perfTable([boot("dxenstored", DX), boot("cxenstored", CX)]);
  equal(value(lines, "1 guest: READ round trip p50").join(" "), "3000 1500 2.00");
  equal(value(lines, "1 guest: READs/s").join(" "), "10.00 20.00 0.50");
  // 50 + 30 READs in 10 s each, at once: 8/s; no reference value, no ratio
  equal(value(lines, "10 guests at once: total READs/s").join(" "), "8.00 - -");
  equal(value(lines, "10 guests at once: p99 (worst guest").join(" "), "12000 - -");
});

Deno.test("perf report: system calls per request, less the idle daemon's rate over the phase's length", () => {
  const lines = perfTable([boot("dxenstored", DX), boot("cxenstored", CX)]);
  // epoll_wait: 500 - 200 * 20/10 = 100 → 1.00 per READ; clock_gettime: 2100 - 2000 = 100 → 1.00
  equal(value(lines, "  epoll_wait").join(" "), "1.00 0.00 -");
  equal(value(lines, "  clock_gettime").join(" "), "1.00 2.00 0.50");
  equal(value(lines, "  ioctl").join(" "), "1.00 4.00 0.25");
  // dx: 1 + 1 + 1 + 1.01 + 1 + 0.07 = 5.08; cx: 1.05 + 4 + 1 + 1 + 2 = 9.05
  const syscalls = lines.slice(lines.findIndex((l) => l.includes("system calls per READ")));
  equal(value(syscalls, "  total").join(" "), "5.08 9.05 0.56");
  ok(lines.some((l) => l.includes("dxenstored s1 (20 s, 100 READs)") && l.includes("futex 7 (3 failed)")));
});

Deno.test("perf report: the daemon's CPU time per READ, by thread and user/system", () => {
  const lines = perfTable([boot("dxenstored", DX), boot("cxenstored", CX)]);
  const at = lines.findIndex((l) => l.includes("daemon CPU per READ, 1 guest"));
  ok(at >= 0, lines.join("\n"));
  const cpu = lines.slice(at);
  // dx: (50 + 20 + 10) ticks at 100 Hz over 100 READs = 8 ms; cx: 40 ticks over 200 READs = 2 ms
  equal(value(cpu, "  total").join(" "), "8.00 2.00 4.00");
  equal(value(cpu, "  main thread, user").join(" "), "5.00 1.00 5.00");
  equal(value(cpu, "  main thread, system").join(" "), "2.00 1.00 2.00");
  equal(value(cpu, "  other threads, user").join(" "), "1.00 0.00 -");
  ok(!lines.some((l) => l.includes("daemon CPU per READ, 10 guests")), "no t10 line without t10 numbers");
});

Deno.test("perf report: nothing without a P boot", () => {
  equal(perfTable([{ ...boot("dxenstored", DX), plan: "B" }]).length, 0);
});
