"""``python -m cecli``, and the entry point that handles Ctrl-C from the first moment.

Importing the CLI (Typer, about 50 ms) happens after the SIGINT handler below is set, so
Ctrl-C at start-up is one line and exit 130, as later, never a traceback from an import.
The handler exits at once: nothing has been opened yet that would need cleaning up.
:func:`cecli.cli.main` then replaces it with ``KeyboardInterrupt``, which unwinds.

The garbage collector is paused for the start-up: the imports (NumPy, Typer, cecli) create
about 45,000 objects the collector tracks, which live as long as the process; collecting them
over and over, for no garbage, took about 6 ms of a 3-row one-liner's 94 ms (farm-bench, paired).
:func:`cecli.engines.tuning.tune_for_batches`, where a command's work starts, freezes them and
resumes the collector; a command that ends before (``--help``, ``columns``, a usage error) exits
without it.
"""

import gc
import os
import signal


def _interrupted(signum, frame) -> None:
    try:
        os.write(2, b"cecli: error: interrupted\n")
    except OSError:  # stderr closed or full: the exit status still tells
        pass
    os._exit(130)


def main() -> None:
    gc.disable()  # until tune_for_batches (see the docstring above): about 6 ms of a one-liner
    signal.signal(signal.SIGINT, _interrupted)
    from cecli.cli import main as run

    run()


if __name__ == "__main__":
    main()
