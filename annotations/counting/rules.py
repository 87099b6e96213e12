"""Diagnosis suggestions from a differential count, by rules that are data (DESIGN.md "suggests a diagnosis by
the FAB/WHO rules").

A rule set is a JSON object (the caller stores and versions it):

    {
      "description": "free text",                  optional
      "min_cells": 200,                            optional, default 200: fewer counted cells -> count more cells
      "ci_method": "exact",                        optional, "exact" (Clopper-Pearson, default) or "wilson"
      "ci_gate": true,                             optional, default true: a 95% CI straddling a percentage
                                                   threshold -> count more cells; false decides on the point
                                                   estimate alone (as the seed paper did)
      "rules": [                                   required, evaluated and reported in this order (priority)
        {
          "id": "ALL", "label": "Acute lymphoblastic leukaemia",
          "numerator": ["lymphoblast"],            taxonomy class names, counted together
          "operator": ">",                         ">" or ">="
          "threshold_percent": 20,                 percent of counted nucleated cells, or instead
          "threshold_count": 3,                    a number of cells (exactly one of the two)
          "hints": [                               optional
            {"id": "M3", "text": "...",
             "when": {"classes": ["promyelocyte"], "among": [...], "share_above_percent": 50},   optional
             "adds_to_numerator": true}            optional: when the hint applies, its classes join the
          ]                                        numerator (APL: abnormal promyelocytes count as blasts)
        }
      ]
    }

A hint without "when" always applies; with "when" it applies when its classes make up strictly more than
`share_above_percent` of the "among" classes. Hints are shown only with a positive or count-more-cells
result: promyelocytes outnumber blasts in every normal marrow, so an M3 hint on a negative AML rule is noise.

Statuses: a percentage rule is "count_more_cells" when fewer than `min_cells` cells were counted or (with
`ci_gate`) when the CI straddles the threshold, i.e. the decision by the operator differs between the two ends
of the interval; otherwise "positive"/"negative" by the point estimate and the operator (">" 20 is negative at
exactly 20%, ">=" 20 is positive). A count rule is positive as soon as the count meets the threshold, whatever
the number counted (tumour cells found stay found); when it is not met it is "count_more_cells" below
`min_cells` and "negative" otherwise. CIs do not apply to count rules.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from annotations.counting.differential import CI_METHODS, CellId, CIMethod, Differential, Share
from annotations.jsonable import JsonMixin
from annotations.taxonomy import CLASS_NAMES, class_by_name

OPERATORS: tuple[str, ...] = (">", ">=")
DEFAULT_MIN_CELLS = 200
NO_CRITERIA_MET = "no leukaemia criteria met"
COUNT_MORE_CELLS = "count more cells"


class SuggestionStatus(StrEnum):
    POSITIVE = "positive"
    NEGATIVE = "negative"
    COUNT_MORE_CELLS = "count_more_cells"


# ---------------------------------------------------------------------------------------------------------
# The rule set as typed data


@dataclass(frozen=True)
class Dominance(JsonMixin):
    classes: tuple[str, ...]
    among: tuple[str, ...]
    share_above_percent: float


@dataclass(frozen=True)
class Hint(JsonMixin):
    id: str
    text: str
    when: Dominance | None = None
    adds_to_numerator: bool = False

    def to_dict(self) -> dict[str, Any]:
        return _without_none(super().to_dict())


@dataclass(frozen=True)
class Rule(JsonMixin):
    id: str
    label: str
    numerator: tuple[str, ...]
    operator: str
    threshold_percent: float | None = None
    threshold_count: int | None = None
    hints: tuple[Hint, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**_without_none(super().to_dict()), "hints": [hint.to_dict() for hint in self.hints]}


@dataclass(frozen=True)
class RuleSetContent(JsonMixin):
    """The parsed content of a stored rule set (`annotations.models.RuleSet` keeps it as JSON with its version)."""

    rules: tuple[Rule, ...]
    min_cells: int = DEFAULT_MIN_CELLS
    ci_method: CIMethod = "exact"
    ci_gate: bool = True
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, which `parse_rule_set` reads back unchanged."""
        return {**super().to_dict(), "rules": [rule.to_dict() for rule in self.rules]}


