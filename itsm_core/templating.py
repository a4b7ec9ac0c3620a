"""Texts the config writes with jinja2 (alert messages, automation parameters and comments), rendered in a sandbox.

A config is trusted less than code: the sandbox keeps a template from reaching Python internals, and
`StrictUndefined` makes a misspelt name an error instead of an empty string.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

_env = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined, trim_blocks=True)


@cache
def _template(text: str) -> Any:
    return _env.from_string(text)


def render(text: str, **values: Any) -> str:
    """`text` rendered with `values`; raises jinja2's errors (`UndefinedError` for a name it does not know)."""
    return _template(text).render(**values)


def check_template(text: str) -> str:
    """`text` if it compiles, else `ValueError` with the line and jinja2's reason (for config validators)."""
    try:
        _template(text)
    except TemplateSyntaxError as exc:
        raise ValueError(f"not a valid jinja2 template (line {exc.lineno}: {exc.message})") from None
    return text
