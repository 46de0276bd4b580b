"""Email backends for tests: locmem (mail.outbox) that fails a given number of sends first."""

from smtplib import SMTPServerDisconnected

from django.core.mail.backends.locmem import EmailBackend


class FailingBackend(EmailBackend):
    """Raises `error` for the next `failures` sends (class state: Django makes a backend
    per send), then delivers to mail.outbox."""

    failures = 0
    error: Exception = SMTPServerDisconnected("Connection unexpectedly closed")

    def send_messages(self, email_messages):
        if FailingBackend.failures > 0:
            FailingBackend.failures -= 1
            raise FailingBackend.error
        return super().send_messages(email_messages)
