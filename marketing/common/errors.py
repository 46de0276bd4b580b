class ApplicationError(Exception):
    """A business rule refused the operation. `code` is stable and machine-readable."""

    code = "application_error"
    http_status = 400

    def __init__(self, message: str, *, extra: dict | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.extra = extra or {}
        if code:
            self.code = code


class ConflictError(ApplicationError):
    code = "conflict"
    http_status = 409


class NotFoundError(ApplicationError):
    code = "not_found"
    http_status = 404
