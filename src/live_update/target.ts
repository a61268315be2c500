// `live-update -f <file>`: what the file is. cxenstored's checks first (it exists, it has an execute
// bit, with its reply texts), then what program it is, by running `<file> --help` — never other
// options: cxenstored ignores unknown options and would start a second daemon. Running it also proves
// that the file executes and its libraries load, before anything is torn down.
//
// Only dxenstored is accepted for now: handing dxenstored's state (and its own command line) to
// cxenstored needs the checks of src/migration/cx417.ts wired in first (docs/live-update.md, to do).

/** How long `<file> --help` may take (a cold Deno start on a loaded host is seconds). */
const PROBE_TIMEOUT_S = 20;

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
  if (out.code === 124 || out.code === 137) {
    return { kind: "unknown", detail: `"${file} --help" did not finish in ${PROBE_TIMEOUT_S} s` };
  }
  const kind = programKindFromUsage(text);
  return { kind, detail: kind === "unknown" ? firstLine(text) : kind };
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

/** What the program is, by its usage text: null if dxenstored (the only target yet), else the reply. */
export async function probeTarget(file: string, probe = probeProgram): Promise<string | null> {
  const p = await probe(file);
  if (p.kind === "dxenstored") return null;
  if (p.kind === "unknown") return `File is not a xenstored dxenstored can hand over to (${p.detail}).`;
  return `live update from dxenstored to ${p.kind} is not supported yet (docs/live-update.md).`;
}
