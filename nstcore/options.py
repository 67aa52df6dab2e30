"""Declared options: one definition gives a flag, a setting, a check and a report field.

The core's run options (:mod:`nstcore.settings`) and every plugin's options are :class:`Option`
objects, so ``--steps 0`` and ``--solver-option learning_rate=-1`` are refused the same way: one
line naming the option, its owner and the accepted values, before any image is read. A plugin
declares its options when it registers a component::

    register("adam", "my_plugin.adam:Adam", options=[
        Option("learning_rate", float, 0.02, "step size", above=0),
    ])

The component's factory then receives every declared option as a keyword argument (the user's
value or the declared default).
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from nstcore.errors import InputError

#: Option types: Python's own, plus "path" (a string naming a file) and "names" (a comma list).
TYPES = (int, float, bool, str, "path", "names")
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


class OptionValueError(ValueError):
    """A value an option does not accept; the message completes "OPTION: ..."."""


@dataclass(frozen=True)
class Option:
    """One option: name, type, default, one-line help, and the values it accepts.

    ``minimum``/``maximum`` are inclusive bounds, ``above``/``below`` exclusive ones; numbers must
    be finite. ``flag`` gives a plugin option a shorthand on ``nstcore run`` (``--weights``) that
    is also a keyword of :func:`nstcore.stylize` (``weights=``).
    """

    name: str
    type: Any
    default: Any = None
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    below: float | None = None
    choices: Sequence[Any] | None = None
    flag: str | None = None

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"option {self.name}: type must be one of int, float, bool, str,"
                             f" 'path', 'names'; got {self.type!r}")
        if not self.name.isidentifier():
            raise ValueError(f"option name must be a Python identifier, got {self.name!r}")
        if self.flag is not None and not self.flag.startswith("--"):
            raise ValueError(f"option {self.name}: flag must start with '--', got {self.flag!r}")

    @property
    def keyword(self) -> str | None:
        """The ``stylize`` keyword of the shorthand flag (``--memory-limit`` -> ``memory_limit``)."""
        return self.flag[2:].replace("-", "_") if self.flag else None

    def accepted(self) -> str:
        """What the option takes, for help and error messages ("a number > 0")."""
        if self.choices is not None:
            return "one of " + ", ".join(str(c) for c in self.choices)
        noun = {int: "a whole number", float: "a finite number", bool: "true or false",
                str: "a string", "path": "a file path", "names": "comma-separated names"}[self.type]
        bounds = [f"{op} {_fmt(v)}" for op, v in ((">=", self.minimum), ("<=", self.maximum),
                                                 (">", self.above), ("<", self.below)) if v is not None]
        return noun + (" " + " and ".join(bounds) if bounds else "")

    def convert(self, value: Any) -> Any:
        """The value as this option's type, checked; raises :class:`OptionValueError`."""
        if value is None:
            if self.default is None:
                return None
            raise OptionValueError(f"must be {self.accepted()}, got None")
        converted = self._typed(value)
        if self.choices is not None and converted not in self.choices:
            raise OptionValueError(f"must be {self.accepted()}, got {_show(value)}")
        if self.type in (int, float):
            for op, bound in (("ge", self.minimum), ("le", self.maximum), ("gt", self.above),
                              ("lt", self.below)):
                if bound is not None and not _compare(op, converted, bound):
                    raise OptionValueError(f"must be {self.accepted()}, got {_show(value)}")
        return converted

    def _typed(self, value: Any) -> Any:
        bad = OptionValueError(f"must be {self.accepted()}, got {_show(value)}")
        if self.type is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
                return value.strip().lower() in _TRUE
            raise bad
        if self.type is int:
            if isinstance(value, bool):
                raise bad
            if isinstance(value, int):
                return value
            if isinstance(value, float) and math.isfinite(value) and value.is_integer():
                return int(value)
            if isinstance(value, str):
                try:
                    return int(value.strip())
                except ValueError:
                    raise bad from None
            raise bad
        if self.type is float:
            if isinstance(value, bool):
                raise bad
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise bad from None
            if not math.isfinite(number):
                raise bad
            return number
        if self.type == "names":
            items = value.split(",") if isinstance(value, str) else list(value)
            names = tuple(str(n).strip() for n in items if str(n).strip())
            if not names:
                raise OptionValueError("needs at least one name")
            return names
        if self.type is str and isinstance(value, (list, tuple)) and value and all(
                isinstance(v, (int, float, str)) and not isinstance(v, bool) for v in value):
            # from Python, a list is the natural form of a comma list: [0.7, 0.3] is "0.7,0.3"
            return ",".join(_fmt(v) if isinstance(v, float) else str(v) for v in value)
        if not isinstance(value, str) and not hasattr(value, "__fspath__"):
            raise bad
        text = str(value)
        if self.type == "path" and not text:
            raise bad
        return text


def _compare(op: str, value: float, bound: float) -> bool:
    return {"ge": value >= bound, "le": value <= bound, "gt": value > bound, "lt": value < bound}[op]


def _fmt(number: float) -> str:
    return f"{number:g}"


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """"; did you mean 'x'?" for a close match, else ""."""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def resolve_options(owner: str, declared: Sequence[Option], given: Mapping[str, Any]) -> dict[str, Any]:
    """Every declared option's value (given, else default), converted and checked.

    ``owner`` names who takes the options in messages, e.g. "solver 'adam' (nstcore 0.1.0)".
    Unknown keys, wrong types and out-of-range values raise :class:`InputError` in one line.
    """
    by_name = {option.name: option for option in declared}
    for key in given:
        if key not in by_name:
            known = ", ".join(sorted(by_name)) or "none"
            raise InputError(f"{owner} has no option '{key}'{did_you_mean(key, by_name)}"
                             f" (options: {known})")
    values = {}
    for option in declared:
        raw = given.get(option.name, option.default)
        try:
            values[option.name] = option.convert(raw)
        except OptionValueError as exc:
            raise InputError(f"{owner} option {option.name}: {exc}") from None
    return values


def describe_options(declared: Sequence[Option]) -> list[tuple[str, str, str, str]]:
    """(name, accepted values, default, help) rows for ``nstcore plugins --options``."""
    return [(o.name + (f" ({o.flag})" if o.flag else ""), o.accepted(), _show(o.default), o.help)
            for o in declared]
