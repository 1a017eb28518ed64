"""The `emofl` sub-commands, one module per group of user jobs.

Each module's `add(commands)` registers its sub-commands' parsers; each parser's defaults name
its handler (args -> result dict), optionally a printer for the result, and a run folder (where
an internal error's traceback is kept). Handlers import the heavy libraries (torch, Opacus,
Flower, TenSEAL, OpenCV) themselves, so that `emofl --help` stays fast.
"""
