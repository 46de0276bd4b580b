"""The provider stand-ins of tests/campaigns, for sending campaigns in these tests."""

from tests.campaigns.conftest import (  # noqa: F401
    _sendgrid_server,
    _twilio_server,
    sendgrid_stand_in,
    twilio_stand_in,
)
