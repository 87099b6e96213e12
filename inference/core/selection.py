"""Which predicted cells a hematologist should review first (active learning), as pure functions.

`REVIEW_STRATEGIES` is the one table of review strategies: each turns a candidate's uncertainty into a priority
(higher = review sooner) and names the SQL ordering of stored predicted cells that puts the same cells first; the
review-queue selector, its query parameter and `GET /api/v1/review-strategies` (which the UI lists) all read it.
Adding a strategy is one row here. Optional per-class
balancing takes the cells round-robin across predicted classes in uncertainty order, so that rare classes
(blasts) get reviewed even when common classes hold most of the uncertain cells; `max_per_field` caps how many
cells of one field are picked, so the queue covers many fields.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass

from inference.core.uncertainty import ENTROPY, LEAST_CONFIDENCE, MARGIN, MUTUAL_INFORMATION


class UnknownStrategyError(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown review strategy {name!r}; valid strategies: {', '.join(REVIEW_STRATEGIES)}")
        self.name = name


@dataclass(frozen=True)
class ReviewCandidate:
    cell_id: Hashable
    field_id: Hashable
    predicted_class: int
    uncertainty: Mapping[str, float]
    detector_score: float
    p_countable: float = 0.5  # P(countable) of the countability model


@dataclass(frozen=True)
class ReviewStrategy:
    name: str  # the review queue's `strategy` value
    label: str  # for people (the UI's list)
    description: str  # one sentence: which cells come first
    priority: Callable[[ReviewCandidate], float]  # higher = review sooner
    # A stored predicted cell's column that puts the same cells first ("-" = descending); `annotations.models.Cell`
    # has an index per column (the review queue reads ranges of them).
    order_by: str
    default: bool = False  # the review queue's strategy when none is asked for (exactly one row)


def _measure(name: str, sign: float) -> Callable[[ReviewCandidate], float]:
    def priority(candidate: ReviewCandidate) -> float:
        # A cell without this measure (a detector-only box, a stored cell from before the measure) comes last.
        value = candidate.uncertainty.get(name)
        return float("-inf") if value is None else sign * float(value)

    return priority


REVIEW_STRATEGIES: dict[str, ReviewStrategy] = {
    strategy.name: strategy
    for strategy in (
        ReviewStrategy(
            "entropy",
            "Entropy",
            "Cells whose class probabilities are spread most evenly (highest entropy of the ensemble) come first.",
            _measure(ENTROPY, 1.0),
            "-entropy",
            default=True,
        ),
        ReviewStrategy(
            "margin",
            "Margin",
            "Cells whose two most likely classes are closest (smallest top-1 minus top-2 margin) come first.",
            _measure(MARGIN, -1.0),  # a small margin is the uncertain end
            "margin",
        ),
        ReviewStrategy(
            "least_confidence",
            "Least confidence",
            "Cells whose most likely class has the lowest probability come first.",
            _measure(LEAST_CONFIDENCE, 1.0),
            "confidence",
        ),
        ReviewStrategy(
            "disagreement",
            "Ensemble disagreement",
            "Cells on which the ensemble's members disagree most (BALD: highest mutual information) come first.",
            _measure(MUTUAL_INFORMATION, 1.0),
            "-mutual_information",
        ),
        ReviewStrategy(
            "detector",
            "Detector doubt",
            "Cells the detector was least sure are cells at all (lowest detector score) come first.",
            lambda candidate: 1.0 - float(candidate.detector_score),
            "detector_score",
        ),
        ReviewStrategy(
            "countability",
            "Countability doubt",
            "Cells the countability model could not tell countable from uncountable (P(countable) nearest 0.5) "
            "come first.",
            lambda candidate: 1.0 - abs(2.0 * float(candidate.p_countable) - 1.0),
            "countability_margin",
        ),
        ReviewStrategy(
            "random",
            "Random",
            "Cells in random order (a baseline, and an unbiased sample of the model's errors).",
            lambda candidate: 0.0,  # ties keep the order of the pool, a random sample
            "review_random",  # a uniform draw per cell: its order is a random permutation of the queue
        ),
    )
}


def review_strategy(name: str) -> ReviewStrategy:
    """The row of strategy `name`; UnknownStrategyError (listing the valid names) for any other name."""
    try:
        return REVIEW_STRATEGIES[name]
    except KeyError:
        raise UnknownStrategyError(name) from None


def default_review_strategy() -> str:
    """The name of the strategy the review queue uses when none is asked for."""
    return next(strategy.name for strategy in REVIEW_STRATEGIES.values() if strategy.default)


def review_priority(candidate: ReviewCandidate, strategy: str) -> float:
    """How urgently `candidate` needs review under `strategy` (higher = sooner)."""
    return review_strategy(strategy).priority(candidate)


def _ranked(candidates: Sequence[ReviewCandidate], strategy: str) -> list[ReviewCandidate]:
    """Most urgent first; ties keep input order, so the result is deterministic."""
    keyed = [(-review_priority(c, strategy), index, c) for index, c in enumerate(candidates)]
    return [c for _, _, c in sorted(keyed, key=lambda item: (item[0], item[1]))]


def select_for_review(
    candidates: Sequence[ReviewCandidate],
    k: int,
    strategy: str,
    *,
    balance_classes: bool = True,
    max_per_field: int | None = None,
) -> list[ReviewCandidate]:
    """Up to k candidates in review order (see module docstring)."""
    review_strategy(strategy)  # an unknown name fails before anything is ranked
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    if max_per_field is not None and max_per_field < 1:
        raise ValueError(f"max_per_field must be >= 1 or None, got {max_per_field}")
    ranked = _ranked(candidates, strategy)
    per_field: Counter[Hashable] = Counter()

    def field_has_room(candidate: ReviewCandidate) -> bool:
        return max_per_field is None or per_field[candidate.field_id] < max_per_field

    selected: list[ReviewCandidate] = []

    def take(candidate: ReviewCandidate) -> None:
        selected.append(candidate)
        per_field[candidate.field_id] += 1

    if not balance_classes:
        for candidate in ranked:
            if len(selected) == k:
                break
            if field_has_room(candidate):
                take(candidate)
        return selected

    queues: dict[int, deque[ReviewCandidate]] = {}
    for candidate in ranked:
        queues.setdefault(candidate.predicted_class, deque()).append(candidate)
    rank = {id(c): position for position, c in enumerate(ranked)}

    def next_eligible(queue: deque[ReviewCandidate]) -> ReviewCandidate | None:
        # A full field stays full, so its cells can be dropped for good.
        while queue and not field_has_room(queue[0]):
            queue.popleft()
        return queue[0] if queue else None

    while len(selected) < k:
        heads = [(rank[id(head)], cls) for cls, queue in queues.items() if (head := next_eligible(queue))]
        if not heads:
            break
        # One round: every class contributes its next cell, most urgent class head first.
        for _, cls in sorted(heads):
            if len(selected) == k:
                break
            if next_eligible(queues[cls]) is not None:
                take(queues[cls].popleft())
    return selected
