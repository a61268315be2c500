// The `chinese-wall` policy plugin (Brewer–Nash): conflict-of-interest classes of paths. Config key
// `conflict-sets`: whitespace-separated classes, each `SET:CLASS=PREFIX[,PREFIX...]`, e.g.
//   banks:a=/cw/bank-a,/cw/a-archive banks:b=/cw/bank-b oil:x=/cw/oil-x oil:y=/cw/oil-y
// A path belongs to a class if it equals one of its prefixes or lies below one. Rules, for
// unprivileged callers (the control domain is exempt):
// - an access (read, write, permission change) to a path of class C in set S is denied with EACCES
//   if the domain has accessed another class of S before; otherwise it is allowed and C is recorded
//   in the domain's history (so the first class a domain touches in a set walls off the others);
// - watch-event delivery for such a path is denied under the same condition, but does not record;
// - paths in no class are not restricted by this plugin.
// The history lives in Extism variables ("d<domid>" → "S:C\n..."), which the daemon keeps across
// plugin rebuilds and policy reloads (same plugin name). Put this plugin after `legacy` in the chain:
// a plugin is only asked when every plugin before it allowed, so refused accesses record nothing.
// Decisions depend on the path and on history: never cacheable.
// Live update (docs/plugins.md, state_save/state_load): the history (Extism variables) is carried by
// the host; `state_save` answers the state's format and the classes it names, and the new program's
// `state_load` refuses a history it cannot read or whose classes are no longer configured (a history
// naming a class of a set that is gone would no longer wall anything off).
import { Config, Var } from "@extism/as-pdk";
import { alloc, error_set, input_length, input_load_u8, output_set, store_u8 } from "@extism/as-pdk/lib/env";
import {
  ALLOW,
  answer,
  DENY,
  EACCES,
  FLAG_PRIVILEGED,
  FLAG_WATCH_EVENT,
  Header,
  info,
  KIND_NODE,
  permsEnd,
  PermsHeader,
  readHeader,
  readPerms,
} from "../common/abi";

class WallClass {
  constructor(public set: string, public id: string, public prefixes: string[]) {}
}

let classes: WallClass[] = [];
let exemptPrivileged = true;
const h = new Header();
const p = new PermsHeader();

export function policy_info(): i32 {
  classes = [];
  const exempt = Config.get("exempt-privileged");
  exemptPrivileged = exempt === null || exempt != "no";
  const cfg = Config.get("conflict-sets");
  if (cfg !== null) {
    const words = cfg.replaceAll("\t", " ").replaceAll("\n", " ").split(" ");
    for (let i = 0; i < words.length; i++) {
      const w = words[i];
      if (w.length == 0) continue;
      const colon = w.indexOf(":");
      const eq = w.indexOf("=");
      if (colon <= 0 || eq <= colon + 1 || eq == w.length - 1) {
        return fail("conflict-sets: expected SET:CLASS=PREFIX[,PREFIX...], got " + w);
      }
      const prefixes = w.slice(eq + 1).split(",");
      for (let j = 0; j < prefixes.length; j++) {
        const pre = prefixes[j];
        if (pre.length == 0 || pre.charCodeAt(0) != 0x2f) {
          return fail("conflict-sets: prefixes are absolute paths");
        }
      }
      classes.push(new WallClass(w.slice(0, colon), w.slice(0, eq), prefixes));
    }
  }
  return info(1 << KIND_NODE);
}

/** Fail the call with `msg` (policy_info failing refuses the plugin, with this message). */
function fail(msg: string): i32 {
  const b = Uint8Array.wrap(String.UTF8.encode(msg));
  const off = alloc(b.length);
  for (let i = 0; i < b.length; i++) store_u8(off + i, b[i]);
  error_set(off);
  return 1;
}

/** The path of the question, as a string (Latin-1 bytes; paths are ASCII). */
function readPath(): string {
  readPerms(p, 8);
  const n = p.extra;
  const at = permsEnd(p);
  const codes = new Array<i32>(n);
  for (let i: u32 = 0; i < n; i++) codes[i] = input_load_u8(at + i);
  return String.fromCharCodes(codes);
}

function inClass(path: string, c: WallClass): bool {
  for (let i = 0; i < c.prefixes.length; i++) {
    const pre = c.prefixes[i];
    if (path == pre) return true;
    if (
      path.length > pre.length && path.startsWith(pre) && (pre == "/" || path.charCodeAt(pre.length) == 0x2f)
    ) {
      return true;
    }
  }
  return false;
}

export function policy_decide(): i32 {
  readHeader(h);
  if (h.kind != KIND_NODE || classes.length == 0) return answer(ALLOW, 0, 0);
  if ((h.flags & FLAG_PRIVILEGED) != 0 && exemptPrivileged) return answer(ALLOW, 0, 0);
  const path = readPath();
  const key = "d" + h.domid.toString();
  const stored = Var.getString(key);
  const history = stored === null ? "" : stored;
  const seen = history.split("\n");
  let added = "";
  for (let i = 0; i < classes.length; i++) {
    const c = classes[i];
    if (!inClass(path, c)) continue;
    let mine = false;
    for (let j = 0; j < seen.length; j++) {
      const s = seen[j];
      if (s == c.id) mine = true;
      else if (s.startsWith(c.set + ":") && s.length > 0) return answer(DENY, EACCES, 0);
    }
    if (!mine) added += c.id + "\n";
  }
  if (added.length > 0 && (h.flags & FLAG_WATCH_EVENT) == 0) {
    Var.set(key, Uint8Array.wrap(String.UTF8.encode(history + added)));
  }
  return answer(ALLOW, 0, 0);
}

/** The format of the history (variables `d<domid>` holding `SET:CLASS` lines), first line of the state. */
const STATE_FORMAT = "chinese-wall history 1";

/** Live update: the history's format and the classes configured now, one per line. */
export function state_save(): i32 {
  let text = STATE_FORMAT + "\n";
  for (let i = 0; i < classes.length; i++) text += classes[i].id + "\n";
  const b = Uint8Array.wrap(String.UTF8.encode(text));
  const off = alloc(b.length);
  for (let i = 0; i < b.length; i++) store_u8(off + i, b[i]);
  output_set(off, b.length);
  return 0;
}

/**
 * Live update: take the state a previous program's chinese-wall saved. Refused if its format is not
 * ours, or if it names a class this configuration does not have: the history may record it.
 */
export function state_load(): i32 {
  const n = <i32> input_length();
  const codes = new Array<i32>(n);
  for (let i = 0; i < n; i++) codes[i] = input_load_u8(i);
  const lines = String.fromCharCodes(codes).split("\n");
  if (lines.length == 0 || lines[0] != STATE_FORMAT) {
    return fail("the saved history is not in the format " + STATE_FORMAT);
  }
  for (let i = 1; i < lines.length; i++) {
    const id = lines[i];
    if (id.length == 0) continue;
    let known = false;
    for (let j = 0; j < classes.length; j++) if (classes[j].id == id) known = true;
    if (!known) {
      return fail("the saved history names the class " + id + ", which conflict-sets no longer has");
    }
  }
  return 0;
}
