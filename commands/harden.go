package commands

// While keytree runs, its memory holds keys, passwords and values in clear
// (docs/security.md, section 10). A core dump would copy them to disk: with
// GOTRACEBACK=crash and `ulimit -c unlimited`, a crash in the middle of an
// operation wrote a 661 MB core holding a password and an age secret key.
// Main therefore calls harden before it reads anything, and harden turns
// core dumps off for the rest of the process:
//
//   - Linux (harden_linux.go): prctl(PR_SET_DUMPABLE, 0), which also stops
//     core dumps piped to a handler (systemd-coredump, apport), for which
//     the kernel does not apply RLIMIT_CORE, unless the administrator set
//     fs.suid_dumpable to 2; it also stops other processes of the same user
//     from attaching with ptrace or reading /proc/PID/mem. And RLIMIT_CORE
//     0 (noCoreFile, harden_unix.go).
//   - Other Unix (harden_bsd.go): RLIMIT_CORE 0.
//   - Windows (harden_windows.go): crash dumps come from Windows Error
//     Reporting. keytree sets SEM_NOGPFAULTERRORBOX, as the Go runtime does
//     at start unless GOTRACEBACK=wer, so an unhandled exception does not
//     reach it.
//
// Hardening is best effort: a call that fails leaves keytree no worse than
// before, so it is not an error. None of it stops root (an administrator on
// Windows) or a debugger started by the same user with keytree as its
// child.
