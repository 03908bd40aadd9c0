/**
 * aiosmtpd's setuid step (`os.setuid(pwd.getpwnam("nobody").pw_uid)`), done after the sockets are
 * bound and the certificate files read, so that `-l :25` works as root. Unlike aiosmtpd, the
 * group is dropped too (supplementary groups cleared, primary group set to nobody's) before the
 * user, so the server does not keep running with root's group.
 */

export const SETUID_FAILED = 'Cannot setuid "nobody"; try running with -n option.';

/** The parts of `process` used here (all absent on Windows). */
export interface PosixIds {
  setuid?: (id: number | string) => void;
  setgid?: (id: number | string) => void;
  setgroups?: (groups: (number | string)[]) => void;
  getuid?: () => number;
}

/** `nobody`'s uid and gid from passwd(5) text, or null. */
export function findNobody(passwd: string): { uid: number; gid: number } | null {
  for (const line of passwd.split("\n")) {
    const fields = line.split(":");
    if (fields[0] === "nobody" && fields.length >= 4) {
      const uid = Number(fields[2]);
      const gid = Number(fields[3]);
      if (Number.isInteger(uid) && Number.isInteger(gid)) return { uid, gid };
    }
  }
  return null;
}

/**
 * Switches to user `nobody`. Returns false when that is impossible (not root, no such user, no
 * setuid on this platform): the caller prints `SETUID_FAILED` and exits 1, as aiosmtpd does.
 */
export function dropToNobody(proc: PosixIds, readPasswd: () => string): boolean {
  if (typeof proc.setuid !== "function") return false;
  let nobody: { uid: number; gid: number } | null = null;
  try {
    nobody = findNobody(readPasswd());
  } catch {
    // No readable passwd file: let setuid("nobody") resolve the name itself.
  }
  try {
    if (nobody && proc.getuid?.() === 0) {
      proc.setgroups?.([nobody.gid]);
      proc.setgid?.(nobody.gid);
    }
    proc.setuid(nobody ? nobody.uid : "nobody");
    return true;
  } catch {
    return false;
  }
}
