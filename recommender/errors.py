from marketing.common.errors import ApplicationError, ConflictError, NotFoundError


class ModelVersionNotReadyError(ApplicationError):
    code = "model_version_not_ready"
    http_status = 409


class NoPreviousVersionError(ApplicationError):
    code = "no_previous_model_version"
    http_status = 409


class TrainingDataError(ApplicationError):
    """Too little data to train on."""

    code = "training_data_missing"


class DecisionNotFoundError(NotFoundError):
    code = "offer_event_not_found"


class RewardWindowClosedError(ConflictError):
    code = "offer_reward_window_closed"
