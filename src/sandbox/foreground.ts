/**
 * The first step inside the sandbox: put the program in a process group of its own, make that
 * group the terminal's foreground group, then exec the program.
 *
 * Why (measured under node-pty, bwrap 0.8.0, without --new-session): the PTY's foreground group
 * is the one node-pty's child started in, and bwrap itself is in it. Without this step:
 * - Ctrl-C (SIGINT to the foreground group) also kills the outer bwrap, and --die-with-parent
 *   then kills the whole sandbox, even if the program traps SIGINT (`sh -c 'trap ... INT; sleep 30'`
 *   ends with signal 2 instead of going on);
 * - a job-control shell run as the program (`sh -i`) records that group as the one to give the
 *   terminal back to at exit; it lies outside the pid namespace, so dash fails with "Cannot set tty
 *   process group (No such process)" and exits 2, losing the real exit code.
 * With this step the program's group lives inside the namespace, Ctrl-C and SIGWINCH reach only
 * the program's group, and bwrap (in the original, now background, group) is untouched. It
 * is a group, not a session (that is what --new-session does, and it breaks job control, resize
 * and Ctrl-C).
 *
 * perl-base is Essential in Debian, so /usr/bin/perl is inside every sandbox; dash cannot do this
 * (its `exec` gives the terminal back before exec'ing). Only builtins are used (no POSIX module),
 * to start fast: setpgrp is setpgid(2), 0x5410 is TIOCSPGRP (asm-generic, x86-64 and arm64).
 * SIGTTOU is ignored around the hand-over because a background group may not take the terminal
 * otherwise, and reset before exec because ignored signals are inherited. `exec {$ARGV[0]} @ARGV`
 * is execvp without a shell even for a single word. The program text is constant; argv arrives
 * as perl's @ARGV.
 *
 * It also closes every inherited descriptor above 2 before the exec: bwrap passes inherited fds
 * through, and node-pty's prebuilt child only marks fds 3-15 close-on-exec (its fallback loop stops
 * at the first gap), so an fd agentgate inherited without O_CLOEXEC (seen here: fd 251, the write
 * end of a pipe from the process that started agentgate) would otherwise reach the program.
 * close_range(2) is syscall 436 on every architecture (Linux 5.9+); older kernels take the
 * /proc/self/fd loop.
 */
import { existsSync } from "node:fs";

export const PERL = "/usr/bin/perl";

/**
 * The step for a program without a terminal (a job on pipes): only the descriptor clean-up above,
 * with no process group or terminal hand-over, so the program stays in the group its launcher was
 * started in (the one a job's timeout or cancel signals as a whole).
 */
export const CLOSE_FDS_PERL =
  'if (syscall(436, 3, 0xFFFFFFFF, 0) != 0) { require POSIX; opendir(my $d, "/proc/self/fd"); ' +
  "POSIX::close($_) for grep { /^\\d+$/ && $_ > 2 } readdir $d; } " +
  'exec { $ARGV[0] } @ARGV; print STDERR "$ARGV[0]: $!\\n"; exit 127;';

export const FOREGROUND_PERL =
  '$SIG{TTOU} = "IGNORE"; setpgrp(0, 0); ioctl(STDIN, 0x5410, pack("i", $$)) if -t STDIN; $SIG{TTOU} = "DEFAULT"; ' +
  CLOSE_FDS_PERL;

/** argv wrapped in the foreground step, or unchanged when the host has no perl (Ctrl-C then ends the sandbox). */
export function inForeground(argv: string[], perlAvailable = existsSync(PERL)): string[] {
  return perlAvailable ? [PERL, "-e", FOREGROUND_PERL, "--", ...argv] : argv;
}

/** argv wrapped in the descriptor clean-up only (no terminal), or unchanged when the host has no perl. */
export function withInheritedFdsClosed(argv: string[], perlAvailable = existsSync(PERL)): string[] {
  return perlAvailable ? [PERL, "-e", CLOSE_FDS_PERL, "--", ...argv] : argv;
}
