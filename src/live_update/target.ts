// `live-update -f <file>`: what the file is. cxenstored's checks first (it exists, it has an execute
// bit, with its reply texts), then what program it is, by running `<file> --help` — never other
// options: cxenstored ignores unknown options and would start a second daemon. Running it also proves
// that the file executes and its libraries load, before anything is torn down.
//
// Accepted: dxenstored (dx → dx) and Xen 4.17's cxenstored (dx → cx, the way back: the switch then
// checks the stream with src/migration/cx417.ts and cuts the command line down to cxenstored's
// options). oxenstored is refused: its state file is a different (text) format.

/**
 * How long `<file> --help` may take: a cold Deno start on a loaded host is seconds; in dom0 under QEMU's
 * emulation (the e2e:xen runs) it took 27 s. Only `-f`'s reply waits for it; clients are served meanwhile.
 */
const PROBE_TIMEOUT_S = 90;

export type ProgramKind = "dxenstored" | "cxenstored" | "oxenstored" | "unknown";

/** Recognise a xenstored from its usage text. */
export function programKindFromUsage(text: string): ProgramKind {
  if (/Usage: dxenstored\b/.test(text)) return "dxenstored";
  if (/oxenstored|--config-file/.test(text) && /ocaml|oxenstored/i.test(text)) return "oxenstored";
  if (/^\s*xenstored <options>/m.test(text)) return "cxenstored";
  return "unknown";
}

/** Run `<file> --help` (bounded by a timeout) and say what program it is; never blocks the loop. */
export async function probeProgram(file: string): Promise<{ kind: ProgramKind; detail: string }> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("timeout", {
      args: ["-k", "2", String(PROBE_TIMEOUT_S), file, "--help"],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      // The probe must not notify systemd on our behalf.
      env: { NOTIFY_SOCKET: "" },
    }).output();
  } catch (e) {
    return { kind: "unknown", detail: `cannot run it: ${(e as Error).message}` };
  }
  const dec = new TextDecoder();
  const text = dec.decode(out.stdout) + dec.decode(out.stderr);
  // GNU timeout exits 124 when time is up; busybox's (dom0 images) becomes the program, which then dies of
  // the signal (143, or 137 after -k).
  if (out.code === 124 || ((out.code === 137 || out.code === 143) && text.trim() === "")) {
    return { kind: "unknown", detail: `"${file} --help" did not finish in ${PROBE_TIMEOUT_S} s` };
  }
  const kind = programKindFromUsage(text);
  return { kind, detail: kind === "unknown" ? `${firstLine(text)}; exit status ${out.code}` : kind };
}

function firstLine(t: string): string {
  const l = t.split("\n").find((x) => x.trim() !== "") ?? "(no output)";
  return l.slice(0, 120);
}

/** cxenstored's `-f` checks: null if the file may be started, else the reply text. */
export function checkFile(file: string): string | null {
  let st: Deno.FileInfo;
  try {
    st = Deno.statSync(file);
  } catch {
    return "File not accessible.";
  }
  if (((st.mode ?? 0) & 0o111) === 0 || !st.isFile) return "File not executable.";
  return null;
}

/** A program dxenstored can hand its state to. */
export type TargetProgram = "dxenstored" | "cxenstored";

/** `-f`'s verdict: the program to hand over to, or the reply saying why not. */
export type TargetCheck =
  | { readonly ok: true; readonly program: TargetProgram }
  | { readonly ok: false; readonly text: string };

/** What the program is, by its usage text: dxenstored or cxenstored may be started, others not. */
export async function probeTarget(file: string, probe = probeProgram): Promise<TargetCheck> {
  const p = await probe(file);
  if (p.kind === "dxenstored" || p.kind === "cxenstored") return { ok: true, program: p.kind };
  if (p.kind === "unknown") {
    return { ok: false, text: `File is not a xenstored dxenstored can hand over to (${p.detail}).` };
  }
  return {
    ok: false,
    text: "live update from dxenstored to oxenstored is not supported: oxenstored reads only its own " +
      "state format (docs/live-update.md).",
  };
}