def _without_none(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if value is not None}


# ---------------------------------------------------------------------------------------------------------
# Validation


@dataclass(frozen=True)
class ValidationError(JsonMixin):
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or '(rule set)'}: {self.message}"


class RuleSetError(ValueError):
    def __init__(self, errors: Sequence[ValidationError]) -> None:
        super().__init__("invalid rule set:\n" + "\n".join(str(error) for error in errors))
        self.errors = tuple(errors)


_RULE_SET_KEYS = ({"rules"}, {"description", "min_cells", "ci_method", "ci_gate"})
_RULE_KEYS = ({"id", "label", "numerator", "operator"}, {"threshold_percent", "threshold_count", "hints"})
_HINT_KEYS = ({"id", "text"}, {"when", "adds_to_numerator"})
_WHEN_KEYS = ({"classes", "among", "share_above_percent"}, set[str]())


def validate_rule_set(data: Any) -> list[ValidationError]:
    """Every problem in `data`, each with its path (e.g. "rules[2].numerator[0]"); empty when valid."""
    validator = _Validator()
    validator.rule_set(data)
    return validator.errors


def parse_rule_set(data: RuleSetContent | Mapping[str, Any]) -> RuleSetContent:
    if isinstance(data, RuleSetContent):
        return data
    errors = validate_rule_set(data)
    if errors:
        raise RuleSetError(errors)
    return RuleSetContent(
        rules=tuple(_parse_rule(rule) for rule in data["rules"]),
        min_cells=data.get("min_cells", DEFAULT_MIN_CELLS),
        ci_method=data.get("ci_method", "exact"),
        ci_gate=data.get("ci_gate", True),
        description=data.get("description", ""),
    )


def _parse_rule(rule: Mapping[str, Any]) -> Rule:
    return Rule(
        id=rule["id"],
        label=rule["label"],
        numerator=tuple(rule["numerator"]),
        operator=rule["operator"],
        threshold_percent=rule.get("threshold_percent"),
        threshold_count=rule.get("threshold_count"),
        hints=tuple(_parse_hint(hint) for hint in rule.get("hints", [])),
    )


