"""Helpers for tests that run a command in a subprocess and signal it."""

import signal


def terminal_sigint() -> None:
    """``preexec_fn`` of a child that must meet Ctrl-C as a terminal's foreground process does.

    A shell runs background jobs with SIGINT ignored, and native libraries may block it in the
    test process; children inherit both across ``exec`` (and Python then installs no
    ``KeyboardInterrupt`` handler), so a SIGINT sent to the child would be lost. This gives the
    child the default disposition and an unblocked SIGINT.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
