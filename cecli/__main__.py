"""``python -m cecli``, and the entry point that handles Ctrl-C from the first moment.

Importing the CLI (Typer, about 50 ms) happens after the SIGINT handler below is set, so
Ctrl-C at start-up is one line and exit 130, as later, never a traceback from an import.
The handler exits at once: nothing has been opened yet that would need cleaning up.
:func:`cecli.cli.main` then replaces it with ``KeyboardInterrupt``, which unwinds.
"""

import os
import signal


def _interrupted(signum, frame) -> None:
    try:
        os.write(2, b"cecli: error: interrupted\n")
    except OSError:  # stderr closed or full: the exit status still tells
        pass
    os._exit(130)


def main() -> None:
    signal.signal(signal.SIGINT, _interrupted)
    from cecli.cli import main as run

    run()


if __name__ == "__main__":
    main()
