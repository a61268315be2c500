// The CONTROL command sequence shared by the golden capture (capture.ts, against cxenstored) and the
// comparison test (control_test.ts, against dxenstored). Order matters: state carries over.

/** Debian's xenstore-control binary (the /usr/bin one is a wrapper that needs a running hypervisor). */
export const XENSTORE_CONTROL = "/usr/lib/xen-4.17/bin/xenstore-control";

export interface Step {
  readonly name: string;
  /** xenstore-control arguments; "{dir}" is a fresh per-run directory. */
  readonly args: readonly string[];
  /** Run this tool instead (setup step, not compared). */
  readonly tool?: string;
  /** false: do not send the raw CONTROL twice (commands with side effects on files). */
  readonly raw?: boolean;
}

export const CONTROL_STEPS: readonly Step[] = [
  { name: "help", args: ["help"] },
  { name: "check", args: ["check"] },
  { name: "quota", args: ["quota"] },
  { name: "quota-dom0", args: ["quota", "0"] },
  { name: "quota-soft", args: ["quota-soft"] },
  { name: "log-on", args: ["log", "on"] },
  { name: "log-off", args: ["log", "off"] },
  { name: "print", args: ["print", "hello"] },
  { name: "memreport-no-trace", args: ["memreport"] },
  { name: "bogus", args: ["bogus"] },
  { name: "quota-set-nodes", args: ["quota", "set", "nodes", "2000"] },
  { name: "quota-after-set", args: ["quota"] },
  { name: "quota-no-domain", args: ["quota", "5"] },
  { name: "quota-negative-domain", args: ["quota", "-1"] },
  { name: "quota-atoi-domain", args: ["quota", "x"] },
  { name: "quota-soft-set", args: ["quota-soft", "set", "memory", "100"] },
  { name: "quota-soft-after-set", args: ["quota-soft"] },
  { name: "quota-set-unknown", args: ["quota", "set", "bogus", "1"] },
  { name: "quota-set-missing-value", args: ["quota", "set", "nodes"] },
  { name: "quota-set-zero", args: ["quota", "set", "nodes", "0"] },
  { name: "quota-set-text", args: ["quota", "set", "nodes", "abc"] },
  { name: "quota-soft-set-unknown", args: ["quota-soft", "set", "nodes", "5"] },
  { name: "quota-soft-bad", args: ["quota-soft", "x"] },
  { name: "quota-two-args", args: ["quota", "0", "1"] },
  { name: "log-no-arg", args: ["log"] },
  { name: "log-bad", args: ["log", "maybe"] },
  { name: "print-no-arg", args: ["print"] },
  { name: "print-two-args", args: ["print", "a", "b"] },
  { name: "check-arg", args: ["check", "x"] },
  { name: "help-arg", args: ["help", "x"] },
  { name: "logfile-no-arg", args: ["logfile"] },
  { name: "logfile", args: ["logfile", "{dir}/trace.log"], raw: false },
  { name: "memreport-trace", args: ["memreport"], raw: false },
  { name: "memreport-file", args: ["memreport", "{dir}/mem.txt"], raw: false },
  { name: "log-off-after-logfile", args: ["log", "off"] },
  { name: "setup-write", args: ["/a/b/c", "1234"], tool: "xenstore-write" },
  { name: "quota-dom0-after-write", args: ["quota", "0"] },
  { name: "setup-perms", args: ["/a/b/c", "n0", "r5", "w7"], tool: "xenstore-chmod" },
  { name: "quota-dom0-after-chmod", args: ["quota", "0"] },
];
