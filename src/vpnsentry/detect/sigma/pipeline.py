"""The pySigma processing pipeline of one log-source profile: refuse what we cannot map, map
the rest onto our columns.

Field renaming lives here, never in the backend (pySigma's split: the pipeline adapts a rule
to a data model, the backend only renders). Two items per profile:

1. :class:`UnmappedFieldFailure` raises on a field the profile does not know (pySigma's own
   ``StrictFieldMappingFailure`` only looks at the mapping it built, so it cannot tell an ECS
   name from a typo). The rule is then skipped with "unmapped field 'x'".
2. pySigma's ``FieldMappingTransformation`` renames Sigma fields to ECS columns and maps
   keyword (field-less) values onto ``event.original``, the raw line, with contains semantics.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from sigma.exceptions import SigmaTransformationError
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import FieldMappingTransformation
from sigma.processing.transformations.base import DetectionItemTransformation
from sigma.rule import SigmaDetection, SigmaDetectionItem
from sigma.types import SigmaFieldReference

from vpnsentry import ecs
from vpnsentry.detect.sigma.logsources import PROFILES, Profile

#: Where keyword (field-less) values are searched: the raw line as the device wrote it.
FULL_TEXT = "event.original"


@dataclass
class UnmappedFieldFailure(DetectionItemTransformation):
    """Fail the rule on the first field (or field reference) outside ``known``."""

    known: frozenset[str]
    profile: str
    keywords: bool

    def apply_detection_item(
        self, detection_item: SigmaDetectionItem
    ) -> SigmaDetection | SigmaDetectionItem | None:
        field = detection_item.field
        if field is None and not self.keywords:
            raise SigmaTransformationError(
                f"keyword search needs raw text, which the {self.profile} log source lacks"
            )
        names = [field] if field is not None else []
        names += [v.field for v in detection_item.value if isinstance(v, SigmaFieldReference)]
        for name in names:
            if name not in self.known:
                raise SigmaTransformationError(
                    f"unmapped field {name!r} for log source {self.profile}"
                )
        return None


@cache
def pipeline(profile_name: str) -> ProcessingPipeline:
    """The pipeline for one profile (built once; pipelines are copied by each backend)."""
    profile = _by_name(profile_name)
    mapping = profile.mapping()
    keywords = FULL_TEXT in ecs.SCHEMAS[profile.dataset]
    field_map: dict[str | None, str | list[str]] = {k: v for k, v in mapping.items()}
    if keywords:
        field_map[None] = FULL_TEXT
    return ProcessingPipeline(
        name=f"vpnsentry {profile.name}",
        priority=20,
        items=[
            ProcessingItem(
                identifier="vpnsentry_unmapped_fields",
                transformation=UnmappedFieldFailure(frozenset(mapping), profile.name, keywords),
            ),
            ProcessingItem(
                identifier="vpnsentry_field_mapping",
                transformation=FieldMappingTransformation(field_map),
            ),
        ],
    )


def _by_name(name: str) -> Profile:
    return next(p for p in PROFILES if p.name == name)
