"""Eval set-ups from a TOML file: checked before anything starts, and applied to a copy of the config."""

import re
from pathlib import Path

import pytest

from ragserve.errors import ConfigError, QAFileError
from ragserve.evaluation.setups import DEFAULT_SETUP, load_setups
from ragserve.service.config import ServeConfig, TenantConfig


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "setups.toml"
    path.write_text(text)
    return path


def test_without_a_file_there_is_one_setup_the_config_as_it_is() -> None:
    assert load_setups(None, []) == [DEFAULT_SETUP]


def test_named_setups_are_picked_in_the_order_asked(tmp_path: Path) -> None:
    path = _file(tmp_path, "[setups.a]\n[setups.b]\nrequest = { k = 2 }\n[setups.c]\n")
    assert [s.name for s in load_setups(path, [])] == ["a", "b", "c"]
    assert [s.name for s in load_setups(path, ["c", "b"])] == ["c", "b"]


@pytest.mark.parametrize(
    ("text", "names", "problem"),
    [
        ("[setups.a]\n", ["zz"], "no set-up named zz"),
        ("[other]\n", [], "expected [setups.NAME] tables"),
        ("[setups.a]\nunknown = 1\n", [], "setups.a: unknown: Extra inputs"),
        ("[setups.a]\nrequest = { temperature = 9 }\n", [], "set-up a: request: temperature"),
        ("[setups.a]\nrequest = { stream = true }\n", [], "may not set messages or stream"),
        ("[setups.a\n", [], "invalid TOML"),
    ],
)
def test_a_bad_setups_file_is_a_one_line_error(
    tmp_path: Path, text: str, names: list[str], problem: str
) -> None:
    with pytest.raises((QAFileError, ConfigError), match=re.escape(problem)):
        load_setups(_file(tmp_path, text), names)


def test_apply_changes_a_copy_of_the_config_and_checks_it(tmp_path: Path) -> None:
    config = ServeConfig(tenants={"acme": TenantConfig(api_key="k", docs=tmp_path)})
    text = ('[setups.s]\nprompt = { context = "user" }\nmodel = { temperature = 0.7 }\ntenant = { k = 2 }\n'
            '[setups.bad]\nprompt = { context = "nowhere" }\n')  # fmt: skip
    path = _file(tmp_path, text)
    changed, bad = load_setups(path, [])
    applied = changed.apply(config, "acme")
    assert applied.prompt.context == "user" and applied.model.temperature == 0.7
    assert applied.tenants["acme"].k == 2
    assert config.prompt.context == "system" and config.tenants["acme"].k == 4  # the original is untouched
    with pytest.raises(ConfigError, match=r"set-up bad: prompt\.context"):
        bad.apply(config, "acme")
