/**
 * Whether a process id still names a live process on this host. Only ESRCH ("no such process")
 * counts as dead: when in doubt (EPERM, anything else) the owner is taken to be alive, so a lock
 * or a temp file is never taken over from a writer that may still be there.
 */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}
