"""The intake (接警) domain, pure: no database, no gRPC, no protobuf.

- `reports`: the report aggregate (recorded, located, classified, corrected, merged, answered, rated,
  following its case or work order) and the events it records;
- `classification`: classification and grading by the classifier (`classifier/`) and the rule tables (`rules.py`);
- `places`: standard addresses and the stations' jurisdictions (point → station and grid);
- `validation`: a new report's fields and their limits;
- `statistics`: the intake figures as values.

The consultation, its knowledge base and the duplicate rules are pure modules beside this package
(`knowledge.py`, `duplicates.py`), the address gazetteer too (`gazetteer.py`).
"""
from .classification import (
    CATEGORY_LABELS, Classification, LabelledExample, TaxonomyEntry, classify, local_hour, taxonomy,
)
from .places import (
    BORDER_TOLERANCE_M, Address, AddressMatch, GridArea, JurisdictionIndex, Located, StationArea, geometry_from_geojson,
)
from .reports import (
    CORRECTABLE, MERGEABLE_STATUSES, SATISFACTION_WORDS, SETTLED, STATUS_BY_CATEGORY, SYSTEM, AssignmentNews,
    Attachment, CaseNews, IncidentReported, KnowledgeEntryAdded, Report, ReportUpdated, WorkOrderNews, entry,
    report_id_of,
)
from .statistics import ANSWER_TARGET, HAND_OFF_TARGET, RATINGS, Figures, Statistics, share
from .validation import (
    ATTACHMENT_LIMITS, CATEGORIES, CHANNELS, CLIENT_LOCATION_SOURCES, DEFAULT_LANGUAGE, MAX_ACCURACY_M,
    MAX_ADDRESS_CHARS, MAX_ATTACHMENTS, MAX_CLOCK_SKEW, MAX_DESCRIPTION_CHARS, check_point, normalize_phone,
    validate_new_report, validate_report_so_far,
)

__all__ = [
    "CATEGORY_LABELS", "Classification", "LabelledExample", "TaxonomyEntry", "classify", "local_hour", "taxonomy",
    "BORDER_TOLERANCE_M", "Address", "AddressMatch", "GridArea", "JurisdictionIndex", "Located", "StationArea",
    "geometry_from_geojson",
    "CORRECTABLE", "MERGEABLE_STATUSES", "SATISFACTION_WORDS", "SETTLED", "STATUS_BY_CATEGORY", "SYSTEM",
    "AssignmentNews", "Attachment", "CaseNews", "IncidentReported", "KnowledgeEntryAdded", "Report", "ReportUpdated",
    "WorkOrderNews", "entry", "report_id_of",
    "ANSWER_TARGET", "HAND_OFF_TARGET", "RATINGS", "Figures", "Statistics", "share",
    "ATTACHMENT_LIMITS", "CATEGORIES", "CHANNELS", "CLIENT_LOCATION_SOURCES", "DEFAULT_LANGUAGE", "MAX_ACCURACY_M",
    "MAX_ADDRESS_CHARS", "MAX_ATTACHMENTS", "MAX_CLOCK_SKEW", "MAX_DESCRIPTION_CHARS", "check_point", "normalize_phone",
    "validate_new_report", "validate_report_so_far",
]