def _parse_hint(hint: Mapping[str, Any]) -> Hint:
    when = hint.get("when")
    dominance = None
    if when is not None:
        dominance = Dominance(tuple(when["classes"]), tuple(when["among"]), when["share_above_percent"])
    return Hint(hint["id"], hint["text"], dominance, hint.get("adds_to_numerator", False))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Validator:
    def __init__(self) -> None:
        self.errors: list[ValidationError] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(ValidationError(path, message))

    def rule_set(self, data: Any) -> None:
        if not self.object(data, "", *_RULE_SET_KEYS):
            return
        if "description" in data and not isinstance(data["description"], str):
            self.error("description", "must be a string")
        if "min_cells" in data and not (_is_integer(data["min_cells"]) and data["min_cells"] >= 1):
            self.error("min_cells", f"must be an integer >= 1, got {data['min_cells']!r}")
        if "ci_method" in data and data["ci_method"] not in CI_METHODS:
            self.error("ci_method", f"must be one of {list(CI_METHODS)}, got {data['ci_method']!r}")
        if "ci_gate" in data and not isinstance(data["ci_gate"], bool):
            self.error("ci_gate", "must be true or false")
        rules = data.get("rules")
        if "rules" in data and not (isinstance(rules, list) and rules):
            self.error("rules", "must be a non-empty list")
            return
        for index, rule in enumerate(rules or []):
            self.rule(rule, f"rules[{index}]")
        self.unique_ids(rules or [], "rules", "rule")

    def rule(self, rule: Any, path: str) -> None:
        if not self.object(rule, path, *_RULE_KEYS):
            return
        self.text(rule, "id", path)
        self.text(rule, "label", path)
        self.class_list(rule.get("numerator"), f"{path}.numerator")
        operator = rule.get("operator")
        if "operator" in rule and operator not in OPERATORS:
            self.error(f"{path}.operator", f"must be one of {list(OPERATORS)}, got {operator!r}")
        self.threshold(rule, path)
        hints = rule.get("hints", [])
        if not isinstance(hints, list):
            self.error(f"{path}.hints", "must be a list")
            return
        for index, hint in enumerate(hints):
            self.hint(hint, f"{path}.hints[{index}]")
        self.unique_ids(hints, f"{path}.hints", "hint")

    def threshold(self, rule: Mapping[str, Any], path: str) -> None:
        has_percent, has_count = "threshold_percent" in rule, "threshold_count" in rule
        if has_percent == has_count:
            self.error(path, "needs exactly one of 'threshold_percent' and 'threshold_count'")
            return
        if has_percent:
            key, value = "threshold_percent", rule["threshold_percent"]
            if not (_is_number(value) and 0 <= value <= 100):
                self.error(f"{path}.{key}", f"must be a number from 0 to 100, got {value!r}")
                return
        else:
            key, value = "threshold_count", rule["threshold_count"]
            if not (_is_integer(value) and value >= 0):
                self.error(f"{path}.{key}", f"must be an integer >= 0, got {value!r}")
                return
        if rule.get("operator") == ">=" and value == 0:
            self.error(f"{path}.{key}", "'>=' 0 is always met")

    def hint(self, hint: Any, path: str) -> None:
        if not self.object(hint, path, *_HINT_KEYS):
            return
        self.text(hint, "id", path)
        self.text(hint, "text", path)
        adds = hint.get("adds_to_numerator", False)
        if not isinstance(adds, bool):
            self.error(f"{path}.adds_to_numerator", "must be true or false")
        elif adds and "when" not in hint:
            self.error(f"{path}.adds_to_numerator", "needs a 'when' condition (else put the classes in the numerator)")
        if "when" in hint:
            self.when(hint["when"], f"{path}.when")

    def when(self, when: Any, path: str) -> None:
        if not self.object(when, path, *_WHEN_KEYS):
            return
        classes = self.class_list(when.get("classes"), f"{path}.classes")
        among = self.class_list(when.get("among"), f"{path}.among")
        for index, name in enumerate(classes):
            if among and name not in among:
                self.error(f"{path}.classes[{index}]", f"{name!r} is not in 'among'")
        share = when.get("share_above_percent")
        if "share_above_percent" in when and not (_is_number(share) and 0 <= share < 100):
            self.error(f"{path}.share_above_percent", f"must be a number from 0 to below 100, got {share!r}")

    def object(self, value: Any, path: str, required: set[str], optional: set[str]) -> bool:
        if not isinstance(value, Mapping):
            self.error(path, "must be an object")
            return False
        prefix = f"{path}." if path else ""
        for key in sorted(required - value.keys()):
            self.error(f"{prefix}{key}", "is required")
        for key in sorted(value.keys() - required - optional, key=str):
            self.error(f"{prefix}{key}", "unknown key")
        return True

    def text(self, data: Mapping[str, Any], key: str, path: str) -> None:
        if key in data and not (isinstance(data[key], str) and data[key].strip()):
            self.error(f"{path}.{key}", "must be a non-empty string")

    def class_list(self, value: Any, path: str) -> list[str]:
        """The valid class names of `value`, reporting the invalid ones."""
        if value is None:
            return []  # a missing required key is reported by object()
        if not (isinstance(value, list) and value):
            self.error(path, "must be a non-empty list of class names")
            return []
        names: list[str] = []
        for index, name in enumerate(value):
            if name not in CLASS_NAMES:
                close = difflib.get_close_matches(str(name), CLASS_NAMES, n=1)
                suggestion = f" (did you mean {close[0]!r}?)" if close else ""
                self.error(f"{path}[{index}]", f"unknown class {name!r}{suggestion}")
            elif name in names:
                self.error(f"{path}[{index}]", f"class {name!r} listed twice")
            else:
                names.append(name)
        return names

    def unique_ids(self, items: list[Any], path: str, what: str) -> None:
        seen: set[str] = set()
        for index, item in enumerate(items):
            item_id = item.get("id") if isinstance(item, Mapping) else None
            if isinstance(item_id, str) and item_id in seen:
                self.error(f"{path}[{index}].id", f"duplicate {what} id {item_id!r}")
            if isinstance(item_id, str):
                seen.add(item_id)


