from __future__ import annotations

from marketing.common.errors import ApplicationError, ConflictError, NotFoundError


class InvalidSegmentRulesError(ApplicationError):
    """`extra["errors"]` maps the path of each offending condition (e.g. "rules.1.rules.0")
    to its message, so the builder and the API can point at it."""

    code = "invalid_segment_rules"


class SegmentNameTakenError(ConflictError):
    code = "segment_name_taken"

    @classmethod
    def for_name(cls, name: str | None) -> SegmentNameTakenError:
        return cls(
            f"A segment named {name!r} already exists.",
            extra={"errors": {"name": "A segment with this name already exists."}},
        )


class SegmentKindError(ApplicationError):
    code = "segment_wrong_kind"


class SegmentImportError(ApplicationError):
    """An uploaded segment file cannot be imported at all (empty, not CSV, no customer id
    or email column); nothing was stored."""

    code = "segment_import_invalid"


class ClusterRunInvalidError(ApplicationError):
    """A clustering run asked for an impossible k range, or the customers cannot be
    clustered as asked (too few of them, all alike)."""

    code = "cluster_run_invalid"


class ClusterRunNotReadyError(ConflictError):
    code = "cluster_run_not_ready"


class ClusterNotFoundError(NotFoundError):
    code = "cluster_not_found"


class SegmentInUseError(ConflictError):
    code = "segment_in_use"


class SegmentExportChannelError(ApplicationError):
    """An export asked for a channel that has no addresses to export."""

    code = "segment_export_channel_invalid"
