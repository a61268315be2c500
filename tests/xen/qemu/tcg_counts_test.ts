// The tcgcount plugin's output (e2e/xen/tcg_plugin/tcgcount.c) read back: snapshots, the guest's mark
// windows, per-READ counts and the report's ratios (e2e/xen/tcg_counts.ts). Lines are shaped like the
// plugin writes them; no QEMU needed.
import { deepEqual, equal, ok } from "../../helpers/assert.ts";
import {
  hotTbs,
  parseTcgCounts,
  spinInstructions,
  type TcgCounts,
  tcgTable,
  tcgWindows,
  translatedAgain,
} from "../../../e2e/xen/tcg_counts.ts";

const HEAD =
  "tcgcount v1 target=x86_64 vcpus=2 classes=user_low,user,kernel,xen,other buckets=4 bucket_shift=26 tick_ms=100";

/** A snapshot line: every counter's five classes scaled from `insn`, buckets on marks. */
function snap(tMs: number, why: string, insn: number[], tbtrans = [0, 0, 0, 0, 0]): string {
  const row = (xs: number[]) => xs.join(",");
  const buckets = why === "tick" ? "" : insn.map((v, c) => ` bucket_${c}=${v},0,0,0`).join("");
  return `snap t_ns=${BigInt(tMs) * 1_000_000n} why=${why} insn=${row(insn)} tbexec=${
    row(insn.map((v) => v / 10))
  } ` +
    `tbtrans=${row(tbtrans)} transinsn=${row(tbtrans.map((v) => v * 5))} entry=1,2,3,0,0 modesw=0,4,4,0,0 ` +
    `cpage=0,100,50,0,0 flushes=0${buckets}`;
}

function parsed(lines: string[]): TcgCounts {
  const r = parseTcgCounts(lines.join("\n"));
  if (!r.ok) throw new Error(r.error);
  return r.counts;
}

Deno.test("tcgcount: snapshots parsed, marks paired into READ and idle windows", () => {
  const c = parsed([
    HEAD,
    snap(1000, "tick", [0, 0, 0, 0, 0]),
    snap(1100, "mark:1", [10, 100, 1000, 500, 0]), // warm-up begins
    snap(1200, "mark:2", [30, 300, 3000, 1500, 0]),
    snap(1300, "mark:1", [40, 400, 4000, 2000, 0], [0, 5, 0, 0, 0]),
    snap(1350, "tick", [50, 500, 5000, 2500, 0]),
    snap(2300, "mark:2", [140, 1400, 14000, 7000, 0], [0, 25, 1, 0, 0]),
    snap(2400, "mark:3", [150, 1500, 15000, 7500, 0]),
    snap(4400, "mark:4", [150, 1700, 17000, 7500, 0]),
    snap(4500, "mark:1", [160, 1800, 18000, 8000, 0]), // a window the boot did not finish: dropped
    "snap t_ns=4600000000 why=ti", // cut short when QEMU was killed: the last line may be
  ]);
  deepEqual(c.classes, ["user_low", "user", "kernel", "xen", "other"]);
  equal(c.bucketShift, 26);
  equal(c.snapshots.length, 9);
  equal(c.snapshots[1].mark, 1);
  const ws = tcgWindows(c);
  deepEqual(ws.map((w) => w.kind), ["reads", "reads", "idle"]);
  equal(ws[1].ms, 1000);
  deepEqual([...ws[1].rows.insn], [100, 1000, 10000, 5000, 0]);
  deepEqual([...ws[1].rows.tbtrans], [0, 20, 1, 0, 0]);
  equal(ws[1].buckets?.[2][0], 10000);
  deepEqual([...ws[2].rows.insn], [0, 200, 2000, 0, 0]);
});

Deno.test("tcgcount: a damaged line inside the file is an error, not a silent gap", () => {
  const r = parseTcgCounts(
    [HEAD, snap(1, "tick", [1, 1, 1, 1, 1]), "snap t_ns=2 why=tick insn=1", snap(3, "tick", [1, 1, 1, 1, 1])]
      .join("\n"),
  );
  ok(!r.ok);
  ok(!parseTcgCounts("something else\n").ok);
});

