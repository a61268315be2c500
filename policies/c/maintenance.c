/* The `maintenance` policy plugin, in freestanding C: read-only maintenance mode. While it is in the
 * chain, every write, creation, removal and permission change is refused with EROFS, except for the
 * domains listed in the config key `writers` (comma-separated domids; default "0", the control
 * domain). Reads, watches and everything else pass through to the rest of the chain. Decisions depend
 * only on the caller and the kind of access, so they are cacheable. */
#include "policy_abi.h"

#define MAX_WRITERS 64

static u32 writers[MAX_WRITERS];
static u32 nwriters;

/* Parse "0,5,17" into writers[]; 0 on success. */
static int parse_writers(const char *s) {
	nwriters = 0;
	u32 v = 0;
	int digits = 0;
	for (const char *p = s;; p++) {
		if (*p >= '0' && *p <= '9') {
			v = v * 10 + (u32)(*p - '0');
			if (++digits > 5 || v > 65535) return -1;
		} else if (*p == ',' || *p == 0) {
			if (digits == 0 || nwriters == MAX_WRITERS) return -1;
			writers[nwriters++] = v;
			v = 0;
			digits = 0;
			if (*p == 0) return 0;
		} else if (*p != ' ') {
			return -1;
		}
	}
}

static int may_write(u32 domid) {
	for (u32 i = 0; i < nwriters; i++)
		if (writers[i] == domid) return 1;
	return 0;
}

EXPORT(policy_info) int policy_info(void) {
	char buf[512];
	int n = config_string("writers", buf, sizeof buf);
	if (n == -2) return fail("config writers: too long");
	if (parse_writers(n == -1 ? "0" : buf) != 0) return fail("config writers: expected domids like 0,5,17");
	return info((1u << KIND_NODE) | (1u << KIND_SETPERMS));
}

EXPORT(policy_decide) int policy_decide(void) {
	struct header h;
	read_header(&h);
	if (h.kind == KIND_NODE && h.sub == ACCESS_READ) return answer(ALLOW, 0, CACHEABLE);
	if (h.kind == KIND_NODE || h.kind == KIND_SETPERMS) {
		return answer(may_write(h.domid) ? ALLOW : DENY, E_ROFS, CACHEABLE);
	}
	return answer(ALLOW, 0, CACHEABLE);
}