# ---------------------------------------------------------------------------------------------------------
# Evaluation


@dataclass(frozen=True)
class Evidence(JsonMixin):
    """What a suggestion rests on. `meets_threshold` is the point-estimate decision (None without cells);
    `reasons` says why the status is "count_more_cells"."""

    numerator: tuple[str, ...]
    count: int
    n_counted: int
    percent: float | None
    ci_low: float | None
    ci_high: float | None
    ci_method: str
    operator: str
    threshold_percent: float | None
    threshold_count: int | None
    meets_threshold: bool | None
    min_cells: int
    cell_ids: tuple[CellId, ...]
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class FiredHint(JsonMixin):
    id: str
    text: str


@dataclass(frozen=True)
class Suggestion(JsonMixin):
    rule_id: str
    label: str
    status: SuggestionStatus
    evidence: Evidence
    hints: tuple[FiredHint, ...]


@dataclass(frozen=True)
class DiagnosisSummary(JsonMixin):
    """`diagnosis` is the id of the first positive rule (rule order is priority) and `text` names every
    positive rule; without one, "count more cells" if any rule asks for it, else "no leukaemia criteria met"."""

    status: SuggestionStatus
    diagnosis: str | None
    text: str
    positive_rule_ids: tuple[str, ...]
    pending_rule_ids: tuple[str, ...]

    @property
    def outcome(self) -> str | None:
        """The value `diagnosis_eval` takes: a rule id, "count_more_cells", or None (no criteria met)."""
        if self.status is SuggestionStatus.COUNT_MORE_CELLS:
            return SuggestionStatus.COUNT_MORE_CELLS.value
        return self.diagnosis


@dataclass(frozen=True)
class DiagnosisReport(JsonMixin):
    source: str
    n_counted: int
    summary: DiagnosisSummary
    suggestions: tuple[Suggestion, ...]


def evaluate_rules(rule_set: RuleSetContent | Mapping[str, Any], differential: Differential) -> list[Suggestion]:
    """One suggestion per rule, in rule order. A JSON rule set is validated first (RuleSetError if invalid)."""
    parsed = parse_rule_set(rule_set)
    return [_evaluate_rule(rule, parsed, differential) for rule in parsed.rules]


def summarize(suggestions: Sequence[Suggestion]) -> DiagnosisSummary:
    positive = [s for s in suggestions if s.status is SuggestionStatus.POSITIVE]
    pending = tuple(s.rule_id for s in suggestions if s.status is SuggestionStatus.COUNT_MORE_CELLS)
    if positive:
        text = "; ".join(s.label for s in positive)
        return DiagnosisSummary(
            SuggestionStatus.POSITIVE, positive[0].rule_id, text, tuple(s.rule_id for s in positive), pending
        )
    if pending:
        return DiagnosisSummary(SuggestionStatus.COUNT_MORE_CELLS, None, COUNT_MORE_CELLS, (), pending)
    return DiagnosisSummary(SuggestionStatus.NEGATIVE, None, NO_CRITERIA_MET, (), ())


def suggest_diagnosis(rule_set: RuleSetContent | Mapping[str, Any], differential: Differential) -> DiagnosisReport:
    suggestions = evaluate_rules(rule_set, differential)
    return DiagnosisReport(differential.source, differential.n_counted, summarize(suggestions), tuple(suggestions))


