"""The one entry of every rule script: Snakemake's ``script:`` object or the
command line, to one package call.

A script under ``scripts/`` says only how its rule's ``input``, ``output``,
``params`` (and, for TensorFlow jobs, ``threads``) map to the keyword
arguments of one package function, and the same for its command-line flags;
:func:`run_script` does the rest the same way for all of them: logging to the
rule's ``log:`` (or ``--log``), TensorFlow's threads and seed before anything
imports it, and a logged traceback (Snakemake) or a one-line error with exit
status 2 (command line) when the job fails.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any, Callable, Mapping

from afterkernel.runtime import configure_tensorflow, setup_logging

Kwargs = dict[str, Any]

# Errors of the user's making on the command line (a missing file, a bad
# name): one line, not a traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (FileNotFoundError, KeyError, ValueError)


def run_script(scope: Mapping[str, Any], job: Callable[..., Any], *,
               from_snakemake: Callable[[Any], Kwargs],
               parser: Callable[[], argparse.ArgumentParser],
               from_args: Callable[[argparse.Namespace], Kwargs] | None = None,
               tensorflow: bool = False) -> None:
    """Run ``job`` with the arguments of the rule (when ``scope`` holds
    Snakemake's ``snakemake`` object) or of the command line (when the script
    is ``__main__``); do nothing when the script is imported.

    ``from_snakemake(snakemake)`` and ``from_args(namespace)`` give ``job``'s
    keyword arguments; ``from_args`` defaults to the namespace as a dict.
    ``parser()`` gets ``--log`` added, and ``--threads`` when ``tensorflow``:
    then TensorFlow is configured with the job's threads and its ``seed``
    argument (when it has one) before ``job`` runs.
    """
    smk = scope.get("snakemake")
    name = job.__name__
    if smk is not None:
        setup_logging(smk.log[0] if len(smk.log) else None)
        try:
            kwargs = from_snakemake(smk)
            if tensorflow:
                configure_tensorflow(smk.threads, kwargs.get("seed"))
            job(**kwargs)
        except Exception:
            logging.getLogger(name).exception("%s failed", name)
            raise
    elif scope.get("__name__") == "__main__":
        sys.exit(_command_line(job, parser(), from_args or vars, tensorflow))


def _command_line(job, ap: argparse.ArgumentParser, from_args, tensorflow: bool,
                  argv: list[str] | None = None) -> int:
    ap.add_argument("--log", default=None, help="also log to this file")
    if tensorflow:
        ap.add_argument("--threads", type=int, default=2, help="TensorFlow threads (default 2)")
    args = ap.parse_args(argv)
    setup_logging(args.log)
    threads = getattr(args, "threads", 1)
    for key in ("log", "threads"):
        if hasattr(args, key):
            delattr(args, key)
    try:
        kwargs = from_args(args)
        if tensorflow:
            configure_tensorflow(threads, kwargs.get("seed"))
        job(**kwargs)
    except USER_ERRORS as e:
        logging.getLogger(job.__name__).error("%s", e)
        return 2
    return 0
