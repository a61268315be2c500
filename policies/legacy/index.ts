// The `legacy` policy plugin: Xen's permission model (docs/misc/xenstore.txt, cxenstored's
// perm_for_conn), the daemon's default policy. One deliberate difference: a domain with a SET_TARGET
// target gets the UNION of its own rights and the target's rights on every node, whatever the order of
// the permission entries (cxenstored returns the first matching entry, so a target's read-only entry
// listed first cripples the domain's own full access — the seed mail's bug). Every answer depends only
// on the subject and the permissions, so every answer is marked cacheable.
import { alloc, input_load_u64, output_set, store_u64 } from "@extism/as-pdk/lib/env";
import {
  ACCESS_READ,
  ACCESS_SETPERMS,
  ACCESS_WRITE,
  ALLOW,
  answer,
  CACHEABLE,
  DENY,
  EACCES,
  EPERM,
  FLAG_HAS_TARGET,
  FLAG_PRIVILEGED,
  Header,
  info,
  KIND_CAPABILITY,
  KIND_CREATE,
  KIND_NODE,
  KIND_SETPERMS,
  permEntry,
  permsEnd,
  PermsHeader,
  readHeader,
  readPerms,
  REWRITE,
} from "../common/abi";

const h = new Header();
const p = new PermsHeader();
const q = new PermsHeader();

export function policy_info(): i32 {
  return info((1 << KIND_NODE) | (1 << KIND_CREATE) | (1 << KIND_SETPERMS) | (1 << KIND_CAPABILITY));
}

/** What domain `id` alone may do with the node: owner → read+write, else its first entry, else other. */
function rightsOf(id: u32): u32 {
  if (p.owner == id) return 3;
  for (let i: u32 = 0; i < p.count; i++) {
    const e = permEntry(p, i);
    if ((e & 0xffff) == id) return (e >> 16) & 3;
  }
  return p.other;
}

function node(): i32 {
  if (h.flags & FLAG_PRIVILEGED) return answer(ALLOW, 0, CACHEABLE);
  readPerms(p, 8);
  const hasTarget = (h.flags & FLAG_HAS_TARGET) != 0;
  if (h.sub == ACCESS_SETPERMS) {
    // Only the owner (or the domain acting for it) may change a node's permissions.
    const ok = p.owner == h.domid || (hasTarget && p.owner == h.target);
    return answer(ok ? ALLOW : DENY, EACCES, CACHEABLE);
  }
  let bits = rightsOf(h.domid);
  if (hasTarget) bits |= rightsOf(h.target);
  let need: u32 = 0;
  if (h.sub == ACCESS_READ) need = 1;
  else if (h.sub == ACCESS_WRITE) need = 2;
  else return answer(DENY, EACCES, CACHEABLE);
  return answer((bits & need) != 0 ? ALLOW : DENY, EACCES, CACHEABLE);
}

/** Unprivileged domains own what they create; the privileged domain inherits the parent's owner. */
function create(): i32 {
  if (h.flags & FLAG_PRIVILEGED) return answer(ALLOW, 0, CACHEABLE);
  readPerms(p, 8);
  if (p.owner == h.domid) return answer(ALLOW, 0, CACHEABLE);
  const words = (p.count + 1) >> 1;
  const out = alloc(16 + <u64> words * 8);
  store_u64(out, <u64> (REWRITE | (CACHEABLE << 16)));
  const w = input_load_u64(8);
  store_u64(out + 8, (w & ~(<u64> 0xffff)) | <u64> h.domid);
  for (let i: u32 = 0; i < words; i++) store_u64(out + 16 + <u64> i * 8, input_load_u64(16 + <u64> i * 8));
  output_set(out, 16 + <u64> p.count * 4);
  return 0;
}

/** Only the control domain may hand a node to another owner (XSA-352 class). */
function setPerms(): i32 {
  if (h.flags & FLAG_PRIVILEGED) return answer(ALLOW, 0, CACHEABLE);
  readPerms(p, 8);
  readPerms(q, permsEnd(p));
  return answer(q.owner != p.owner ? DENY : ALLOW, EPERM, CACHEABLE);
}

export function policy_decide(): i32 {
  readHeader(h);
  if (h.kind == KIND_NODE) return node();
  if (h.kind == KIND_CREATE) return create();
  if (h.kind == KIND_SETPERMS) return setPerms();
  if (h.kind == KIND_CAPABILITY) {
    return answer((h.flags & FLAG_PRIVILEGED) != 0 ? ALLOW : DENY, EACCES, CACHEABLE);
  }
  return answer(ALLOW, 0, 0);
}