def _evaluate_rule(rule: Rule, rule_set: RuleSetContent, differential: Differential) -> Suggestion:
    applying = [hint for hint in rule.hints if _hint_applies(hint, differential)]
    numerator = list(rule.numerator)
    for hint in applying:
        if hint.adds_to_numerator and hint.when is not None:
            numerator += [name for name in hint.when.classes if name not in numerator]
    group = differential.group(rule.id, (class_by_name(name).id for name in numerator), rule_set.ci_method)
    share = group.share
    meets: bool | None
    if rule.threshold_count is not None:
        status, meets, reasons = _count_decision(share, rule.operator, rule.threshold_count, rule_set.min_cells)
    else:
        assert rule.threshold_percent is not None
        status, meets, reasons = _percent_decision(share, rule, rule_set)
    evidence = Evidence(
        numerator=tuple(numerator),
        count=share.count,
        n_counted=share.n,
        percent=share.percent,
        ci_low=share.ci_low,
        ci_high=share.ci_high,
        ci_method=share.ci_method,
        operator=rule.operator,
        threshold_percent=rule.threshold_percent,
        threshold_count=rule.threshold_count,
        meets_threshold=meets,
        min_cells=rule_set.min_cells,
        cell_ids=group.cell_ids,
        reasons=reasons,
    )
    shown = () if status is SuggestionStatus.NEGATIVE else tuple(FiredHint(h.id, h.text) for h in applying)
    return Suggestion(rule.id, rule.label, status, evidence, shown)


def _meets(value: float, operator: str, threshold: float) -> bool:
    return value > threshold if operator == ">" else value >= threshold


def _too_few(n: int, min_cells: int) -> str:
    return f"only {n} cell(s) counted; the rule set asks for at least {min_cells}"


def _percent_decision(
    share: Share, rule: Rule, rule_set: RuleSetContent
) -> tuple[SuggestionStatus, bool | None, tuple[str, ...]]:
    threshold = rule.threshold_percent
    if share.percent is None or share.ci_low is None or share.ci_high is None or threshold is None:
        return SuggestionStatus.COUNT_MORE_CELLS, None, ("no cells counted",)
    meets = _meets(share.percent, rule.operator, threshold)
    reasons = []
    if share.n < rule_set.min_cells:
        reasons.append(_too_few(share.n, rule_set.min_cells))
    # The decision is monotone in the percentage, so the interval is undecided exactly when its ends disagree.
    straddles = _meets(share.ci_low, rule.operator, threshold) != _meets(share.ci_high, rule.operator, threshold)
    if rule_set.ci_gate and straddles:
        reasons.append(
            f"95% CI {share.ci_low:.1f}-{share.ci_high:.1f}% straddles the threshold {rule.operator} {threshold:g}%"
        )
    if reasons:
        return SuggestionStatus.COUNT_MORE_CELLS, meets, tuple(reasons)
    return (SuggestionStatus.POSITIVE if meets else SuggestionStatus.NEGATIVE), meets, ()


def _count_decision(
    share: Share, operator: str, threshold: int, min_cells: int
) -> tuple[SuggestionStatus, bool, tuple[str, ...]]:
    meets = _meets(share.count, operator, threshold)
    if meets:
        return SuggestionStatus.POSITIVE, meets, ()
    if share.n < min_cells:
        return SuggestionStatus.COUNT_MORE_CELLS, meets, (_too_few(share.n, min_cells),)
    return SuggestionStatus.NEGATIVE, meets, ()


def _hint_applies(hint: Hint, differential: Differential) -> bool:
    if hint.when is None:
        return True
    among = differential.group("among", (class_by_name(name).id for name in hint.when.among)).share.count
    dominant = differential.group("dominant", (class_by_name(name).id for name in hint.when.classes)).share.count
    return among > 0 and 100.0 * dominant / among > hint.when.share_above_percent


