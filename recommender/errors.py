from marketing.common.errors import ApplicationError


class ModelVersionNotReadyError(ApplicationError):
    code = "model_version_not_ready"
    http_status = 409


class NoPreviousVersionError(ApplicationError):
    code = "no_previous_model_version"
    http_status = 409


class TrainingDataError(ApplicationError):
    """Too little data to train on."""

    code = "training_data_missing"
