"""Ordered, first-match-wins rules, matched once per distinct combination of values.

A :class:`Rule` gives a label (a channel, a touchpoint) to the rows whose fields
meet all of its conditions. A :class:`RuleSet` tries its rules in order; the first
that matches wins; rows no rule matches get the set's ``default``. Rules are data:
build them in Python or load them from TOML.

Conditions (all case-insensitive) on one field each:

=========================  ==================================================
``"cpc"``                  equals the value
``["cpc", "ppc"]``         equals one of the values
``{prefix = "/blog"}``     starts with (a string or a list of strings)
``{suffix = "push"}``      ends with
``{contains = "video"}``   contains (a string or a list of strings)
``{regex = "^paid"}``      matches the regular expression (``re.search``)
``{missing = true}``       is null or empty (``false``: is present)
=========================  ==================================================
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._encode import factorize_rows, small_int
from ._validation import describe
from .exceptions import InputTypeError, OptionError, ReadError

__all__ = ["Condition", "Rule", "RuleSet", "load_toml"]

OPS = ("equals", "any", "prefix", "suffix", "contains", "regex", "missing")


@dataclass(frozen=True)
class Condition:
    """One test on one field. See the module docstring for the forms."""

    field: str
    op: str
    values: tuple[str, ...] = ()
    flag: bool = True

    @classmethod
    def parse(cls, field_name: str, spec: Any) -> Condition:
        """A condition from its short form (str, list, or a one-key dict)."""
        if isinstance(spec, str):
            return cls(field_name, "equals", (spec.lower(),))
        if isinstance(spec, (list, tuple)):
            if not all(isinstance(v, str) for v in spec):
                raise InputTypeError(f"Condition on {field_name!r}: a list must hold strings; got {spec!r}.")
            return cls(field_name, "any", tuple(v.lower() for v in spec))
        if isinstance(spec, Mapping) and len(spec) == 1:
            (op, arg), = spec.items()
            if op == "missing":
                if not isinstance(arg, bool):
                    raise InputTypeError(f"Condition on {field_name!r}: missing takes true or false; got {arg!r}.")
                return cls(field_name, "missing", (), arg)
            if op not in OPS:
                raise OptionError(
                    f"Condition on {field_name!r}: unknown test {op!r}. Use one of: prefix, suffix, "
                    "contains, regex, missing (or a string / a list of strings for equality)."
                )
            values = (arg,) if isinstance(arg, str) else tuple(arg) if isinstance(arg, (list, tuple)) else None
            if values is None or not all(isinstance(v, str) for v in values):
                raise InputTypeError(f"Condition on {field_name!r}: {op} takes a string or a list of strings; got {arg!r}.")
            if op == "regex":
                for v in values:
                    try:
                        re.compile(v)
                    except re.error as exc:
                        raise OptionError(f"Condition on {field_name!r}: bad regular expression {v!r} ({exc}).") from None
                return cls(field_name, op, values)
            return cls(field_name, op, tuple(v.lower() for v in values))
        raise InputTypeError(
            f"Condition on {field_name!r} must be a string, a list of strings or a one-key table "
            f"such as {{prefix = '/blog'}}; got {describe(spec)}."
        )

    def to_spec(self) -> Any:
        """The short form (inverse of :meth:`parse`)."""
        if self.op == "equals":
            return self.values[0]
        if self.op == "any":
            return list(self.values)
        if self.op == "missing":
            return {"missing": self.flag}
        return {self.op: self.values[0] if len(self.values) == 1 else list(self.values)}

    def evaluate(self, text: pd.Series) -> np.ndarray:
        """Boolean mask over ``text`` (lower-cased strings, "" for missing)."""
        if self.op == "missing":
            return np.asarray((text == "") == self.flag, dtype=bool)
        if self.op == "equals":
            out = text == self.values[0]
        elif self.op == "any":
            out = text.isin(self.values)
        elif self.op == "prefix":
            out = text.str.startswith(self.values)
        elif self.op == "suffix":
            out = text.str.endswith(self.values)
        elif self.op == "contains":
            out = pd.Series(False, index=text.index)
            for v in self.values:
                out = out | text.str.contains(v, regex=False)
        else:  # regex
            # runs on distinct values only (see RuleSet.match), so a comprehension is fine
            rx = re.compile("|".join(f"(?:{v})" for v in self.values), re.IGNORECASE)
            return np.fromiter((rx.search(t) is not None for t in text), dtype=bool, count=len(text))
        return np.asarray(out.fillna(False), dtype=bool)


@dataclass(frozen=True)
class Rule:
    """A label and the conditions (all must hold) under which rows get it.

    Parameters
    ----------
    value : str
        The label, e.g. ``"Paid Search"`` or ``"blog"``.
    when : dict
        Field name -> condition (see the module docstring). Empty: always matches.
    attrs : dict, optional
        Extra outputs of the rule (``kind``, ``ownership`` for touchpoints).

    Examples
    --------
    >>> from journeyflow.rules import Rule
    >>> Rule("Paid Search", {"medium": ["cpc", "ppc"], "source": {"contains": "google"}})
    Rule('Paid Search', medium=['cpc', 'ppc'], source={'contains': 'google'})
    """

    value: str
    when: Mapping[str, Any] = field(default_factory=dict)
    attrs: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.value, str) or not self.value:
            raise InputTypeError(f"A rule's value must be a non-empty string; got {describe(self.value)}.")
        conds = tuple(Condition.parse(k, v) for k, v in dict(self.when).items())
        object.__setattr__(self, "when", dict(self.when))
        object.__setattr__(self, "_conditions", conds)

    @property
    def conditions(self) -> tuple[Condition, ...]:
        return self._conditions  # type: ignore[attr-defined,no-any-return]

    def __repr__(self) -> str:
        conds = ", ".join(f"{c.field}={c.to_spec()!r}" for c in self.conditions)
        extra = "".join(f", {k}={v!r}" for k, v in self.attrs.items())
        return f"Rule({self.value!r}{', ' + conds if conds else ''}{extra})"


@dataclass(frozen=True)
class RuleSet:
    """Ordered rules, first match wins, with a default label for the rest.

    Parameters
    ----------
    rules : sequence of Rule
        Tried in order.
    fields : sequence of str
        The fields the rules may test (others are an error).
    default : str
        Label of rows no rule matches.
    name : str
        What the labels are, for messages ("channel", "touchpoint").
    attrs : dict, optional
        Defaults of each extra output (``{"kind": "digital"}``).

    Examples
    --------
    >>> import pandas as pd
    >>> from journeyflow.rules import Rule, RuleSet
    >>> rs = RuleSet([Rule("blog", {"page": {"prefix": "/blog"}})], fields=["page"],
    ...              default="(unassigned)", name="touchpoint")
    >>> rs.match(pd.DataFrame({"page": ["/blog/x", "/", None]}))["touchpoint"].tolist()
    ['blog', '(unassigned)', '(unassigned)']
    """

    rules: Sequence[Rule]
    fields: Sequence[str]
    default: str
    name: str
    attrs: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        rules = tuple(self.rules)
        for i, r in enumerate(rules):
            if not isinstance(r, Rule):
                raise InputTypeError(f"{self.name} rule {i} must be a Rule; got {describe(r)}.")
            unknown = [c.field for c in r.conditions if c.field not in self.fields]
            if unknown:
                raise OptionError(
                    f"{self.name} rule {i} ({r.value!r}) tests unknown field {unknown[0]!r}; "
                    f"fields are: {', '.join(self.fields)}."
                )
            bad = [k for k in r.attrs if k not in self.attrs]
            if bad:
                raise OptionError(f"{self.name} rule {i} ({r.value!r}) sets unknown output {bad[0]!r}; outputs: {list(self.attrs)}.")
        object.__setattr__(self, "rules", rules)
        object.__setattr__(self, "fields", tuple(self.fields))
        object.__setattr__(self, "attrs", dict(self.attrs))

    def __len__(self) -> int:
        return len(self.rules)

    def __repr__(self) -> str:
        return f"RuleSet({self.name}: {len(self.rules)} rules, default {self.default!r})"

    def prepend(self, *rules: Rule) -> RuleSet:
        """A copy with ``rules`` tried before the existing ones."""
        return replace(self, rules=(*rules, *self.rules))

    def append(self, *rules: Rule) -> RuleSet:
        """A copy with ``rules`` tried after the existing ones."""
        return replace(self, rules=(*self.rules, *rules))

    def match(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Labels for the rows of ``frame`` (one column per field it has).

        Rules are evaluated once per distinct combination of the fields, then
        broadcast back. Missing fields count as missing values.

        Returns
        -------
        DataFrame
            Columns ``name`` (the label), the extra outputs, and ``rule`` (int64:
            index of the matching rule, -1 for the default); same index as ``frame``.
        """
        which = self.match_rules(frame)
        out = {self.name: self.labels()[which]}
        for attr in self.attrs:
            out[attr] = self.outputs(attr)[which]
        out["rule"] = np.where(which == len(self.rules), -1, which).astype(np.int64)
        return pd.DataFrame(out, index=frame.index)

    def labels(self) -> np.ndarray:
        """Label of each rule, then the default (index ``len(rules)``)."""
        return np.array([r.value for r in self.rules] + [self.default], dtype=object)

    def outputs(self, attr: str) -> np.ndarray:
        """Extra output ``attr`` of each rule, then its default."""
        default = self.attrs[attr]
        return np.array([r.attrs.get(attr, default) for r in self.rules] + [default], dtype=object)

    def match_rules(self, frame: pd.DataFrame) -> np.ndarray:
        """Index of the first matching rule per row (``len(rules)``: none matched)."""
        used = [f for f in self.fields if any(c.field == f for r in self.rules for c in r.conditions)]
        present = [f for f in used if f in frame.columns]
        if present:
            codes, uniques = factorize_rows(frame[present])
        else:
            codes, uniques = np.zeros(len(frame), dtype=np.int64), pd.DataFrame(index=[0])
        text = {f: _lower_text(uniques[f]) if f in uniques.columns else pd.Series("", index=uniques.index) for f in used}
        which = np.full(len(uniques), len(self.rules), dtype=np.int64)
        for i, rule in enumerate(self.rules):  # a loop over rules, each vectorised over distinct rows
            open_ = which == len(self.rules)
            if not open_.any():
                break
            hit = open_.copy()
            for cond in rule.conditions:
                hit &= cond.evaluate(text[cond.field])
            which[hit] = i
        return np.asarray(which.astype(small_int(len(self.rules)))[codes])

    # ---- TOML -------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, template: RuleSet) -> RuleSet:
        """Rules from ``{"rule": [{"value": ..., <field>: <condition>, ...}, ...]}``.

        ``mode = "replace"`` (default) uses only these rules; ``"prepend"`` /
        ``"append"`` adds them to ``template``'s rules.
        """
        allowed_top = {"rule", "mode", "default"}
        extra = set(data) - allowed_top
        if extra:
            raise OptionError(f"Unknown key {sorted(extra)[0]!r} in {template.name} rules; allowed: {sorted(allowed_top)}.")
        mode = data.get("mode", "replace")
        if mode not in ("replace", "prepend", "append"):
            raise OptionError(f"{template.name} rules: mode must be replace, prepend or append; got {mode!r}.")
        items = data.get("rule", [])
        if not isinstance(items, list):
            raise InputTypeError(f"{template.name} rules: 'rule' must be an array of tables ([[rule]]).")
        rules = []
        for i, item in enumerate(items):
            if not isinstance(item, Mapping) or "value" not in item:
                raise OptionError(f"{template.name} rule {i} needs a 'value' (the label it assigns).")
            attrs = {k: item[k] for k in template.attrs if k in item}
            when = {k: v for k, v in item.items() if k != "value" and k not in template.attrs}
            rules.append(Rule(item["value"], when, attrs))
        base = template if mode != "replace" else replace(template, rules=())
        out = base.prepend(*rules) if mode == "prepend" else base.append(*rules)
        if "default" in data:
            out = replace(out, default=str(data["default"]))
        return out

    def to_toml(self) -> str:
        """The rules as TOML text (``from_toml`` reads it back)."""
        lines = [f"# {self.name} rules: first match wins", f'default = {_toml_str(self.default)}', ""]
        for r in self.rules:
            lines.append("[[rule]]")
            lines.append(f"value = {_toml_str(r.value)}")
            for k, v in r.attrs.items():
                lines.append(f"{k} = {_toml_str(v)}")
            for c in r.conditions:
                lines.append(f"{c.field} = {_toml_value(c.to_spec())}")
            lines.append("")
        return "\n".join(lines)


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return _toml_str(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise InputTypeError(f"cannot write {v!r} as TOML")


def load_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file (tomllib, or tomli before Python 3.11), with clear errors."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    p = Path(path)
    try:
        with p.open("rb") as fh:
            data: dict[str, Any] = tomllib.load(fh)
    except FileNotFoundError:
        raise ReadError(f"No such file: {str(p)!r}.") from None
    except tomllib.TOMLDecodeError as exc:
        raise OptionError(f"{str(p)!r} is not valid TOML: {exc}.") from None
    return data


def _lower_text(values: pd.Series) -> pd.Series:
    """Lower-cased text with "" for missing, on the distinct values only."""
    text = values.astype(object).where(values.notna(), "")
    return text.astype(str).str.strip().str.lower()


def iter_rules(rules: Iterable[Rule | Mapping[str, Any]]) -> list[Rule]:
    """Rules from Rule objects or dicts ``{"value": ..., <field>: <condition>}``."""
    out = []
    for r in rules:
        if isinstance(r, Rule):
            out.append(r)
        elif isinstance(r, Mapping) and "value" in r:
            out.append(Rule(r["value"], {k: v for k, v in r.items() if k not in ("value", "kind", "ownership")},
                            {k: r[k] for k in ("kind", "ownership") if k in r}))
        else:
            raise InputTypeError(f"A rule must be a Rule or a dict with a 'value'; got {describe(r)}.")
    return out