# ---------------------------------------------------------------------------------------------------------
# Shipped rule sets (data; copy before editing)
# Rule ids are the confirmed-diagnosis codes of cases (annotations.models.Diagnosis), so that `diagnosis_eval`
# compares suggestions with confirmed diagnoses label for label.

_AML_BLASTS = ["myeloblast", "monoblast", "megakaryoblast"]

DEFAULT_RULE_SET: Final[dict[str, Any]] = {
    "description": (
        "WHO-style blast thresholds; ALL when lymphoblasts > 20% of nucleated cells, the criterion of the seed "
        "paper (Front. Pediatr. 2021, 9:693676); AML when blasts >= 20%."
    ),
    "min_cells": DEFAULT_MIN_CELLS,
    "ci_method": "exact",
    "ci_gate": True,
    "rules": [
        {
            "id": "ALL",
            "label": "Acute lymphoblastic leukaemia",
            "numerator": ["lymphoblast"],
            "operator": ">",
            "threshold_percent": 20,
            "hints": [{"id": "ALL-immunophenotype", "text": "Confirm lineage and subtype by flow cytometry."}],
        },
        {
            "id": "AML",
            "label": "Acute myeloid leukaemia",
            "numerator": _AML_BLASTS,
            "operator": ">=",
            "threshold_percent": 20,
            "hints": [
                {
                    "id": "M3",
                    "text": (
                        "Promyelocytes dominate blasts and promyelocytes: if they are abnormal (hypergranular, "
                        "Auer rods, faggot cells) consider acute promyelocytic leukaemia (FAB M3) and confirm "
                        "PML-RARA urgently. The taxonomy does not separate abnormal from regenerating "
                        "promyelocytes, so they are not counted as blasts here."
                    ),
                    "when": {
                        "classes": ["promyelocyte"],
                        "among": [*_AML_BLASTS, "promyelocyte"],
                        "share_above_percent": 50,
                    },
                    # Not added to the numerator (issue 15): a regenerating marrow with 15-20% normal
                    # promyelocytes would otherwise reach the AML threshold. A lab whose taxonomy or clinical
                    # context identifies abnormal promyelocytes can opt in with its own rule set.
                },
                {
                    "id": "M7",
                    "text": "Megakaryoblasts dominate the blasts: consider acute megakaryoblastic leukaemia (FAB M7).",
                    "when": {"classes": ["megakaryoblast"], "among": _AML_BLASTS, "share_above_percent": 50},
                },
            ],
        },
        {
            "id": "LYMPHOMA",
            "label": "Bone-marrow infiltration by lymphoma",
            "numerator": ["lymphoma cell"],
            "operator": ">",
            "threshold_percent": 5,
            "hints": [
                {
                    "id": "LYMPHOMA-leukaemic",
                    "text": (
                        "From 25% lymphoma cells paediatric staging (St. Jude/Murphy) classes the disease as leukaemia."
                    ),
                }
            ],
        },
        {
            "id": "NEUROBLASTOMA",
            "label": "Neuroblastoma bone-marrow metastasis",
            "numerator": ["neuroblastoma cell"],
            "operator": ">=",
            "threshold_count": 3,
            "hints": [{"id": "NB-confirm", "text": "Confirm by immunocytology and trephine biopsy."}],
        },
    ],
}


def _with_blast_thresholds(base: Mapping[str, Any], percent: float, description: str) -> dict[str, Any]:
    rule_set = copy.deepcopy(dict(base))
    rule_set["description"] = description
    for rule in rule_set["rules"]:
        if rule["id"] in ("ALL", "AML"):
            rule["threshold_percent"] = percent
    return rule_set


FAB_RULE_SET: Final[dict[str, Any]] = _with_blast_thresholds(
    DEFAULT_RULE_SET,
    30,
    "FAB thresholds: ALL when lymphoblasts > 30% of nucleated cells, AML when blasts >= 30%.",
)
