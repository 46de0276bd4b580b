from marketing.common.errors import ApplicationError, ConflictError


class InvalidSegmentRulesError(ApplicationError):
    """`extra["errors"]` maps the path of each offending condition (e.g. "rules.1.rules.0")
    to its message, so the builder and the API can point at it."""

    code = "invalid_segment_rules"


class SegmentNameTakenError(ConflictError):
    code = "segment_name_taken"


class SegmentKindError(ApplicationError):
    code = "segment_wrong_kind"


class SegmentImportError(ApplicationError):
    """An uploaded segment file cannot be imported at all (empty, not CSV, no customer id
    or email column); nothing was stored."""

    code = "segment_import_invalid"
