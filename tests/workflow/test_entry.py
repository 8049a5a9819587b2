"""The one entry of the rule scripts (afterkernel.entry)."""

from __future__ import annotations

import argparse
from types import SimpleNamespace

import pytest

from afterkernel.entry import _command_line, run_script


def parser():
    ap = argparse.ArgumentParser()
    ap.add_argument("--value", type=int, required=True)
    return ap


def test_snakemake_path_logs_to_the_rule_log_and_reraises(tmp_path):
    calls = []

    def job(value):
        calls.append(value)
        if value < 0:
            raise RuntimeError("negative value")

    log = tmp_path / "logs" / "job.log"
    smk = SimpleNamespace(log=[str(log)], threads=1, params=SimpleNamespace(value=3))
    scope = {"snakemake": smk, "__name__": "__main__"}
    run_script(scope, job, from_snakemake=lambda s: {"value": s.params.value}, parser=parser)
    assert calls == [3]
    smk.params.value = -1
    with pytest.raises(RuntimeError, match="negative value"):
        run_script(scope, job, from_snakemake=lambda s: {"value": s.params.value}, parser=parser)
    text = log.read_text()
    assert "job failed" in text and "Traceback" in text and "negative value" in text


def test_imported_script_runs_nothing():
    run_script({"__name__": "some_module"}, lambda: pytest.fail("ran"), from_snakemake=dict, parser=parser)


def test_command_line_user_error_is_one_line_and_status_2(tmp_path, caplog):
    def job(value):
        raise FileNotFoundError(f"no file number {value}")

    log = tmp_path / "cli.log"
    assert _command_line(job, parser(), vars, False, ["--value", "7", "--log", str(log)]) == 2
    assert "no file number 7" in log.read_text() and "Traceback" not in log.read_text()
    got = []
    assert _command_line(lambda value: got.append(value), parser(), vars, False, ["--value", "5"]) == 0
    assert got == [5]


def test_every_script_is_an_adapter_of_the_entry():
    """Scripts hand their rule's arguments to one package call: short, through
    run_script, and without a __future__ import (Snakemake prepends a preamble
    to the script, which would make it a SyntaxError)."""
    from conftest import ROOT

    scripts = sorted((ROOT / "scripts").glob("*.py"))
    assert len(scripts) == 8
    for script in scripts:
        text = script.read_text()
        assert "from __future__" not in text, script.name
        assert text.count("run_script(globals(), ") == 1, script.name
        assert len(text.splitlines()) <= 60, script.name
