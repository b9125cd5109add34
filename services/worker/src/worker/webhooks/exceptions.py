"""What the webhook use cases can refuse; the chassis turns each into an RFC 9457 problem."""

from __future__ import annotations

from chassis.problems import NotFoundError, UnprocessableError


class SubscriptionNotFoundError(NotFoundError):
    code, title = "subscription-not-found", "Webhook subscription not found"


class InvalidWebhookUrlError(UnprocessableError):
    code, title = "invalid-webhook-url", "Webhook URL is not allowed"
