"""Entry point of the single-file executable (packaging/binary/flashml.spec): the `flashml` command.

The server runs its own interpreter again for work it keeps at arm's length: model warm-up in a watched child
(`sys.executable -m flashml.registry.probe ...`). Frozen, `sys.executable` is this executable, so it answers
`-m MODULE ARGS` as `python -m` would, for FlashML's own modules only (it is not a general Python interpreter).
PyInstaller lets such a child reuse the unpacked files of the process that started it.
"""

from __future__ import annotations

import multiprocessing
import runpy
import sys


def run() -> None:
    multiprocessing.freeze_support()
    if len(sys.argv) > 2 and sys.argv[1] == "-m":
        module = sys.argv[2]
        if module != "flashml" and not module.startswith("flashml."):
            sys.exit(f"flashml: -m runs FlashML's own modules only, not {module!r}")
        sys.argv = [sys.argv[0], *sys.argv[3:]]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        return
    from flashml.cli import main

    main(prog_name="flashml")


if __name__ == "__main__":
    run()
