"""pySigma backend rendering a Sigma rule's detection as one DuckDB boolean expression.

Why our own instead of ``pysigma-backend-duckdb``: that package is not on the index we can
install from, and docs/sigma.md lists the defects measured in it (``ILIKE`` everywhere,
``NOT (...)`` dropping rows where the field is missing, unquoted keyword-named fields,
unescaped ``'`` in regular expressions). This backend renders:

* identifiers always double-quoted (``"source.ip"``) or, for vendor fields ECS lacks, the
  profile's fixed extraction expression;
* string literals as SQL standard strings with ``'`` doubled (DuckDB gives ``\\`` no meaning
  in them), so a rule value can never leave its literal; ``LIKE`` patterns escape ``\\ % _``
  with ``ESCAPE '\\'``;
* Sigma's case-insensitive equality as ``lower(col) = 'lowered literal'`` and plain
  contains/startswith/endswith as ``contains``/``starts_with``/``ends_with`` on ``lower(col)``
  (vectorized string kernels; ``ILIKE`` measured ~5x slower), ``LIKE`` only for inner
  wildcards; ``|cased`` drops the ``lower``;
* negation as ``NOT COALESCE(expr, false)``: a row whose field is missing matches
  ``not selection``, as Sigma says;
* regular expressions as ``regexp_matches`` (RE2, Sigma's ``i``/``m``/``s`` flags inline);
* ``cidr`` as an integer range test on ``ip4()`` for IPv4 (one comparison, no string
  prefixes), and as pySigma's prefix expansion for IPv6;
* numeric columns compared as numbers, string columns compared numerically via
  ``TRY_CAST`` for ``gt``/``gte``/``lt``/``lte``.

Values the predicate would otherwise recompute per rule and per row (``lower(col)``, the
FortiGate raw-line extractions, ``ip4(col)``) are not inlined: the predicate names them as
*working columns* (``"lower(message)"``, ``"fortigate.cfgpath"``, ``"ip4(source.ip)"``) and
the backend records each one's SQL in :attr:`DuckDBBackend.inputs`, next to the plain columns
it reads (:attr:`DuckDBBackend.columns`). :mod:`vpnsentry.detect.sigma.plan` computes them
once per row for all rules of a log source; :mod:`vpnsentry.detect.sigma.compile` checks that
the predicate binds against exactly those columns.
"""

from __future__ import annotations

import ipaddress
from typing import Any, ClassVar

import polars as pl
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionItem,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.conversion.base import TextQueryBackend
from sigma.conversion.state import ConversionState
from sigma.exceptions import SigmaFeatureNotSupportedByBackendError
from sigma.rule import SigmaRule
from sigma.types import (
    CompareOperators,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaFieldReference,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SpecialChars,
)

from vpnsentry import ecs
from vpnsentry.detect.sigma.logsources import Profile
from vpnsentry.detect.sigma.pipeline import pipeline
from vpnsentry.detect.sigma.plan import Input, sql_ident

_NUMERIC = (pl.Int32, pl.Int64, pl.Float64)
_OPS: dict[CompareOperators, str] = {
    CompareOperators.LT: "<",
    CompareOperators.LTE: "<=",
    CompareOperators.GT: ">",
    CompareOperators.GTE: ">=",
}
_RE_FLAGS: dict[SigmaRegularExpressionFlag, str] = {
    SigmaRegularExpressionFlag.IGNORECASE: "i",
    SigmaRegularExpressionFlag.MULTILINE: "m",
    SigmaRegularExpressionFlag.DOTALL: "s",
}


def sql_str(value: str) -> str:
    """A DuckDB string literal holding exactly ``value``."""
    return "'" + value.replace("'", "''") + "'"


