"""What the webhook use cases can refuse; the chassis turns each into an RFC 9457 problem."""

from __future__ import annotations

from chassis.problems import ConflictError, NotFoundError, UnprocessableError


class SubscriptionNotFoundError(NotFoundError):
    code, title = "subscription-not-found", "Webhook subscription not found"


class DeliveryNotFoundError(NotFoundError):
    code, title = "delivery-not-found", "Webhook delivery not found"


class DeliveryPendingError(ConflictError):
    code, title = "delivery-pending", "Webhook delivery is still pending"


class InvalidWebhookUrlError(UnprocessableError):
    code, title = "invalid-webhook-url", "Webhook URL is not allowed"
