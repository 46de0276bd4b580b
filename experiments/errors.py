from __future__ import annotations

from marketing.common.errors import ApplicationError, ConflictError, NotFoundError


class ExperimentNotFoundError(NotFoundError):
    code = "experiment_not_found"

    @classmethod
    def for_key(cls, key: str) -> ExperimentNotFoundError:
        return cls(f"No experiment with the key {key!r}.")


class ExperimentInvalidError(ApplicationError):
    """The definition breaks a rule (fields named in `extra["fields"]`, the shape of the
    API's validation errors)."""

    code = "invalid"

    @classmethod
    def for_field(cls, field: str, message: str) -> ExperimentInvalidError:
        return cls("Invalid input.", extra={"fields": {field: [message]}})


class ExperimentStatusError(ConflictError):
    code = "experiment_status_conflict"