class DuckDBBackend(TextQueryBackend):
    """Sigma detection -> DuckDB predicate over one profile's dataset (see module docstring)."""

    name: ClassVar[str] = "vpnsentry DuckDB"
    formats: ClassVar[dict[str, str]] = {"default": "DuckDB boolean expression"}
    requires_pipeline: ClassVar[bool] = True

    precedence: ClassVar[tuple[type[ConditionItem], type[ConditionItem], type[ConditionItem]]] = (
        ConditionNOT,
        ConditionAND,
        ConditionOR,
    )
    # pySigma token names, not secrets (ruff S105 reads *_token as a password).
    group_expression: ClassVar[str] = "({expr})"
    token_separator: str = " "  # noqa: S105
    or_token: ClassVar[str] = "OR"  # noqa: S105
    and_token: ClassVar[str] = "AND"  # noqa: S105
    not_token: ClassVar[str] = "NOT"  # noqa: S105
    eq_token: ClassVar[str] = " = "  # noqa: S105
    # Lists of plain values on one field become one IN (hash lookup instead of n compares).
    convert_or_as_in: ClassVar[bool] = True
    in_expressions_allow_wildcards: ClassVar[bool] = False

    def __init__(self, profile: Profile) -> None:
        super().__init__(processing_pipeline=pipeline(profile.name))
        self.profile = profile
        self.schema = ecs.SCHEMAS[profile.dataset]
        #: Dataset columns the predicate reads directly.
        self.columns: set[str] = set()
        #: Working columns the predicate reads, by name (see the module docstring).
        self.inputs: dict[str, Input] = {}

    # -- fields -----------------------------------------------------------------------------

    def escape_and_quote_field(self, field_name: str) -> str:
        """The quoted column, or the working column holding a vendor field's extraction."""
        return self._ref(field_name, read=True)

    def _ref(self, field_name: str, read: bool) -> str:
        """Like :meth:`escape_and_quote_field`; ``read=False`` when only a working column
        computed from it is compared (the working table then need not hold the column)."""
        derived = self.profile.derived.get(field_name)
        if derived is not None:
            return self._input(self._name(field_name), derived, 1)
        if read:
            self.columns.add(field_name)
        return sql_ident(field_name)

    def _input(self, name: str, expr: str, stage: int) -> str:
        """Record working column ``name`` = ``expr`` (over columns of earlier stages)."""
        self.inputs[name] = Input(name, expr, stage)
        return sql_ident(name)

    def _name(self, field_name: str) -> str:
        """The name of the column holding ``field_name``: its own, or its working column's."""
        derived = field_name in self.profile.derived
        return f"{self.profile.name}.{field_name}" if derived else field_name

    def _stage(self, field_name: str) -> int:
        """1 + the stage of the column holding ``field_name`` (dataset columns are stage 0)."""
        return 2 if field_name in self.profile.derived else 1

    def _numeric(self, field_name: str) -> bool:
        return isinstance(self.schema.get(field_name), _NUMERIC)

    def _text(self, field_name: str, cased: bool) -> str:
        """The field as text (numbers cast), lower-cased unless the match is case-sensitive.

        Lower-casing is a working column: computed once per row, however many rules compare.
        """
        f = self._ref(field_name, read=cased)
        if field_name not in self.profile.derived and not isinstance(
            self.schema.get(field_name), pl.String
        ):
            f = f"CAST({f} AS VARCHAR)"
        if cased:
            return f
        return self._input(
            f"lower({self._name(field_name)})", f"lower({f})", self._stage(field_name)
        )

    # -- strings ----------------------------------------------------------------------------

    def _string_match(self, field_name: str, value: SigmaString, cased: bool) -> str:
        parts: list[Any] = list(value.s)
        for p in parts:
            if not isinstance(p, (str, SpecialChars)):
                raise SigmaFeatureNotSupportedByBackendError(
                    f"unresolved placeholder in value {value.original!r}"
                )
        plain = "".join(p for p in parts if isinstance(p, str))
        if not cased:
            plain = plain.lower()
        if not value.contains_special():
            if self._numeric(field_name) and _is_number(plain):
                return f"{self.escape_and_quote_field(field_name)} = {plain}"
            return f"{self._text(field_name, cased)} = {sql_str(plain)}"
        star = SpecialChars.WILDCARD_MULTI
        inner = parts[1:-1] if len(parts) > 2 else []
        simple = all(isinstance(p, str) for p in inner) and len(parts) <= 3
        text = self._text(field_name, cased)
        if simple and parts == [star]:
            return f"{self.escape_and_quote_field(field_name)} IS NOT NULL"
        if simple and len(parts) == 3 and parts[0] == star and parts[2] == star:
            return f"contains({text}, {sql_str(plain)})"
        if simple and len(parts) == 2 and parts[1] == star and isinstance(parts[0], str):
            return f"starts_with({text}, {sql_str(plain)})"
        if simple and len(parts) == 2 and parts[0] == star and isinstance(parts[1], str):
            return f"ends_with({text}, {sql_str(plain)})"
        return f"{text} LIKE {sql_str(_like_pattern(parts, cased))} ESCAPE '\\'"

    def convert_condition_field_eq_val_str(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        assert isinstance(cond.value, SigmaString)
        return self._string_match(cond.field, cond.value, cased=False)

    def convert_condition_field_eq_val_str_case_sensitive(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        assert isinstance(cond.value, SigmaCasedString)
        return self._string_match(cond.field, cond.value, cased=True)

    def convert_condition_as_in_expression(
        self, cond: ConditionOR | ConditionAND, state: ConversionState
    ) -> str:
        args = [a for a in cond.args if isinstance(a, ConditionFieldEqualsValueExpression)]
        if isinstance(cond, ConditionAND) or len(args) != len(cond.args):
            return str(self.convert_condition_or(cond, state))  # type: ignore[arg-type]
        field_name = args[0].field
        values = [a.value for a in args]
        if self._numeric(field_name) and all(
            isinstance(v, SigmaNumber) or _is_number(str(v)) for v in values
        ):
            listed = ", ".join(str(v) for v in values)
            return f"{self.escape_and_quote_field(field_name)} IN ({listed})"
        cased = all(isinstance(v, SigmaCasedString) for v in values)
        lits = [str(v) if cased else str(v).lower() for v in values]
        listed = ", ".join(sql_str(v) for v in lits)
        return f"{self._text(field_name, cased)} IN ({listed})"

    def convert_condition_val_str(
        self, cond: ConditionValueExpression, state: ConversionState
    ) -> str:
        raise SigmaFeatureNotSupportedByBackendError("keyword search outside a log source mapping")

    def convert_condition_val_num(
        self, cond: ConditionValueExpression, state: ConversionState
    ) -> str:
        raise SigmaFeatureNotSupportedByBackendError("keyword search outside a log source mapping")

    def convert_condition_val_re(
        self, cond: ConditionValueExpression, state: ConversionState
    ) -> str:
        raise SigmaFeatureNotSupportedByBackendError("keyword search outside a log source mapping")

    def convert_condition_query_expr(
        self, cond: ConditionValueExpression, state: ConversionState
    ) -> str:
        raise SigmaFeatureNotSupportedByBackendError("query expressions are not supported")

    # -- other value types ------------------------------------------------------------------

    def convert_condition_field_eq_val_num(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        assert isinstance(cond.value, SigmaNumber)
        if self._numeric(cond.field):
            return f"{self.escape_and_quote_field(cond.field)} = {cond.value.number}"
        return f"{self._text(cond.field, True)} = {sql_str(str(cond.value.number))}"

    def convert_condition_field_eq_val_bool(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        assert isinstance(cond.value, SigmaBool)
        return f"{self._text(cond.field, False)} = {sql_str(str(cond.value.boolean).lower())}"

    def convert_condition_field_eq_val_null(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        return f"{self.escape_and_quote_field(cond.field)} IS NULL"

    def convert_condition_field_exists(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        return f"{self.escape_and_quote_field(cond.field)} IS NOT NULL"

    def convert_condition_field_not_exists(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        return f"{self.escape_and_quote_field(cond.field)} IS NULL"

    def convert_condition_field_eq_val_re(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        assert isinstance(cond.value, SigmaRegularExpression)
        flags = "".join(sorted(_RE_FLAGS[f] for f in cond.value.flags if f in _RE_FLAGS))
        pattern = str(cond.value.regexp.to_plain())
        if flags:
            pattern = f"(?{flags})" + pattern
        return f"regexp_matches({self._text(cond.field, True)}, {sql_str(pattern)})"

    def convert_condition_field_eq_val_cidr(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        assert isinstance(cond.value, SigmaCIDRExpression)
        net = cond.value.network
        if isinstance(net, ipaddress.IPv4Network):
            f = self._ref(cond.field, read=False)
            lo, hi = int(net.network_address), int(net.broadcast_address)
            ip4 = self._input(
                f"ip4({self._name(cond.field)})", f"ip4({f})", self._stage(cond.field)
            )
            return f"{ip4} BETWEEN {lo} AND {hi}"
        prefixes = cond.value.expand(wildcard="*")
        tests = [self._string_match(cond.field, SigmaString(p), cased=False) for p in prefixes]
        return "(" + " OR ".join(tests) + ")"

    def convert_condition_field_compare_op_val(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        assert isinstance(cond.value, SigmaCompareExpression)
        f = self.escape_and_quote_field(cond.field)
        if not self._numeric(cond.field):
            f = f"TRY_CAST({f} AS DOUBLE)"
        return f"{f} {_OPS[cond.value.op]} {cond.value.number.number}"

    def convert_condition_field_eq_field(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        assert isinstance(cond.value, SigmaFieldReference)
        a = self._text(cond.field, False)
        b = self._text(cond.value.field, False)
        ref = cond.value
        if ref.starts_with and ref.ends_with:
            return f"contains({a}, {b})"
        if ref.starts_with:
            return f"starts_with({a}, {b})"
        if ref.ends_with:
            return f"ends_with({a}, {b})"
        return f"{a} = {b}"

    # -- boolean structure ------------------------------------------------------------------

    def convert_condition_not(self, cond: ConditionNOT, state: ConversionState) -> str:
        """Sigma negation: a row with the field missing (NULL) matches ``not x``."""
        arg = cond.args[0]
        inner = self.convert_condition(arg, state)
        return f"NOT COALESCE(({inner}), false)"

    def finalize_query_default(
        self, rule: SigmaRule, query: str, index: int, state: ConversionState
    ) -> str:
        return query


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return s.strip() == s and s != ""


def _like_pattern(parts: list[Any], cased: bool) -> str:
    """A LIKE pattern: Sigma wildcards become ``%``/``_``, literal ``\\ % _`` escaped."""
    out = []
    for p in parts:
        if p == SpecialChars.WILDCARD_MULTI:
            out.append("%")
        elif p == SpecialChars.WILDCARD_SINGLE:
            out.append("_")
        else:
            text = p if cased else p.lower()
            out.append(text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_"))
    return "".join(out)
