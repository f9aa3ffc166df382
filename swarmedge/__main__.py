"""The ``swarmedge`` command's entry point (also ``python -m swarmedge``).

The command's own modules are imported here, inside a guard, so that Ctrl-C while they load
(numpy, click: the first half second) ends in one line and exit 130 like Ctrl-C anywhere later,
not in a traceback from the middle of an import.
"""

import sys


def main() -> None:
    try:
        from swarmedge.cli import main as command
    except KeyboardInterrupt:
        sys.stderr.write("swarmedge: interrupted while starting; nothing was done\n")
        raise SystemExit(130) from None
    command()


if __name__ == "__main__":
    main()