/** One boot: warm-up, a window of `reads` READs costing `insn` per READ by class, 2 s idle. */
function boot(insnPerRead: number[], trans: number[], reads = 1000): TcgCounts {
  const scale = (xs: number[], k: number) => xs.map((v) => v * k);
  const base = [0, 0, 0, 0, 0];
  return parsed([
    HEAD,
    snap(0, "mark:1", base),
    snap(100, "mark:2", base),
    snap(1000, "mark:1", base),
    snap(3000, "mark:2", scale(insnPerRead, reads), scale(trans, reads)),
    snap(4000, "mark:3", scale(insnPerRead, reads)),
    snap(6000, "mark:4", [0, 1, 2, 3, 0].map((v, i) => insnPerRead[i] * reads + v * 1000)),
  ]);
}

Deno.test("tcgcount: the report gives per-READ counts, dx/ref and dx-ref, and the idle background", () => {
  const lines = tcgTable([
    { xsd: "dxenstored", counts: boot([10, 300, 200, 100, 0], [0, 2, 0, 0, 0]), readsPerWindow: [200, 1000] },
    {
      xsd: "cxenstored",
      counts: boot([10, 100, 100, 50, 0], [0, 0.5, 0, 0, 0]),
      readsPerWindow: [200, 1000],
    },
  ]);
  const row = (label: string) => {
    const l = lines.find((x) => x.startsWith(`  ${label}`));
    ok(l !== undefined, `no row ${label} in\n${lines.join("\n")}`);
    return l!.slice(48).trim().split(/\s+/);
  };
  deepEqual(row("instructions, total"), ["610", "260", "2.35", "350"]);
  deepEqual(row("  user space (dom0"), ["300", "100", "3.00", "200"]);
  deepEqual(row("TB translations, total"), ["2.00", "0.50", "4.00", "1.50"]);
  deepEqual(row("host time (ms)"), ["2.00", "2.00", "1.00", "0.00"]);
  // idle: (1+2+3)*1000 instructions in 2 s = 3000/s; a READ window's 2 ms of host time: 6 per READ
  deepEqual(row("  background at the idle rate"), ["6.00", "6.00"]);
  ok(lines.some((l) => l.startsWith("  idle: per second")));
  ok(lines.some((l) => l.includes("kernel: @0M 200")), lines.join("\n"));
  ok(!lines.some((l) => l.includes("warm-up")), "the warm-up window is not reported");
});

Deno.test("tcgcount: hot TBs and code translated again, per window (hot=1)", () => {
  const c = parsed([
    HEAD,
    snap(0, "mark:1", [0, 0, 0, 0, 0]),
    "tb 0 3 ffff82d040230ac0 1 100 4", // a Xen TB (a PAUSE) executed 100 times so far, 4 spin-waits begun
    "tbdis 0 pause ",
    "tb 1 2 ffffffff8107edf0 5 10 0",
    "rt 7f0000001000 3 2", // user code translated again twice so far
    snap(1000, "mark:2", [0, 0, 0, 0, 0]),
    "tb 0 3 ffff82d040230ac0 1 700 10",
    "tb 2 3 ffff82d040230ac0 1 50 1", // the same address translated again: summed
    "rt 7f0000001000 3 5",
    "rt 7f0000002000 4 1",
  ]);
  const [w] = tcgWindows(c);
  const hot = hotTbs(c, w);
  equal(hot.length, 1, "the kernel TB did not run in the window");
  equal(hot[0].cls, "xen");
  equal(hot[0].insns, 650);
  equal(hot[0].spins, 7);
  equal(hot[0].disassembly, "pause ");
  deepEqual(
    translatedAgain(c, w).map((a) => [a.vaddr.toString(16), a.times]),
    [["7f0000001000", 3], ["7f0000002000", 1]],
  );
});

Deno.test("tcgcount: spin-loop instructions: PAUSE TBs, the TB after one, branches back to one", () => {
  const tb = (vaddr: bigint, insns: number, disassembly: string) => ({
    cls: "xen",
    vaddr,
    insns,
    spins: 0,
    disassembly,
  });
  const hot = [
    tb(0x100n, 10, "pause "),
    tb(0x102n, 30, "movw (%rdi), %ax; cmpw %ax, %dx; jne 0x100"), // after the PAUSE and back to it
    tb(0x200n, 5, "pause "),
    tb(0x202n, 7, "movl 0x13e140(%rip), %esi; callq 0x300"), // after a PAUSE: the mask wait's call
    tb(0x210n, 2, "testl %eax, %eax; je 0x200"), // back to a PAUSE
    tb(0x300n, 40, "testl %esi, %esi; retq"), // the callee: not counted
    tb(0x400n, 1000, "movq %rsp, %rax; jne 0x500"), // other work
  ];
  equal(spinInstructions(hot), 54);
});
