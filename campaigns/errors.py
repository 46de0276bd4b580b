from marketing.common.errors import ApplicationError, ConflictError


class CampaignNotLaunchableError(ConflictError):
    code = "campaign_already_launched"


class CampaignNotReadyError(ApplicationError):
    code = "campaign_not_ready"


class CampaignStatusError(ConflictError):
    code = "campaign_status_conflict"
