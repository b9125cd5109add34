"""What the webhook use cases can refuse; the chassis turns each into an RFC 9457 problem."""

from __future__ import annotations

from chassis.problems import NotFound, Unprocessable


class SubscriptionNotFound(NotFound):
    code, title = "subscription-not-found", "Webhook subscription not found"


class InvalidWebhookUrl(Unprocessable):
    code, title = "invalid-webhook-url", "Webhook URL is not allowed"
