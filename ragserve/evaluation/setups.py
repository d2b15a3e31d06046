"""Set-ups to compare side by side on the same questions, named in a small TOML file:

    [setups.base]                         # the service as configured
    [setups.k8]
    request = { k = 8 }                   # sent with every question: k, temperature, model, top_p, ...
    [setups.system-context]
    prompt = { context = "system" }       # the config's [prompt], [model] or the tenant's table, changed
    [setups.greedy-off]
    model = { temperature = 1.0 }

`request` works against any service (`--url`); `model`, `prompt` and `tenant` change the served config, so
they need `--config`, where each set-up gets an API of its own over the one vLLM and index.
"""

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ragserve.errors import ConfigError, QAFileError, validation_problems
from ragserve.files import read_toml
from ragserve.service.config import ServeConfig
from ragserve.service.schemas import ChatRequest

__all__ = ["DEFAULT_SETUP", "Setup", "load_setups"]

_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$"


class Setup(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=_NAME)]
    request: dict[str, Any] = {}
    model: dict[str, Any] = {}
    prompt: dict[str, Any] = {}
    tenant: dict[str, Any] = {}

    @property
    def changes_config(self) -> bool:
        return bool(self.model or self.prompt or self.tenant)

    def check_request(self) -> None:
        if {"messages", "stream"} & self.request.keys():
            raise ConfigError(f"set-up {self.name}: request may not set messages or stream")
        try:
            ChatRequest.model_validate({"messages": [{"role": "user", "content": "?"}], **self.request})
        except ValidationError as exc:
            raise ConfigError(f"set-up {self.name}: request: {validation_problems(exc)}") from None

    def apply(self, config: ServeConfig, tenant: str) -> ServeConfig:
        """The config with this set-up's changes; the result is checked like a config file."""
        raw = config.model_dump()
        raw["model"].update(self.model)
        raw["prompt"].update(self.prompt)
        raw["tenants"][tenant].update(self.tenant)
        try:
            return ServeConfig.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(f"set-up {self.name}: {validation_problems(exc)}") from None


DEFAULT_SETUP = Setup(name="defaults")


def load_setups(path: Path | None, names: list[str]) -> list[Setup]:
    """The named set-ups from the file (all of them if none is named); without a file, the defaults."""
    if path is None:
        if names:
            raise ConfigError("--setup names a set-up from a --setups file; none was given")
        return [DEFAULT_SETUP]
    raw = read_toml(path, QAFileError)
    table = raw.get("setups")
    if set(raw) - {"setups"} or not isinstance(table, dict) or not table:
        raise QAFileError(f"{path}: expected [setups.NAME] tables and nothing else")
    setups: dict[str, Setup] = {}
    for name, body in table.items():
        try:
            setups[name] = Setup.model_validate({**(body if isinstance(body, dict) else {}), "name": name})
        except ValidationError as exc:
            raise QAFileError(f"{path}: setups.{name}: {validation_problems(exc)}") from None
        setups[name].check_request()
    unknown = [n for n in names if n not in setups]
    if unknown:
        raise QAFileError(f"{path}: no set-up named {', '.join(unknown)}; it has {', '.join(setups)}")
    return [setups[n] for n in names] if names else list(setups.values())
