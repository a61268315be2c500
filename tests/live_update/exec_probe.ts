// Run by exec_test.ts: opens an eventfd and a file (both close-on-exec, as everything Deno and
// dxenstored open), keeps only the eventfd across exec, and execs /bin/sh to report what the new
// program finds: its pid, threads, signal mask and ignored signals, and open descriptors.
import { execve, isCloseOnExec, keepAcrossExec } from "../../src/live_update/exec.ts";

const lib = Deno.dlopen("libc.so.6", { eventfd: { parameters: ["u32", "i32"], result: "i32" } });
const kept = lib.symbols.eventfd(0, 0o2000000);
const file = Deno.openSync(new URL(import.meta.url).pathname); // Deno's own descriptor, close-on-exec
void file;
// Descriptors that will survive anyway: inherited without close-on-exec (from whoever started us).
const inherited: number[] = [];
for (const e of Deno.readDirSync("/proc/self/fd")) {
  const fd = Number(e.name);
  try {
    if (fd !== kept && !isCloseOnExec(fd)) inherited.push(fd);
  } catch { /* the directory's own descriptor, already closed */ }
}
const threads = [...Deno.readDirSync("/proc/self/task")].length;
const sigIgn = /SigIgn:\t(\S+)/.exec(Deno.readTextFileSync("/proc/self/status"))![1];
keepAcrossExec([kept]);
console.log(JSON.stringify({ pid: Deno.pid, threads, kept, inherited, sigIgn }));
execve("/bin/sh", [
  "sh",
  "-c",
  // No pipe in the shell itself: a pipeline's descriptors could still be open in it while ls lists them.
  'echo "pid $$"; grep -E "^(Threads|SigBlk|SigIgn):" /proc/self/status; ls -m -w 0 /proc/$$/fd',
], { PATH: "/usr/bin:/bin" });
